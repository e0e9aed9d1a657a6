// The MongoDB store's transitions: one function each (TASK_TRANSITIONS). Each reads the small fields of
// the tasks it changes (one query for all of them), asks the rule (transition-rules.ts), and writes each
// change with an update whose filter is the task as it was read, so that a task changed meanwhile by
// another judicator is not overwritten: it is read and decided again (CAS_ATTEMPTS). assign picks and
// changes a task in one findOneAndUpdate, its filter being the rule's condition (queued). The writes of a
// call are a list, ready to go into one MongoDB transaction when group commit comes.
import type { Collection, Filter, ObjectId } from 'mongodb';
import { TooLargeError, UnavailableError, describeError } from '../../common/errors';
import { newId } from '../../common/ids';
import type { Logger } from '../../common/logging';
import { resultSize } from '../../task/codec';
import { checkTaskSize } from '../../task/schema';
import { TaskStatus, type Task } from '../../task/types';
import type { RequeueOutcome, TransitionFunctions } from '../task-store';
import * as rules from '../transition-rules';
import { STATE_PROJECTION, changeSet, parseId, stateOf, taskDoc, toTask, unchangedSince, type StateDoc, type TaskDoc } from './documents';
import { checkFence, isDuplicateKey, isTooLargeError, translate } from './errors';

/** How many times a task is read and decided again when other writers keep changing it. */
const CAS_ATTEMPTS = 8;
/** Finished tasks deleted by one retention round. */
export const DEFAULT_DELETE_BATCH = 1000;

/** What the MongoDB store's transitions work with. */
export interface MongoTransitionContext {
  tasks: Collection<TaskDoc>;
  now: () => number;
  logger: Logger;
  /** Largest stored task (input plus result), bytes. */
  maxTaskSize: number;
  /** See transition-rules.ts runningRule. */
  reportRefreshMs: number;
}

export const mongoTransitions: TransitionFunctions<MongoTransitionContext> = {
  async add({ tasks, now, maxTaskSize }, task, id) {
    const size = checkTaskSize(task, maxTaskSize);
    const hex = id ?? newId(now());
    const oid = parseId(hex);
    if (!oid) throw new Error(`not a task id: ${hex}`);
    try {
      await tasks.insertOne(taskDoc(task, oid));
    } catch (error) {
      // The same client-chosen id again: the first add went through (its answer was lost).
      if (id !== undefined && isDuplicateKey(error)) return hex;
      if (isTooLargeError(error)) throw new TooLargeError(`the task takes ${size} bytes, more than the task size limit of ${maxTaskSize} bytes (--task-max-size)`);
      throw translate(error, 'adding a task');
    }
    return hex;
  },

  async assign({ tasks, now, logger }, executor, count) {
    const assigned: Task[] = [];
    try {
      while (assigned.length < count) {
        // Picked and changed in one atomic step (the filter is assignRule's condition): concurrent
        // judicators never hand one task to two executors.
        const fields = rules.assignment(executor, now());
        const doc = await tasks.findOneAndUpdate(
          { done: false, executor: null },
          { $set: { executor: fields.executor, acknowledged: fields.acked, report_time: new Date(fields.report_ms) } },
          { sort: { add_time: 1, _id: 1 }, returnDocument: 'after' },
        );
        if (!doc) break;
        assigned.push(toTask(doc));
      }
    } catch (error) {
      if (assigned.length > 0) {
        // These are held now; the executor gets them again through unacknowledged() if this answer is lost.
        logger.warn({ err: describeError(error), executor }, 'assignment stopped early');
        return assigned;
      }
      throw translate(error, 'assigning tasks');
    }
    return assigned;
  },

  async updateExecuting(context, executor, updates) {
    const byId = new Map(updates.map((update) => [update.id, update.status]));
    const outcomes = await perTask(context, [...byId.keys()], 'recording running tasks', {}, (state, id, now) =>
      rules.runningRule(state, executor, byId.get(id)!, now, context.reportRefreshMs),
    );
    return { notHeld: [...byId.keys()].filter((id) => !outcomes.get(id)) };
  },

  async complete(context, executor, reports) {
    const byId = new Map(reports.map((task) => [task.id, task]));
    const outcomes = await perTask(
      context,
      [...byId.keys()],
      'recording results',
      {
        // A result the server still finds too large (BSON overhead past 16 MB) ends the task as too large.
        onTooLarge: (doc, change, id) => {
          const size = stateOf(doc).input_size + resultSize(byId.get(id)!.result);
          return { ...change, next: { ...change.next, status: TaskStatus.UNKNOWN_ERROR }, result: rules.tooLargeResult(size, context.maxTaskSize), reported: false };
        },
      },
      (state, id, now) => rules.completeRule(state, executor, byId.get(id)!, context.maxTaskSize, now),
    );
    return { accepted: [...byId.keys()].filter((id) => outcomes.get(id)) };
  },

  async release(context, executor, ids) {
    return (await sendBack(context, executor, { ids: [...new Set(ids)] }, rules.RELEASE)).retried;
  },

  async requeueUnreported(context, executor, reported, maxRetries) {
    const scope: Filter<TaskDoc> = { executor, done: false, acknowledged: true, _id: { $nin: objectIds(reported) } };
    return sendBack(context, executor, { scope }, rules.unreported(maxRetries));
  },

  async requeueHeldBy(context, executor, options) {
    await checkFence(options.fence);
    const scope: Filter<TaskDoc> = { executor, done: false };
    if (options.olderThanMs !== undefined) scope.report_time = { $lt: new Date(options.olderThanMs) };
    return sendBack(context, executor, { scope }, rules.heldTooLong(options));
  },

  async cancel(context, id) {
    if (!parseId(id)) return { found: false };
    const outcomes = await perTask(context, [id], 'cancelling a task', {}, (state, _id, now) => rules.cancelRule(state, now));
    return outcomes.get(id) ?? { found: false };
  },

  async deleteFinishedBefore({ tasks }, beforeMs, batch = DEFAULT_DELETE_BATCH, fence) {
    await checkFence(fence);
    let deleted = 0;
    try {
      for (;;) {
        const ids = await tasks.find({ done: true, report_time: { $lt: new Date(beforeMs) } }, { projection: { _id: 1 }, limit: batch }).toArray();
        if (ids.length === 0) break;
        const result = await tasks.deleteMany({ _id: { $in: ids.map((d) => d._id) }, done: true });
        deleted += result.deletedCount;
        if (ids.length < batch) break;
      }
    } catch (error) {
      throw translate(error, 'deleting finished tasks');
    }
    return deleted;
  },
};

