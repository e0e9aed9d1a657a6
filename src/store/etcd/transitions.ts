// The etcd store's transitions: one function each (TASK_TRANSITIONS), each reading what it needs, asking
// the rule (transition-rules.ts) and writing the change conditioned on what it read (changes.ts).
//
// Round trips, for an executor reporting to one judicator: add 1 (plus a few for an input over 1 MiB);
// complete 1 (plus the staging of a result over 1 MiB); updateExecuting 0 or 1; requeueUnreported and
// release 0 or 1 (the executor's held view); assign 2 (the queue with the tasks' metadata, then the claim
// with their inputs). The executor's held tasks are read again at most every DEFAULT_HELD_VIEW_MS.
import type { IKeyValue, IRequestOp } from 'etcd3';
import { UnavailableError } from '../../common/errors';
import { newId } from '../../common/ids';
import { isoTime } from '../../common/time';
import { resultSize } from '../../task/codec';
import { checkTaskSize } from '../../task/schema';
import { TaskStatus, type CompletedTask, type Task } from '../../task/types';
import type { RequeueOutcome, TransitionFunctions, WriteFence } from '../task-store';
import * as rules from '../transition-rules';
import { joinChunks, readChunks, stageBlob, type StagedBlob } from './chunks';
import { OP_OVERHEAD, requestBytes, type Loaded, type Planned, type TaskChanges } from './changes';
import { lastSegment, prefixEnd } from './keys';
import { newMeta, taskOf, type TaskMeta } from './meta';
import { packInput, packResult } from './packing';
import { cmp, etcdCall, op, runSteps, type StepResult, type TxnStep } from './txn';

/** How many rounds assign makes when other judicators keep taking the tasks it picked. */
const MAX_ASSIGN_ROUNDS = 5;
/** Tasks deleted by one retention transaction (each takes about ten operations). */
export const DEFAULT_DELETE_BATCH = 500;

/** What the etcd store's transitions work with. */
export interface EtcdTransitionContext {
  changes: TaskChanges;
  /** Largest stored task (input plus result), bytes. */
  maxTaskSize: number;
  /** See transition-rules.ts runningRule: a running task's report time is rewritten at most this often. */
  reportRefreshMs: number;
  /** Queue entries being claimed by assign calls in flight here. */
  claiming: Set<string>;
}

