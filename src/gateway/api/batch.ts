// POST /api/task/batch (addition): up to `limits.batch_max` tasks in one JSON call, as an array of task
// objects or {"tasks": [...]}. Each task is checked and added on its own, so one bad task does not stop
// the others; the answer has one {result, id[, message][, errors]} per task, in order (errors: every bad
// field of that task, issue 17). A batch that is not one, or whose every task has bad fields, is HTTP 400.
import type { FastifyInstance } from 'fastify';
import { InvalidFieldsError, type FieldError } from '../../common/errors';
import { ReturnCode, returnCodeName } from '../../task/types';
import { z } from 'zod';
import { parseSubmission, submissionSchemas } from '../forms';
import { answerSchema, errorAnswerSchema } from './answers';
import type { RouteDoc } from './openapi';
import type { ApiContext } from './context';
import { errorAnswer } from './errors';
import { callerOf, claimSubmission } from './ownership';
import { addTask } from './tasks';

interface ItemAnswer {
  result: ReturnCode;
  id: string | null;
  message?: string;
  errors?: readonly FieldError[];
}

/** Runs `work` over `items` with at most `concurrency` at once, keeping the order of the answers. */
async function mapLimited<T, R>(items: readonly T[], concurrency: number, work: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const answers = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      answers[index] = await work(items[index]!, index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
  return answers;
}

const BATCH_DOC: RouteDoc = {
  summary: 'Submit many tasks',
  description: 'Up to limits.batch_max tasks in one JSON body (an array, or {"tasks": [...]}), each the JSON of POST /api/task; each is checked and added on its own.',
  tag: 'Tasks',
  api: true,
  body: {
    description: 'The tasks.',
    required: true,
    content: { 'application/json': z.union([z.array(submissionSchemas().json), z.object({ tasks: z.array(submissionSchemas().json) }).strict()]) },
  },
  responses: {
    '200': {
      description: 'One answer per task, in order.',
      content: { 'application/json': answerSchema.extend({ results: z.array(errorAnswerSchema.extend({ id: z.string().nullable() })) }) },
    },
    '400': { description: 'No batch at all, or every task of it is bad.', content: { 'application/json': errorAnswerSchema.extend({ results: z.array(errorAnswerSchema) }) } },
  },
};

export function registerBatchRoute(app: FastifyInstance, context: ApiContext): void {
  app.post('/api/task/batch', { config: { failure: { results: [] }, openapi: BATCH_DOC } }, async (request, reply) => {
    const refuse = (message: string) => new InvalidFieldsError([{ field: 'tasks', message }]);
    if (!/json/i.test(request.headers['content-type'] ?? '')) {
      throw refuse('a batch is a JSON body: an array of tasks, or {"tasks": [...]} (Content-Type: application/json)');
    }
    const body = request.body as unknown;
    const tasks = Array.isArray(body) ? body : body && typeof body === 'object' ? (body as { tasks?: unknown }).tasks : undefined;
    if (!Array.isArray(tasks)) throw refuse('a batch is an array of tasks, or {"tasks": [...]}');
    if (tasks.length === 0) throw refuse('the batch holds no task');
    if (tasks.length > context.limits.batch_max) {
      throw refuse(`a batch holds at most ${context.limits.batch_max} tasks, not ${tasks.length}; split it`);
    }
    const caller = callerOf(request);
    const results = await mapLimited(tasks, context.limits.batch_concurrency, async (item, index): Promise<ItemAnswer> => {
      try {
        if (!item || typeof item !== 'object' || Array.isArray(item)) throw new InvalidFieldsError([{ field: `tasks[${index}]`, message: `task ${index} is not a JSON object` }]);
        const fields = { ...(item as Record<string, unknown>) };
        claimSubmission(fields, caller);
        const task = parseSubmission({ fields, files: {}, kind: 'json' }, { taskMaxSize: context.limits.task_max_size, callbacks: context.callbacks });
        const id = await addTask(context, task);
        context.metrics.tasksSubmitted.inc({ outcome: 'ok' });
        return { result: ReturnCode.OK, id };
      } catch (error) {
        const answer = errorAnswer(error);
        context.metrics.tasksSubmitted.inc({ outcome: returnCodeName(answer.result) });
        return { result: answer.result, id: null, message: answer.message, ...(answer.errors ? { errors: answer.errors } : {}) };
      }
    });
    // Nothing added, every task refused for its fields: the batch itself was bad input.
    if (results.every((item) => item.errors !== undefined)) {
      reply.code(400);
      return { result: ReturnCode.INVALID_INPUT, message: `no task of the batch is acceptable (the first: ${results[0]!.message})`, results };
    }
    return { result: ReturnCode.OK, results };
  });
}
