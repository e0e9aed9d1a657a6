// The task routes of the original (POST/DELETE/GET /api/task, GET /api/task/list) with its JSON shapes,
// GET /api/task's `wait` (addition: long polling for a result), and the helpers the batch route shares:
// reading a submission from any body and adding it with an id chosen here, so an add retried on another
// judicator after a lost answer adds the task once.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { InvalidFieldsError, InvalidInputError, NotFoundError, describeError } from '../../common/errors';
import { newId } from '../../common/ids';
import { inputToWire, taskFromWire } from '../../rpc/wire';
import { ReturnCode, returnCodeName, type TaskInput } from '../../task/types';
import { z } from 'zod';
import { ARCHIVE_FIELDS, parseSearchQuery, parseSubmission, submissionSchemas, type Submission } from '../forms';
import { presentBrief, presentTask, taskDownload } from '../present';
import type { ApiContext } from './context';
import { BadRequestError, BodyTooLargeError, JudicatorAnswerError, errorAnswer } from './errors';
import { checked } from './judicator';
import { answerSchema, briefSchema, errorAnswerSchema, taskSchema } from './answers';
import type { RouteDoc } from './openapi';
import { callerOf, checkOwner, claimSubmission, restrictSearch } from './ownership';
import { cancelQuery, listQuery, parseQuery, taskQuery } from './queries';
import { DEFAULT_WAIT_MAX_S } from './wait';

const ARCHIVES: ReadonlySet<string> = new Set(ARCHIVE_FIELDS);
/**
 * What one multipart submission may hold: files, text fields, and parts in all (a task has about 40
 * fields and three files). Counted and capped as a whole as well as per part: the bytes kept of all parts
 * together stay under the body limit, so no request can hold more than that in the gateway's memory.
 */
const MAX_FORM_FILES = 8;
const MAX_FORM_FIELDS = 64;
const MAX_FORM_PARTS = 72;

/** A request's query or form value: the first one when a name is repeated. */
function first(value: unknown): unknown {
  return Array.isArray(value) ? value[0] : value;
}

/** The multipart parser's own failures that mean the client sent a broken body (busboy says them in words). */
function brokenBody(error: unknown): boolean {
  const code = (error as { code?: string }).code;
  if (code && /^FST_/.test(code)) return false; // Fastify's own: the error handler maps their statuses
  return error instanceof Error && !(error instanceof BodyTooLargeError) && !(error as { statusCode?: number }).statusCode;
}

/** The submission in a multipart form, an urlencoded form or a JSON object. */
export async function readSubmission(request: FastifyRequest, context: ApiContext): Promise<Submission> {
  const limit = context.limits.body_bytes;
  if (request.isMultipart()) {
    // Refused before a byte of it is read when it says it is larger than a whole request may be.
    const declared = Number(request.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) throw new BodyTooLargeError(`the request is ${declared} bytes, more than the limit of ${limit} bytes`);
    const fields: Record<string, unknown> = {};
    const files: Record<string, Buffer> = {};
    let kept = 0;
    const keep = (bytes: number, what: string) => {
      kept += bytes;
      if (kept > limit) throw new BodyTooLargeError(`the request is larger than the limit of ${limit} bytes (at ${what})`);
    };
    const parts = request.parts({ limits: { fileSize: limit, fieldSize: limit, files: MAX_FORM_FILES, fields: MAX_FORM_FIELDS, parts: MAX_FORM_PARTS } });
    try {
      for await (const part of parts) {
        if (part.type === 'file') {
          const bytes = await part.toBuffer();
          keep(bytes.length, part.fieldname);
          // A browser sends an empty file part for a file input left empty: that is no file.
          if (!part.filename && bytes.length === 0) continue;
          if (ARCHIVES.has(part.fieldname)) {
            if (!(part.fieldname in files)) files[part.fieldname] = bytes;
          } else if (!(part.fieldname in fields)) {
            // curl -F execute_input=@input.txt: a text field sent as a file is that file's text.
            fields[part.fieldname] = bytes.toString('utf8');
          }
        } else {
          if (part.valueTruncated) throw new BodyTooLargeError(`the field ${part.fieldname} is longer than the limit of ${limit} bytes`);
          keep(typeof part.value === 'string' ? Buffer.byteLength(part.value) : 0, part.fieldname);
          if (!(part.fieldname in fields)) fields[part.fieldname] = part.value;
        }
      }
    } catch (error) {
      if (brokenBody(error)) throw new BadRequestError(`the multipart body cannot be read: ${describeError(error)}`);
      throw error;
    }
    return { fields, files, kind: 'form' };
  }
  const body = request.body;
  const json = /json/i.test(request.headers['content-type'] ?? '');
  if (body === undefined || body === null || body === '') return { fields: {}, files: {}, kind: json ? 'json' : 'form' };
  if (typeof body !== 'object' || Array.isArray(body)) throw new InvalidInputError('the body must be a form or a JSON object of the task fields');
  const fields = Object.fromEntries(Object.entries(body as Record<string, unknown>).map(([k, v]) => [k, json ? v : first(v)]));
  return { fields, files: {}, kind: json ? 'json' : 'form' };
}

