// POST /api/task/batch (addition): up to `limits.batch_max` tasks in one JSON call, as an array of task
// objects or {"tasks": [...]}. Each task is checked and added on its own, so one bad task does not stop
// the others; the answer has one {result, id[, message]} per task, in order.
import type { FastifyInstance } from 'fastify';
import { InvalidInputError } from '../../common/errors';
import { ReturnCode } from '../../task/types';
import { parseSubmission } from '../forms';
import type { ApiContext } from './context';
import { errorAnswer } from './errors';
import { outcomeName } from './judicator';
import { callerOf, claimSubmission } from './ownership';
import { addTask } from './tasks';

interface ItemAnswer {
  result: ReturnCode;
  id: string | null;
  message?: string;
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

export function registerBatchRoute(app: FastifyInstance, context: ApiContext): void {
  app.post('/api/task/batch', { config: { failure: { results: [] } } }, async (request) => {
    if (!/json/i.test(request.headers['content-type'] ?? '')) {
      throw new InvalidInputError('a batch is a JSON body: an array of tasks, or {"tasks": [...]} (Content-Type: application/json)');
    }
    const body = request.body as unknown;
    const tasks = Array.isArray(body) ? body : body && typeof body === 'object' ? (body as { tasks?: unknown }).tasks : undefined;
    if (!Array.isArray(tasks)) throw new InvalidInputError('a batch is an array of tasks, or {"tasks": [...]}');
    if (tasks.length === 0) throw new InvalidInputError('the batch holds no task');
    if (tasks.length > context.limits.batch_max) {
      throw new InvalidInputError(`a batch holds at most ${context.limits.batch_max} tasks, not ${tasks.length}; split it`);
    }
    const caller = callerOf(request);
    const results = await mapLimited(tasks, context.limits.batch_concurrency, async (item, index): Promise<ItemAnswer> => {
      try {
        if (!item || typeof item !== 'object' || Array.isArray(item)) throw new InvalidInputError(`task ${index} is not a JSON object`);
        const fields = { ...(item as Record<string, unknown>) };
        claimSubmission(fields, caller);
        const task = parseSubmission({ fields, files: {}, kind: 'json' }, { taskMaxSize: context.limits.task_max_size });
        const id = await addTask(context, task);
        context.metrics.tasksSubmitted.inc({ outcome: 'ok' });
        return { result: ReturnCode.OK, id };
      } catch (error) {
        const answer = errorAnswer(error);
        context.metrics.tasksSubmitted.inc({ outcome: outcomeName(answer.result) });
        return { result: answer.result, id: null, message: answer.message };
      }
    });
    return { result: ReturnCode.OK, results };
  });
}