export const etcdTransitions: TransitionFunctions<EtcdTransitionContext> = {
  async add({ changes, maxTaskSize }, task, id) {
    const size = checkTaskSize(task, maxTaskSize);
    const taskId = id ?? newId(changes.now());
    const k = changes.keys;
    const input = await stageBlob(changes.client(), packInput(task), (token) => k.input(taskId, token), changes.limits, 'store the task input');
    const meta = JSON.stringify(newMeta(task, taskId, size, input));
    // Create-if-absent: a client retrying an add with its own id gets the one task.
    const response = await etcdCall('add the task', () =>
      changes.client().kv.txn({
        compare: [cmp.absent(k.task(taskId)), ...input.compare],
        success: [
          op.put(k.task(taskId), meta),
          ...input.ops,
          op.put(k.user(task.user, taskId), ''),
          op.put(k.userDesc(task.user, taskId), ''),
          op.put(k.desc(taskId), ''),
          op.put(k.status(TaskStatus.PENDING, taskId), ''),
          op.put(k.pending(taskId), meta),
        ],
        failure: [op.get(k.task(taskId))],
      }),
    );
    if (!response.succeeded) {
      await input.discard();
      if (!response.responses[0]?.response_range?.kvs.length) {
        throw new UnavailableError(`the input of task ${taskId} expired before the task could be added (the store was too slow); add it again`);
      }
    }
    return taskId;
  },

  async assign(context, executor, count) {
    const assigned: Task[] = [];
    for (let round = 0; assigned.length < count && round < MAX_ASSIGN_ROUNDS; round++) {
      const queue = await readQueue(context, count - assigned.length);
      // Nothing, or only what the others are claiming: the queue is empty for this call.
      if (queue.entries.length === 0) break;
      const claim = claimRound(context, executor, queue.entries);
      let lost: number;
      try {
        lost = claim.settle(await runSteps(context.changes.client(), claim.steps, context.changes.limits, 'assign tasks'), assigned);
      } finally {
        claim.release();
      }
      // Fewer queued than wanted, and none lost to another judicator: the queue is empty.
      if (!queue.more && lost === 0) break;
    }
    return assigned;
  },

  async updateExecuting({ changes, reportRefreshMs }, executor, updates) {
    const byId = new Map(updates.map((update) => [update.id, update.status]));
    const results = await changes.perTask([...byId.keys()], 'record the running tasks', { from: 'held', executor }, (task, now) =>
      changes.planned(task, rules.runningRule(task.meta, executor, byId.get(task.id)!, now, reportRefreshMs)),
    );
    return { notHeld: [...byId.keys()].filter((id) => !results.get(id)?.outcome) };
  },

  async complete(context, executor, tasks) {
    const byId = new Map(tasks.map((task) => [task.id, task]));
    const staged = await stageResults(context, byId.values());
    const used = new Set<string>();
    try {
      const plan = completePlan(context, executor, byId, staged, used);
      const ids = [...byId.keys()];
      const results = await context.changes.perTask(ids, 'record the finished tasks', { from: 'held', executor }, plan);
      for (const id of ids) if (!results.get(id)?.outcome) used.delete(id);
      return { accepted: ids.filter((id) => results.get(id)?.outcome) };
    } finally {
      await discardUnused(staged, used);
    }
  },

  async release(context, executor, ids) {
    return (await sendBack(context, executor, [...new Set(ids)], rules.RELEASE)).retried;
  },

  async requeueUnreported(context, executor, reported, maxRetries) {
    const lost = (await context.changes.heldBy(executor)).filter((task) => task.meta?.acked && !reported.has(task.id));
    if (lost.length === 0) return { retried: [], abandoned: [] };
    return sendBack(context, executor, lost, rules.unreported(maxRetries));
  },

  async requeueHeldBy(context, executor, options) {
    const how = rules.heldTooLong(options);
    const tasks = (await context.changes.heldBy(executor, true)).filter((task) => !task.meta || how.due(task.meta));
    if (tasks.length === 0) return { retried: [], abandoned: [] };
    return sendBack(context, executor, tasks, how, options.fence);
  },

  async cancel({ changes }, id) {
    const results = await changes.perTask([id], 'cancel the task', { from: 'task' }, (task, now) => changes.planned(task, rules.cancelRule(task.meta, now)));
    const outcome = results.get(id)!.outcome;
    // The holder's held view cannot follow a change made through task/<id>.
    if (outcome.found && outcome.executor !== null) changes.dropHeldView(outcome.executor);
    return outcome;
  },

  async deleteFinishedBefore({ changes }, beforeMs, batch = DEFAULT_DELETE_BATCH, fence) {
    const k = changes.keys;
    const size = Math.max(1, Math.min(Math.floor(batch), changes.limits.maxSteps));
    const end = Buffer.from(k.finishedAt(beforeMs));
    let from: Buffer = Buffer.from(k.finisheds);
    let deleted = 0;
    for (;;) {
      const response = await etcdCall('read the finished tasks', () => changes.client().kv.range({ key: from, range_end: end, limit: size, serializable: true }));
      if (response.kvs.length === 0) break;
      const steps: TxnStep[] = response.kvs.map((kv) => {
        const key = kv.key.toString();
        const id = lastSegment(key);
        const value = parseJson<{ user: number; status: number }>(kv.value);
        const ops = [
          op.del(k.task(id)),
          op.delPrefix(k.inputs(id)),
          op.delPrefix(k.results(id)),
          op.del(k.desc(id)),
          op.del(k.released(id)),
          op.del(k.pending(id)),
          op.del(k.callback(id)),
          op.del(key),
        ];
        if (value && Number.isInteger(value.user)) ops.push(op.del(k.user(value.user, id)), op.del(k.userDesc(value.user, id)));
        if (value && Number.isInteger(value.status)) ops.push(op.del(k.status(value.status, id)));
        return {
          // A task added again under the same id (a client's own id) after this one finished was created
          // after this finished entry: leave it, and drop only the stale entry.
          compare: [cmp.createdBefore(k.task(id), String(BigInt(kv.create_revision) + 1n)), ...(fence ? [cmp.exists(fence.etcdKey)] : [])],
          success: ops,
          // Without the fence nothing happens at all; otherwise a failed compare means a stale entry.
          failure: fence ? [] : [op.del(key)],
          requestBytes: OP_OVERHEAD * ops.length,
          responseBytes: 0,
        };
      });
      const results = await runSteps(changes.client(), steps, changes.limits, 'delete finished tasks');
      for (const result of results) {
        if (result.succeeded && Number(result.responses[0]?.response_delete_range?.deleted ?? 0) > 0) deleted++;
      }
      if (!response.more) break;
      from = Buffer.concat([response.kvs[response.kvs.length - 1]!.key, Buffer.from([0])]);
    }
    if (deleted > 0) changes.logger.info({ deleted, before: isoTime(beforeMs) }, `deleted ${deleted} tasks finished before ${isoTime(beforeMs)}`);
    return deleted;
  },
};

