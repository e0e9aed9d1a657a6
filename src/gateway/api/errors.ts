// How the API answers when something goes wrong: always JSON with the route's usual keys (`id: null`,
// `task: null`, `tasks: []`, ...), a result code and a message saying why; never the original's HTTP
// 500 page. HTTP statuses: 200 for answers with a result code (as the original), 400 with every bad
// field listed (`errors: [{field, message}]`, issue 17) for a submission whose fields are not
// acceptable, 401 for a missing or wrong API token, 403 for a token asking for another user's task, 404
// for a download that does not exist, 413 for a body over the limit, 503 when no judicator (or etcd) can
// be reached, 4xx for a body that cannot even be parsed.
import type { IncomingMessage } from 'node:http';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { InvalidFieldsError, InvalidInputError, NotFoundError, TooLargeError, UnavailableError, describeError, type FieldError } from '../../common/errors';
import type { Logger } from '../../common/logging';
import { ReturnCode } from '../../task/types';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The keys a failed answer of this route carries besides `result` and `message`. */
    failure?: Record<string, unknown>;
  }
}

/** A request body (or an uploaded file or field) over the size limit: HTTP 413. */
export class BodyTooLargeError extends TooLargeError {}

/** A body that cannot be parsed at all (a broken multipart stream, say): HTTP 400, result INVALID_INPUT. */
export class BadRequestError extends Error {
  override name = 'BadRequestError';
}

/** No API token, or not one of the configured ones: HTTP 401. */
export class UnauthorizedError extends Error {
  override name = 'UnauthorizedError';
}

/** A valid API token asking for what is not its own (another user's task): HTTP 403. */
export class ForbiddenError extends Error {
  override name = 'ForbiddenError';
}

/** A judicator answered with a result code other than OK, passed on to the client as it is. */
export class JudicatorAnswerError extends Error {
  constructor(
    readonly result: ReturnCode,
    message: string,
  ) {
    super(message);
  }
}

export interface ErrorAnswer {
  status: number;
  result: ReturnCode;
  message: string;
  /** Every bad field of a submission (issue 17). */
  errors?: readonly FieldError[];
}

const BODY_LIMIT_CODES = new Set(['FST_ERR_CTP_BODY_TOO_LARGE', 'FST_REQ_FILE_TOO_LARGE', 'FST_FILES_LIMIT', 'FST_FIELDS_LIMIT', 'FST_PARTS_LIMIT']);

export function errorAnswer(error: unknown): ErrorAnswer {
  if (error instanceof JudicatorAnswerError) return { status: 200, result: error.result, message: error.message };
  if (error instanceof BodyTooLargeError) return { status: 413, result: ReturnCode.TOO_LARGE, message: error.message };
  if (error instanceof BadRequestError) return { status: 400, result: ReturnCode.INVALID_INPUT, message: error.message };
  if (error instanceof TooLargeError) return { status: 200, result: ReturnCode.TOO_LARGE, message: error.message };
  if (error instanceof InvalidFieldsError) return { status: 400, result: ReturnCode.INVALID_INPUT, message: error.message, errors: error.errors };
  if (error instanceof InvalidInputError) return { status: 200, result: ReturnCode.INVALID_INPUT, message: error.message };
  if (error instanceof NotFoundError) return { status: 404, result: ReturnCode.NOT_EXIST, message: error.message };
  if (error instanceof UnauthorizedError) return { status: 401, result: ReturnCode.UNAUTHORIZED, message: error.message };
  if (error instanceof ForbiddenError) return { status: 403, result: ReturnCode.UNAUTHORIZED, message: error.message };
  if (error instanceof UnavailableError) return { status: 503, result: ReturnCode.ERROR, message: error.message };
  const fastifyError = error as Partial<FastifyError>;
  if (fastifyError.code && BODY_LIMIT_CODES.has(fastifyError.code)) {
    return { status: 413, result: ReturnCode.TOO_LARGE, message: `the request is too large (${fastifyError.message}); a task may take at most the configured body limit` };
  }
  const status = fastifyError.statusCode;
  if (status && status >= 400 && status < 500) {
    // Bodies Fastify could not parse: bad JSON, an unsupported content type, a broken multipart body.
    return { status, result: ReturnCode.INVALID_INPUT, message: `bad request: ${describeError(error)}` };
  }
  return { status: 200, result: ReturnCode.ERROR, message: `the gateway failed: ${describeError(error)}` };
}

/** How much of a refused oversize body is read and dropped so the client sees the answer. */
export const DRAIN_MAX_BYTES = 128 * 1024 * 1024;
export const DRAIN_MAX_MS = 20_000;

/**
 * Reads and drops the rest of a request body. A server that answers 413 and closes while the client is
 * still uploading leaves most clients (browsers, fetch) with a broken pipe instead of the answer.
 */
function drain(raw: IncomingMessage): Promise<void> {
  if (raw.complete || raw.readableEnded || raw.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    let seen = 0;
    const finish = () => {
      clearTimeout(timer);
      raw.off('data', onData);
      raw.off('end', finish);
      raw.off('error', finish);
      raw.off('close', finish);
      resolve();
    };
    const onData = (chunk: Buffer) => {
      seen += chunk.length;
      if (seen > DRAIN_MAX_BYTES) finish();
    };
    const timer = setTimeout(finish, DRAIN_MAX_MS);
    raw.on('data', onData);
    raw.on('end', finish);
    raw.on('error', finish);
    raw.on('close', finish);
    raw.resume();
  });
}

/** The JSON answer for `error` on `request`'s route. */
export async function sendError(request: FastifyRequest, reply: FastifyReply, error: unknown, logger: Logger): Promise<FastifyReply> {
  const answer = errorAnswer(error);
  if (answer.status === 413) {
    await drain(request.raw);
    reply.header('connection', 'close');
  }
  const log = { err: describeError(error), method: request.method, url: request.url.slice(0, 200), result: answer.result };
  if (answer.result === ReturnCode.ERROR && answer.status === 200) logger.error(log, 'request failed in the gateway');
  else if (answer.status === 503) logger.warn(log, 'cannot reach the cluster');
  else logger.debug(log, 'request refused');
  const failure = request.routeOptions.config?.failure ?? {};
  return reply
    .code(answer.status)
    .header('cache-control', 'no-store')
    .type('application/json; charset=utf-8')
    .send({ result: answer.result, ...failure, message: answer.message, ...(answer.errors ? { errors: answer.errors } : {}) });
}
