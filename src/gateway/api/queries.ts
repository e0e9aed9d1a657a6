// The query parameters of the API's GET and DELETE routes as zod schemas: what each route checks its query
// with (parseQuery), and what the OpenAPI document says of it (openapi.ts reads the same schemas). Query
// values arrive as text; each schema turns its text into the value the route uses, and refuses anything
// else with a message naming the parameter (INVALID_INPUT, HTTP 200, as the original answered).
import { z } from 'zod';
import { InvalidInputError } from '../../common/errors';
import { ID_PATTERN } from '../../common/ids';
import { parseTime } from '../../common/time';
import { MAX_INT } from '../../task/limits';
import { DOWNLOADABLE } from '../present';

function describe(value: unknown): string {
  const text = typeof value === 'string' ? value : (JSON.stringify(value) ?? String(value));
  return JSON.stringify(text.length > 60 ? `${text.slice(0, 60)}...` : text);
}

/** A task id parameter. */
export const idParam = z
  .string()
  .regex(ID_PATTERN, { error: (issue) => `must be a task id (24 lower-case hex characters), not ${describe(issue.input)}` })
  .meta({ description: 'A task id: 24 lower-case hex characters.', example: '6b137c1702880aff0e4ab0ca' });

/** The original's truthy flags, made strict: 1/true/0/false, any case. */
export const flagParam = z
  .string()
  .regex(/^(1|0|true|false)$/i, { error: (issue) => `must be 1, true, 0 or false, not ${describe(issue.input)}` })
  .transform((value) => value === '1' || value.toLowerCase() === 'true')
  .meta({ description: '1, true, 0 or false (any case).' });

/** A whole number as the original took them: 0 to 2^31 - 1. */
export const countParam = z
  .string()
  .regex(/^\s*\+?\d{1,10}\s*$/, { error: (issue) => `must be a whole number from 0 to ${MAX_INT}, not ${describe(issue.input)}` })
  .transform(Number)
  .refine((value) => value <= MAX_INT, { error: (issue) => `must be a whole number from 0 to ${MAX_INT}, not ${describe(issue.input)}` })
  .meta({ description: `A whole number from 0 to ${MAX_INT}.` });

/** An ISO-8601 time, as UTC ISO text. */
export const timeParam = z
  .string()
  .refine((value) => parseTime(value) !== undefined, { error: (issue) => `must be an ISO-8601 time such as 2026-01-31T12:00:00Z, not ${describe(issue.input)}` })
  .transform((value) => new Date(parseTime(value)!).toISOString())
  .meta({ description: 'An ISO-8601 time, such as 2026-01-31T12:00:00Z.', format: 'date-time' });

/** GET /api/task's `wait`: seconds, a decimal number; more than `maxSeconds` is cut to it (the client asks again). */
function secondsParam(maxSeconds: number) {
  return z
    .string()
    .regex(/^\s*\+?(\d{1,9}(\.\d*)?|\.\d+)\s*$/, {
      error: (issue) => `must be a number of seconds from 0 to ${maxSeconds} (how long to wait for the task to be done), not ${describe(issue.input)}`,
    })
    .transform((value) => Math.min(Number(value), maxSeconds));
}

/** GET /api/task's query, on a gateway whose longest wait is `maxWaitSeconds` (limits.wait_max_s). */
export const taskQuery = (maxWaitSeconds: number) =>
  z.object({
  id: idParam,
  no_truncate: flagParam.optional().meta({ description: 'Show long text whole instead of its first 1000 characters and "...".' }),
  file: z
    .enum(DOWNLOADABLE, { error: (issue) => `must be one of ${DOWNLOADABLE.join(', ')}, not ${describe(issue.input)}` })
    .optional()
    .meta({ description: 'Download one field of the task, raw (a zip, or the text or output as bytes), instead of the JSON.' }),
  wait: secondsParam(maxWaitSeconds)
    .optional()
    .meta({ description: `Hold the answer until the task is done, at most this many seconds (more is cut to ${maxWaitSeconds}); then the task as it is.` }),
});

export const cancelQuery = z.object({ id: idParam });

export const listQuery = z.object({
  id: idParam.optional().meta({ description: 'Only this task.' }),
  user: countParam.optional().meta({ description: 'Only this user\'s tasks.' }),
  start_time: timeParam.optional().meta({ description: 'Added at or after this time.' }),
  end_time: timeParam.optional().meta({ description: 'Added at or before this time.' }),
  old_to_new: flagParam.optional().meta({ description: 'Oldest first (default: newest first).' }),
  limit: countParam.optional().meta({ description: 'Tasks per page; 0 (the default) is all (up to the judicators\' max_search_results).' }),
  page: countParam.optional().meta({ description: 'Page, from 0.' }),
});

export const eventsQuery = z.object({
  id: idParam.optional().meta({ description: 'Follow this one task: its state first, then its changes, its progress and its output; the stream ends when it is done.' }),
  last_event_id: z
    .string()
    .regex(/^[0-9A-Fa-f]{1,1024}$/, { error: (issue) => `Last-Event-ID must be the id of an event this stream sent (hex), not ${describe(issue.input)}` })
    .optional()
    .meta({ description: 'Go on after this event id (as the Last-Event-ID header does, for clients that cannot set it).' }),
});

/**
 * A route's query checked with `schema`: each parameter's first value (or, with `single`, a parameter
 * given twice refused), an empty one left out (an HTML form sends them empty). Throws InvalidInputError
 * naming the first bad parameter.
 */
export function parseQuery<S extends z.ZodObject>(schema: S, query: unknown, options: { single?: boolean } = {}): z.output<S> {
  const given: Record<string, unknown> = {};
  for (const [name, value] of Object.entries((query ?? {}) as Record<string, unknown>)) {
    if (Array.isArray(value) && options.single) throw new InvalidInputError(`${name} is given more than once`);
    const one = Array.isArray(value) ? value[0] : value;
    if (one !== '' && one !== undefined) given[name] = one;
  }
  const parsed = schema.safeParse(given);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const name = String(issue.path[0] ?? 'query');
  if (issue.code === 'invalid_type' && issue.input === undefined) throw new InvalidInputError(`${name} is required`);
  throw new InvalidInputError(issue.message.startsWith(name) ? issue.message : `${name} ${issue.message}`);
}