/** The answer of a route: its own keys beside `result` and `message`. */
const answer = (fields: z.ZodRawShape) => answerSchema.extend(fields);

const SUBMIT_DOC = (schemas: { form: z.ZodObject; json: z.ZodObject }): RouteDoc => ({
  summary: 'Submit a task',
  description:
    "The original's form fields, as multipart/form-data (zips as files), application/x-www-form-urlencoded, or a JSON object (zips as base64). " +
    'Every bad field is named at once (HTTP 400, `errors`).',
  tag: 'Tasks',
  api: true,
  body: {
    description: 'The task.',
    required: true,
    content: { 'multipart/form-data': schemas.form, 'application/x-www-form-urlencoded': schemas.form, 'application/json': schemas.json },
  },
  responses: {
    '200': { description: 'Added (result 0, its id), or refused by the judicators (TOO_LARGE...).', content: { 'application/json': answer({ id: z.string().nullable() }) } },
    '400': { description: 'Bad fields: every one of them, each with what is wrong.', content: { 'application/json': errorAnswerSchema.extend({ id: z.null() }) } },
    '413': { description: 'The request is larger than the gateway takes.', content: { 'application/json': errorAnswerSchema } },
    '415': { description: 'A body that is no form and no JSON.', content: { 'application/json': errorAnswerSchema } },
  },
});

const CANCEL_DOC: RouteDoc = {
  summary: 'Cancel a task',
  description: 'Stops the task wherever it is. The id may also come in a form or JSON body.',
  tag: 'Tasks',
  api: true,
  query: cancelQuery,
  responses: { '200': { description: 'Cancelled (0), not there or already done (NOT_EXIST), or a bad id (INVALID_INPUT).', content: { 'application/json': answerSchema } } },
};

const LIST_DOC: RouteDoc = {
  summary: 'Search tasks',
  description: "Briefs of the tasks that match, newest first unless asked otherwise; each with its verdict once it is done.",
  tag: 'Tasks',
  api: true,
  query: listQuery,
  responses: { '200': { description: 'The page asked for, and how many pages there are.', content: { 'application/json': answer({ pages: z.number().int(), tasks: z.array(briefSchema) }) } } },
};

const GET_DOC = (query: z.ZodObject): RouteDoc => ({
  summary: 'Read a task',
  description:
    'The task with its result once it has one (verdict, tests); long text cut at 1000 characters and "..." unless no_truncate. ' +
    'With file, one field raw as a download (404 when it is empty or does not exist); with wait, the answer is held until the task is done.',
  tag: 'Tasks',
  api: true,
  query,
  responses: {
    '200': {
      description: 'The task (result 0), or why not (NOT_EXIST, INVALID_INPUT); with file, the field itself.',
      content: { 'application/json': answer({ task: taskSchema.nullable() }), 'application/octet-stream': { type: 'string', contentMediaType: 'application/octet-stream' } },
    },
    '404': { description: 'A download of a field that is empty, or of a task that does not exist.', content: { 'application/json': errorAnswerSchema } },
  },
});

/** Adds a task under an id chosen here: the RPC client's retries on other judicators then add it once. */
export async function addTask(context: ApiContext, task: TaskInput): Promise<string> {
  const id = newId();
  const answer = await context.calls.ok('add', { task: inputToWire(task), id });
  return answer.id ?? id;
}