// ---------------------------------------------------------------------------------------------------
// the pieces the transitions (and a whole report, report.ts) are made of

/**
 * Stages the executors' results before the tasks are read (a small one costs nothing: it is written
 * inline). One that cannot fit whatever the input is not staged; one not used is discarded afterwards.
 */
export async function stageResults({ changes, maxTaskSize }: EtcdTransitionContext, tasks: Iterable<CompletedTask>): Promise<Map<string, StagedBlob>> {
  const staged = new Map<string, StagedBlob>();
  try {
    for (const task of tasks) {
      if (resultSize(task.result) > maxTaskSize) continue;
      staged.set(task.id, await stageBlob(changes.client(), packResult(task.result), (token) => changes.keys.result(task.id, token), changes.limits, 'store a result'));
    }
  } catch (error) {
    await discardUnused(staged, new Set());
    throw error;
  }
  return staged;
}

export async function discardUnused(staged: ReadonlyMap<string, StagedBlob>, used: ReadonlySet<string>): Promise<void> {
  for (const [id, blob] of staged) if (!used.has(id)) await blob.discard();
}

/** complete's plan for each task; `used` collects the staged results a write takes. */
export function completePlan(
  { changes, maxTaskSize }: EtcdTransitionContext,
  executor: string,
  byId: ReadonlyMap<string, CompletedTask>,
  staged: ReadonlyMap<string, StagedBlob>,
  used: Set<string>,
): (task: Loaded, now: number) => Planned<boolean> {
  return (task, now) => {
    const decision = rules.completeRule(task.meta, executor, byId.get(task.id)!, maxTaskSize, now);
    const blob = staged.get(task.id);
    if (decision.kind === 'change' && decision.change.reported && blob) used.add(task.id);
    return changes.planned(task, decision, blob ? { staged: blob } : {});
  };
}

/** A send-back's plan for each held task (an unreadable held entry, in a damaged store, is dropped). */
export function sendBackPlan(changes: TaskChanges, executor: string, how: rules.SendBack, fence?: WriteFence): (task: Loaded, now: number) => Planned<'retried' | 'abandoned' | 'skipped'> {
  const compare = fence ? [cmp.exists(fence.etcdKey)] : undefined;
  return (task, now) => {
    if (!task.meta && task.exists) return { outcome: 'skipped', write: { ops: [op.del(task.key)] }, held: null };
    return changes.planned(task, rules.sendBackRule(task.meta, executor, how, now), compare ? { compare } : {});
  };
}

/** Takes tasks (ids, or held entries already read) from `executor` back to the queue, as `how` says. */
async function sendBack(
  { changes }: EtcdTransitionContext,
  executor: string,
  tasks: readonly string[] | readonly Loaded[],
  how: rules.SendBack,
  fence?: WriteFence,
): Promise<RequeueOutcome> {
  const preloaded = typeof tasks[0] === 'object' ? (tasks as readonly Loaded[]) : undefined;
  const ids = preloaded ? preloaded.map((task) => task.id) : (tasks as readonly string[]);
  const results = await changes.perTask(ids, 'send tasks back to the queue', { from: 'held', executor }, sendBackPlan(changes, executor, how, fence), preloaded ? { preloaded } : {});
  const outcome = rules.requeueOutcome(ids, (id) => results.get(id)?.outcome);
  logSendBack(changes, executor, how, outcome);
  return outcome;
}

export function logSendBack(changes: TaskChanges, executor: string, how: rules.SendBack, outcome: RequeueOutcome): void {
  const message = rules.sendBackMessage(executor, how, outcome);
  if (message) changes.logger.info({ executor, reason: how.reason, ...outcome }, message);
}

/**
 * The head of the queue: up to `want` entries (with the tasks' metadata: no second read before the
 * claim), skipping those that assign calls in flight here are claiming. `more`: the queue may hold more.
 */
