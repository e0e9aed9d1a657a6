// Which tasks a caller may touch (addition): an admin token (or a gateway without tokens) any; a user's
// token only tasks whose `user` is its user id. A submission under another user id is refused (403), not
// rewritten: a client that sends the wrong id has a bug worth seeing. A submission without `user` is
// made the token's user's. Someone else's task is 403 whether it is read, downloaded, waited on or
// cancelled; a list is cut to the caller's own tasks.
import type { FastifyRequest } from 'fastify';
import { MAX_INT } from '../../task/limits';
import type { Caller } from './auth';
import { ForbiddenError, UnauthorizedError } from './errors';

declare module 'fastify' {
  interface FastifyRequest {
    /** Who calls: set by the token check on every routed /api request (server.ts). */
    caller: Caller | null;
  }
}

/** The caller of an /api request; no caller means the token check did not run: refused, never open. */
export function callerOf(request: FastifyRequest): Caller {
  if (!request.caller) throw new UnauthorizedError('this request was not checked for an API token');
  return request.caller;
}

/** A user id as a submission or a query gives it, or undefined when it is not one (the parser says why). */
function userIdOf(value: unknown): number | undefined {
  const number = typeof value === 'number' ? value : typeof value === 'string' && /^\s*\+?\d{1,10}\s*$/.test(value) ? Number(value.trim()) : NaN;
  return Number.isInteger(number) && number >= 0 && number <= MAX_INT ? number : undefined;
}

/**
 * Makes a submission's fields the caller's: a user token's submission without `user` gets the token's
 * user id; one under another id is refused. Admins submit under any id.
 */
export function claimSubmission(fields: Record<string, unknown>, caller: Caller): void {
  if (caller.admin) return;
  const given = fields.user;
  if (given === undefined || given === null || given === '') {
    fields.user = caller.user;
    return;
  }
  const id = userIdOf(given);
  // A malformed id is the form parser's to name; the same number in another spelling is the same user.
  if (id === undefined) return;
  if (id !== caller.user) throw new ForbiddenError(`this API token submits tasks as user ${caller.user} only, not as user ${id}`);
}

/** Throws ForbiddenError unless the caller may see and change a task of `owner`. */
export function checkOwner(owner: number, caller: Caller, id: string): void {
  if (caller.admin || owner === caller.user) return;
  throw new ForbiddenError(`task ${id} is not one of this API token's tasks (the token is user ${caller.user}'s)`);
}

/** A search cut to the caller's tasks: a user token asking for another user's list is refused. */
export function restrictSearch<S extends { user?: number }>(search: S, caller: Caller): S {
  if (caller.admin) return search;
  if (search.user !== undefined && search.user !== caller.user) {
    throw new ForbiddenError(`this API token lists the tasks of user ${caller.user} only, not of user ${search.user}`);
  }
  return { ...search, user: caller.user };
}