export function registerTaskRoutes(app: FastifyInstance, context: ApiContext): void {
  const submission = submissionSchemas();
  const getQuery = taskQuery(context.limits.wait_max_s ?? DEFAULT_WAIT_MAX_S);
  app.post('/api/task', { config: { failure: { id: null }, openapi: SUBMIT_DOC(submission) } }, async (request) => {
    try {
      const submission = await readSubmission(request, context).catch((error: unknown) => {
        // A body that is no form at all is bad input too: HTTP 400 like a bad field.
        throw error instanceof InvalidInputError && !(error instanceof InvalidFieldsError) ? new InvalidFieldsError([{ field: 'body', message: error.message }]) : error;
      });
      claimSubmission(submission.fields, callerOf(request));
      const task = parseSubmission(submission, { taskMaxSize: context.limits.task_max_size, callbacks: context.callbacks });
      const id = await addTask(context, task);
      context.metrics.tasksSubmitted.inc({ outcome: 'ok' });
      context.logger.debug({ id, user: task.user }, 'task submitted');
      return { result: ReturnCode.OK, id };
    } catch (error) {
      context.metrics.tasksSubmitted.inc({ outcome: returnCodeName(errorAnswer(error).result) });
      throw error;
    }
  });

  app.delete('/api/task', { config: { failure: {}, openapi: CANCEL_DOC } }, async (request) => {
    const query = request.query as Record<string, unknown>;
    const body = request.body && typeof request.body === 'object' ? (request.body as Record<string, unknown>) : {};
    const { id } = parseQuery(cancelQuery, { id: first(query.id) ?? first(body.id) });
    const caller = callerOf(request);
    if (!caller.admin) {
      const answer = await context.calls.ok('get', { id });
      if (answer.task) checkOwner(answer.task.user, caller, id);
    }
    await context.calls.ok('cancel', { id });
    return { result: ReturnCode.OK };
  });

  app.get('/api/task/list', { config: { failure: { pages: 0, tasks: [] }, openapi: LIST_DOC } }, async (request) => {
    const search = restrictSearch(parseSearchQuery(request.query as Record<string, unknown>), callerOf(request));
    const answer = await context.calls.ok('search', search);
    return { result: ReturnCode.OK, pages: answer.pages, tasks: answer.tasks.map(presentBrief) };
  });

  /**
   * GET /api/task?id=<id>[&no_truncate=1][&file=<name>][&wait=<seconds>]. With `wait` (addition, a number
   * of seconds up to limits.wait_max_s, 60 by default; more is cut to it, a bad value is INVALID_INPUT)
   * the answer is held until the task is done, or sent with the task as it is when the wait ends: a
   * client waiting for a result asks again only if `task.done` is still false. Same JSON either way.
   */
  app.get('/api/task', { config: { failure: { task: null }, openapi: GET_DOC(getQuery) } }, async (request, reply) => {
    const query = parseQuery(getQuery, request.query);
    const id = query.id;
    const noTruncate = query.no_truncate ?? false;
    const waitMs = Math.round((query.wait ?? 0) * 1000);
    const wanted = query.file;
    const caller = callerOf(request);
    let answer;
    try {
      // Someone else's task is refused before a wait is held for it.
      if (waitMs > 0 && !caller.admin) {
        const now = await context.calls.ok('get', { id });
        if (now.task) checkOwner(now.task.user, caller, id);
      }
      if (waitMs > 0) {
        request.metricsRoute = '/api/task?wait';
        // The client hanging up ends the wait (its response's socket closes), and the judicator's with it.
        const hungUp = new AbortController();
        reply.raw.once('close', () => hungUp.abort());
        const waited = await context.waits.wait(id, waitMs, hungUp.signal).catch((error: unknown) => {
          if (!hungUp.signal.aborted) throw error;
          return undefined;
        });
        // Nobody is left to answer: no error to log either.
        if (!waited) return { result: ReturnCode.ERROR, task: null, message: 'the client left before the wait ended' };
        answer = checked(waited);
      } else {
        answer = await context.calls.ok('get', { id });
      }
    } catch (error) {
      // A download of a task that does not exist is a 404, as in the original.
      if (wanted && error instanceof JudicatorAnswerError && error.result === ReturnCode.NOT_EXIST) throw new NotFoundError(error.message);
      throw error;
    }
    if (!answer.task) throw new JudicatorAnswerError(ReturnCode.NOT_EXIST, `no task ${id}`);
    checkOwner(answer.task.user, caller, id);
    const task = taskFromWire(answer.task);
    if (wanted === undefined) return { result: ReturnCode.OK, task: presentTask(task, { noTruncate }) };
    const download = taskDownload(task, wanted);
    return reply
      .header('content-type', download.contentType)
      .header('content-disposition', `attachment; filename="${download.filename}"`)
      .header('cache-control', 'no-store, no-cache, must-revalidate')
      .header('x-content-type-options', 'nosniff')
      .send(download.body);
  });
}