/**
 * Reads the state of the tasks `ids` (one query; `preloaded` stands in for the first), decides each with
 * `decide`, and writes each change with a filter on the state read. A task whose filter no longer
 * matches (another writer changed it) is read and decided again, up to CAS_ATTEMPTS times. Returns the
 * outcome of each task decided.
 */
async function perTask<T>(
  { tasks, now }: MongoTransitionContext,
  ids: readonly string[],
  what: string,
  options: { preloaded?: readonly StateDoc[]; onTooLarge?: (doc: StateDoc, change: rules.Change, id: string) => rules.Change },
  decide: (state: rules.TaskState | undefined, id: string, now: number) => rules.Decision<T>,
): Promise<Map<string, T>> {
  const outcomes = new Map<string, T>();
  let todo = [...new Set(ids)].filter((id) => parseId(id) !== undefined);
  try {
    for (let attempt = 0; todo.length > 0; attempt++) {
      if (attempt === CAS_ATTEMPTS) {
        throw new UnavailableError(`the task store could not finish ${what}: tasks ${todo.join(', ')} kept changing under it (${CAS_ATTEMPTS} attempts); try again`);
      }
      const docs =
        attempt === 0 && options.preloaded
          ? options.preloaded
          : await tasks.find({ _id: { $in: todo.map((id) => parseId(id)!) } }, { projection: STATE_PROJECTION }).toArray();
      const byId = new Map(docs.map((doc) => [doc._id.toHexString(), doc as StateDoc]));
      const again: string[] = [];
      const at = now();
      for (const id of todo) {
        const doc = byId.get(id);
        const decision = decide(doc && stateOf(doc), id, at);
        if (decision.kind !== 'change' || !doc) {
          outcomes.set(id, decision.outcome);
          continue;
        }
        if (await writeChange(tasks, doc, decision.change, options.onTooLarge && ((change) => options.onTooLarge!(doc, change, id)))) outcomes.set(id, decision.outcome);
        else again.push(id);
      }
      todo = again;
    }
  } catch (error) {
    throw translate(error, what);
  }
  return outcomes;
}

/** Writes `change` on the task as it was read; false when it changed since (the filter matched nothing). */
async function writeChange(tasks: Collection<TaskDoc>, doc: StateDoc, change: rules.Change, onTooLarge?: (change: rules.Change) => rules.Change): Promise<boolean> {
  try {
    return (await tasks.updateOne(unchangedSince(doc), { $set: changeSet(doc, change) })).matchedCount === 1;
  } catch (error) {
    if (!onTooLarge || !isTooLargeError(error)) throw error;
    return (await tasks.updateOne(unchangedSince(doc), { $set: changeSet(doc, onTooLarge(change)) })).matchedCount === 1;
  }
}

/**
 * Takes tasks of `executor` back to the queue as `how` says: the tasks `ids`, or those that `scope` finds
 * (their state read by the query that finds them).
 */
async function sendBack(
  context: MongoTransitionContext,
  executor: string,
  which: { ids: readonly string[] } | { scope: Filter<TaskDoc> },
  how: rules.SendBack,
): Promise<RequeueOutcome> {
  let preloaded: StateDoc[] | undefined;
  if ('scope' in which) {
    try {
      preloaded = (await context.tasks.find(which.scope, { projection: STATE_PROJECTION }).toArray()) as StateDoc[];
    } catch (error) {
      throw translate(error, 'requeueing tasks');
    }
  }
  const chosen = 'ids' in which ? which.ids : preloaded!.map((doc) => doc._id.toHexString());
  const outcomes = await perTask(context, chosen, 'requeueing tasks', preloaded ? { preloaded } : {}, (state, _id, now) => rules.sendBackRule(state, executor, how, now));
  const outcome = rules.requeueOutcome(chosen, (id) => outcomes.get(id));
  const message = rules.sendBackMessage(executor, how, outcome);
  if (message) context.logger.info({ executor, reason: how.reason, ...outcome }, message);
  return outcome;
}

/** The ObjectIds of the valid task ids among `ids`. */
export function objectIds(ids: Iterable<string>): ObjectId[] {
  return [...ids].map(parseId).filter((oid): oid is ObjectId => oid !== undefined);
}