export async function readQueue({ changes, claiming }: EtcdTransitionContext, want: number): Promise<{ entries: IKeyValue[]; more: boolean }> {
  const limit = Math.min(want, changes.limits.maxSteps);
  // Reports served here at the same time would all read the same head of the queue and all but one lose
  // the race for it: each skips what the others are claiming.
  const skip = claiming.size;
  const k = changes.keys;
  const queue = await etcdCall('read the task queue', () =>
    changes.client().kv.range({ key: Buffer.from(k.pendings), range_end: prefixEnd(k.pendings), limit: limit + skip, serializable: true }),
  );
  const entries = queue.kvs.filter((kv) => !claiming.has(lastSegment(kv.key.toString()))).slice(0, limit);
  return { entries, more: queue.kvs.length >= limit + skip };
}

/**
 * The claim of queue `entries` for `executor`: one step each (with the task's input read back), marked as
 * being claimed until `release`. `settle` appends the tasks won to `assigned` and returns how many were
 * lost to another judicator.
 */
export function claimRound(
  { changes, claiming }: EtcdTransitionContext,
  executor: string,
  entries: readonly IKeyValue[],
): { steps: TxnStep[]; settle(results: readonly StepResult[], assigned: Task[]): number; release(): void } {
  const k = changes.keys;
  const now = changes.now();
  const ids = entries.map((kv) => lastSegment(kv.key.toString()));
  const release = () => {
    for (const id of ids) claiming.delete(id);
  };
  for (const id of ids) claiming.add(id);
  const claims: { id: string; next: TaskMeta | undefined }[] = [];
  const steps: TxnStep[] = [];
  try {
    for (const kv of entries) steps.push(claimStep(kv));
  } catch (error) {
    release();
    throw error;
  }
  return {
    steps,
    release,
    settle(results, assigned) {
      let lost = 0;
      results.forEach((result, i) => {
        const { id, next } = claims[i]!;
        if (!result.succeeded) {
          lost++;
          return;
        }
        if (!next) return;
        const reads = result.responses[result.responses.length - 1]?.response_range?.kvs ?? [];
        const input = joinChunks(reads, k.input(id, next.input_token), next.input_chunks);
        if (!input) {
          changes.logger.error({ id, executor }, 'assigned a task whose input is missing (a damaged store): it stays with the executor, which will fail it');
          return;
        }
        assigned.push(taskOf(id, next, input, undefined));
        changes.updateHeldView(executor, id, next, result.revision);
      });
      return lost;
    },
  };

  function claimStep(kv: IKeyValue): TxnStep {
    const key = kv.key.toString();
    const id = lastSegment(key);
    const meta = changes.metaOf(kv);
    const compare = [cmp.unchanged(key, kv.mod_revision)];
    const decision = rules.assignRule(meta, executor, now);
    if (decision.kind !== 'change' || !meta) {
      // A queue entry without an assignable task: only a damaged store has one. Drop it.
      claims.push({ id, next: undefined });
      return { compare, success: [op.del(key)], requestBytes: OP_OVERHEAD, responseBytes: 0 };
    }
    const write = changes.changeOps(id, meta, decision.change);
    const success: IRequestOp[] = [...write.ops, readChunks(k.input(id, meta.input_token))];
    claims.push({ id, next: write.next });
    return { compare, success, requestBytes: requestBytes(success), responseBytes: meta.input_size };
  }
}

/**
 * The inputs of held tasks to hand again, each read only if the task is still held as it was (it may
 * have been cancelled meanwhile). `settle` returns the tasks whose read went through.
 */
export function redeliveryRound(changes: TaskChanges, waiting: readonly Loaded[]): { steps: TxnStep[]; settle(results: readonly StepResult[]): Task[] } {
  const k = changes.keys;
  return {
    steps: waiting.map((task) => ({
      compare: [cmp.unchanged(task.key, task.revision)],
      success: [readChunks(k.input(task.id, task.meta!.input_token))],
      requestBytes: OP_OVERHEAD,
      responseBytes: task.meta!.input_size,
    })),
    settle(results) {
      const tasks: Task[] = [];
      results.forEach((result, i) => {
        const { id, meta } = waiting[i]!;
        const input = result.succeeded ? joinChunks(result.responses[0]?.response_range?.kvs ?? [], k.input(id, meta!.input_token), meta!.input_chunks) : undefined;
        if (input) tasks.push(taskOf(id, meta!, input, undefined));
      });
      return tasks;
    },
  };
}

function parseJson<T>(value: Buffer): T | undefined {
  try {
    return JSON.parse(value.toString('utf8')) as T;
  } catch {
    return undefined;
  }
}
