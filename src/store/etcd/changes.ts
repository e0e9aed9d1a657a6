// How the etcd store changes tasks: it reads a task's state (task/<id>, or the entry an executor's held
// view has of it), asks a rule what to do (transition-rules.ts), and writes the change in a transaction
// conditioned on the key it read not having changed since (its mod revision). Changes to several tasks go
// in one transaction of nested per-task transactions (txn.ts); a task whose compare failed is read again
// and decided again on its own. changeOps turns a rule's change into every key it touches.
//
// Reads before a change are the local member's own state (serializable: no wait for in-flight writes,
// which under load is most of a linearizable read's time). That is safe because whatever such a read
// lets through is checked again by the transaction's compare, and a "no" (not held, not found) is read
// again linearizably before it is answered. A judicator talks to its own member, so these reads also
// see its own writes and everything its change feed has announced.
import type { Etcd3, ICompare, IKeyValue, IRequestOp, IResponseOp } from 'etcd3';
import { UnavailableError } from '../../common/errors';
import type { Logger } from '../../common/logging';
import { resultSize } from '../../task/codec';
import type { TaskResult, TaskStatus, TaskVerdict } from '../../task/types';
import { isQueued, type Change, type Decision } from '../transition-rules';
import { inlineBlob, type StagedBlob } from './chunks';
import { lastSegment, prefixEnd, type StoreKeys } from './keys';
import { parseMeta, type TaskMeta } from './meta';
import { packResult } from './packing';
import { cmp, etcdCall, getMany, op, runSteps, valueBytes, type StepResult, type TxnLimits, type TxnStep } from './txn';

/** How many times a step on one task is read and tried again when other writers keep changing the task. */
const MAX_ATTEMPTS = 10;
/** Bytes counted per operation against the request budget (key, framing). */
export const OP_OVERHEAD = 128;
/**
 * How long one read of an executor's held tasks (its held view) serves the steps that follow (ms). The
 * view is kept up to date with this store's own writes (assignments, results, requeues), so an executor
 * reporting to one judicator costs no read per report: results and running tasks are written with a
 * compare against the view's revisions, and lost or unacknowledged tasks are picked from it. Nothing is
 * decided on the view alone: a write is checked by its compare, a "no" or a "nothing to do" is read
 * again; a task the view does not show yet (assigned by another judicator) is found once it is re-read.
 */
export const DEFAULT_HELD_VIEW_MS = 100;
/** Held views kept at most (one per executor reporting here). */
const MAX_HELD_VIEWS = 10_000;

/** Where a step reads its tasks' state: task/<id>, or the held entries of one executor. */
export type Source = { from: 'task' } | { from: 'held'; executor: string };

/** A task's state as read for a change, and the key (and its mod revision) the change is conditioned on. */
export interface Loaded {
  id: string;
  /** Undefined when the key is missing or unreadable. */
  meta: TaskMeta | undefined;
  exists: boolean;
  key: string;
  revision: string;
  /** Taken from a held view (a read up to DEFAULT_HELD_VIEW_MS old) rather than read now. */
  viewed?: boolean;
}

/** What a step decided for one task: an outcome, and the write that makes it so (none: leave it). */
export interface Planned<T> {
  outcome: T;
  /** A "no" (not held, not found): answered only after an up-to-date (linearizable) read. */
  negative?: boolean;
  /** Nothing to write on the strength of what was read: not answered from a held view, only from a read. */
  keep?: boolean;
  write?: { ops: IRequestOp[]; compare?: ICompare[]; responseBytes?: number };
  /**
   * For steps on an executor's held tasks: the task's held entry once the write is done (null: gone), to
   * keep the executor's held view current. Left out, the view is dropped.
   */
  held?: TaskMeta | null;
}

export interface Applied<T> {
  outcome: T;
  /** The responses of the write's operations (undefined when nothing was written). */
  responses: IResponseOp[] | undefined;
}

/** One round of a per-task change: the steps to run, and what to do with their results. */
export interface Round {
  steps: TxnStep[];
  /** Takes the results of `steps`, in order. */
  settle(results: readonly StepResult[]): void;
}

/** A recent read of one executor's held entries (see DEFAULT_HELD_VIEW_MS). */
interface HeldView {
  /** performance.now() of the read. */
  at: number;
  tasks: Map<string, Loaded>;
}

/** A result the committing transaction writes: staged before (an executor's), or inline (the store's own). */
interface StoredResult {
  blob: StagedBlob;
  size: number;
  accepted?: boolean | null;
  verdict?: TaskVerdict | null;
}

export interface TaskChangesOptions {
  client: () => Etcd3;
  keys: StoreKeys;
  limits: TxnLimits;
  now: () => number;
  logger: Logger;
  heldViewMs: number;
}

export class TaskChanges {
  readonly keys: StoreKeys;
  readonly limits: TxnLimits;
  readonly now: () => number;
  readonly logger: Logger;
  readonly client: () => Etcd3;
  private readonly heldViewMs: number;
  private readonly heldViews = new Map<string, HeldView>();

  constructor(options: TaskChangesOptions) {
    this.client = options.client;
    this.keys = options.keys;
    this.limits = options.limits;
    this.now = options.now;
    this.logger = options.logger;
    this.heldViewMs = options.heldViewMs;
  }

  /**
   * Reads the tasks `ids` from `source`, asks `plan` what to do with each, and applies all the writes in
   * batched transactions, each conditioned on the key read being unchanged. Tasks whose condition failed
   * (another writer got there first), and "no" answers from the first, serializable read, are read again
   * linearizably and planned again, up to MAX_ATTEMPTS times. `preloaded` stands in for the first read;
   * `attempt` 1 starts with a linearizable read (a caller that made the first round itself).
   */
  async perTask<T>(
    ids: readonly string[],
    what: string,
    source: Source,
    plan: (task: Loaded, now: number) => Planned<T>,
    options: { preloaded?: readonly Loaded[]; attempt?: number; results?: Map<string, Applied<T>> } = {},
  ): Promise<Map<string, Applied<T>>> {
    const results = options.results ?? new Map<string, Applied<T>>();
    let todo = [...new Set(ids)];
    for (let attempt = options.attempt ?? 0; todo.length > 0; attempt++) {
      if (attempt === MAX_ATTEMPTS) {
        throw new UnavailableError(`the task store could not ${what}: tasks ${todo.join(', ')} kept changing under it (${MAX_ATTEMPTS} attempts); try again`);
      }
      const serializable = attempt === 0;
      const loaded = attempt === 0 && options.preloaded ? options.preloaded : await this.load(todo, source, serializable);
      const again: string[] = [];
      const round = this.round(loaded, source, plan, serializable, results, again);
      if (round.steps.length > 0) round.settle(await runSteps(this.client(), round.steps, this.limits, what));
      todo = again;
    }
    return results;
  }

  /**
   * Plans one round of perTask on tasks already read: their steps, and a settle that records outcomes in
   * `results` and the ids to read and plan again in `again` (a failed compare, or a "no" or "nothing to
   * do" that a fresher read must confirm).
   */
  round<T>(
    loaded: readonly Loaded[],
    source: Source,
    plan: (task: Loaded, now: number) => Planned<T>,
    serializable: boolean,
    results: Map<string, Applied<T>>,
    again: string[],
  ): Round {
    const now = this.now();
    const steps: TxnStep[] = [];
    const stepped: { task: Loaded; planned: Planned<T> }[] = [];
    for (const task of loaded) {
      const planned = plan(task, now);
      if ((planned.negative && serializable) || (planned.keep && task.viewed)) {
        again.push(task.id);
      } else if (!planned.write) {
        results.set(task.id, { outcome: planned.outcome, responses: undefined });
      } else {
        steps.push({
          compare: [cmp.unchanged(task.key, task.revision), ...(planned.write.compare ?? [])],
          success: planned.write.ops,
          requestBytes: requestBytes(planned.write.ops),
          responseBytes: planned.write.responseBytes ?? 0,
        });
        stepped.push({ task, planned });
      }
    }
    return {
      steps,
      settle: (applied) => {
        applied.forEach((result, i) => {
          const { task, planned } = stepped[i]!;
          if (!result.succeeded) {
            again.push(task.id);
            return;
          }
          results.set(task.id, { outcome: planned.outcome, responses: result.responses });
          if (source.from === 'held') this.updateHeldView(source.executor, task.id, planned.held, result.revision);
        });
      },
    };
  }

  /**
   * A rule's decision on a task read from its key as a step's plan: a "no" is negative, "nothing to do" is
   * keep, a change is written with changeOps (with `compare` added to the step's conditions). `held` is
   * the held entry the change leaves, for the executor's held view.
   */
  planned<T>(task: Loaded, decision: Decision<T>, options: { staged?: StagedBlob; compare?: ICompare[] } = {}): Planned<T> {
    if (decision.kind === 'refuse') return { outcome: decision.outcome, negative: true };
    if (decision.kind === 'keep') return { outcome: decision.outcome, keep: true };
    if (!task.meta) throw new Error(`bug: a rule changed task ${task.id}, which was not read`);
    const write = this.changeOps(task.id, task.meta, decision.change, options.staged);
    if (options.compare) write.compare = [...write.compare, ...options.compare];
    const next = write.next;
    return { outcome: decision.outcome, write, held: !next.done && next.executor !== null ? next : null };
  }

  /**
   * Every key a change touches: the task's metadata, its status entry, its queue or held entries (which
   * carry a copy of the metadata), its finish-time entry and result once it ends, the released entry
   * that tells the executor it was taken from, and its live record when it leaves its executor. `staged`
   * is the executor's result, staged before.
   */
  changeOps(id: string, meta: TaskMeta, change: Change, staged?: StagedBlob): { ops: IRequestOp[]; compare: ICompare[]; next: TaskMeta } {
    const k = this.keys;
    const next: TaskMeta = { ...meta, ...change.next };
    const ops: IRequestOp[] = [];
    let compare: ICompare[] = [];
    const ends = next.done && !meta.done;
    if (ends) {
      const stored = change.result ? this.storedResult(id, change, staged) : undefined;
      next.result_size = stored?.size ?? 0;
      if (stored) {
        next.result_token = stored.blob.token;
        next.result_chunks = stored.blob.chunks;
        if (stored.accepted !== undefined) next.accepted = stored.accepted;
        if (stored.verdict !== undefined) next.verdict = stored.verdict;
        ops.push(...stored.blob.ops);
        compare = stored.blob.compare;
      }
      ops.push(op.put(k.finished(next.report_ms, id), JSON.stringify({ user: meta.user, status: next.status })));
      // Issue 17: the callback goes into the outbox with the write that ends the task: both, or neither.
      if (meta.callback_url) ops.push(op.put(k.callback(id), JSON.stringify({ url: meta.callback_url, attempts: 0, due_ms: next.report_ms })));
    }
    const value = JSON.stringify(next);
    ops.push(op.put(k.task(id), value), ...this.statusMove(id, meta.status, next.status));
    if (meta.executor !== null && (next.done || next.executor !== meta.executor)) {
      // The live record lives as long as the task's stay on one executor (task-events.ts): gone in the same write.
      ops.push(op.del(k.held(meta.executor, id)), op.del(k.live(id)));
      if (change.announce) ops.push(op.put(k.released(id), meta.executor));
    }
    if (!next.done && next.executor !== null) ops.push(op.put(k.held(next.executor, id), value));
    if (isQueued(meta) && !isQueued(next)) ops.push(op.del(k.pending(id)));
    if (isQueued(next)) ops.push(op.put(k.pending(id), value));
    return { ops, compare, next };
  }

  /** The result a task ends with: the executor's (staged before), or a small one the store writes inline. */
  private storedResult(id: string, change: Change, staged: StagedBlob | undefined): StoredResult {
    const result = change.result as TaskResult;
    if (change.reported) {
      if (!staged) throw new Error(`bug: the result of task ${id} was not staged before it was written`);
      return { blob: staged, size: resultSize(result), accepted: result.accepted, verdict: result.verdict };
    }
    const blob = inlineBlob(packResult(result), (token) => this.keys.result(id, token));
    if (!blob) throw new Error(`bug: a result written by the store is larger than one chunk`);
    return { blob, size: resultSize(result), accepted: result.accepted, verdict: result.verdict };
  }

  private statusMove(id: string, from: TaskStatus, to: TaskStatus): IRequestOp[] {
    if (from === to) return [];
    return [op.del(this.keys.status(from, id)), op.put(this.keys.status(to, id), '')];
  }

  // ---------------------------------------------------------------------------------------------
  // reads, and executors' held views

  /**
   * Reads the state of `ids` from `source`: one round trip. The first read of an executor's held tasks
   * is its held view while that is recent (no round trip), else a read of all of them.
   */
  async load(ids: readonly string[], source: Source, serializable: boolean): Promise<Loaded[]> {
    if (source.from === 'held' && serializable) {
      const view = this.recentHeldView(source.executor);
      const held = view ? new Map([...view].map(([id, task]) => [id, { ...task, viewed: true }])) : await this.readHeld(source.executor);
      return ids.map((id) => held.get(id) ?? { id, meta: undefined, exists: false, key: this.keys.held(source.executor, id), revision: '0', viewed: Boolean(view) });
    }
    const keys = ids.map((id) => (source.from === 'task' ? this.keys.task(id) : this.keys.held(source.executor, id)));
    const kvs = await getMany(this.client(), keys, this.limits, 'read tasks', serializable);
    return ids.map((id, i) => ({ id, meta: this.metaOf(kvs[i]), exists: kvs[i] !== undefined, key: keys[i]!, revision: kvs[i]?.mod_revision ?? '0' }));
  }

  /** Reads the tasks `executor` holds (one serializable range read) and keeps them as its held view. */
  private async readHeld(executor: string): Promise<Map<string, Loaded>> {
    const prefix = this.keys.heldBy(executor);
    const at = performance.now();
    const response = await etcdCall('list the tasks of an executor', () =>
      this.client().kv.range({ key: Buffer.from(prefix), range_end: prefixEnd(prefix), serializable: true }),
    );
    const tasks = new Map<string, Loaded>();
    for (const kv of response.kvs) {
      const id = lastSegment(kv.key.toString());
      tasks.set(id, { id, meta: this.metaOf(kv), exists: true, key: kv.key.toString(), revision: kv.mod_revision });
    }
    if (this.heldViews.size >= MAX_HELD_VIEWS) this.heldViews.clear();
    this.heldViews.set(executor, { at, tasks });
    return tasks;
  }

  /** The held view of `executor` if it is recent enough to use. */
  private recentHeldView(executor: string): Map<string, Loaded> | undefined {
    const view = this.heldViews.get(executor);
    return view && performance.now() - view.at <= this.heldViewMs ? view.tasks : undefined;
  }

  /** The tasks `executor` holds, oldest first: its held view if recent (unless `fresh`), else read now. */
  async heldBy(executor: string, fresh = false): Promise<Loaded[]> {
    return (await this.heldState(executor, fresh)).tasks;
  }

  /**
   * The tasks `executor` holds, oldest first, each marked `viewed` when it comes from the held view; and
   * `entryOf`, the entry of any id (a missing one for a task the executor does not hold), as load gives.
   */
  async heldState(executor: string, fresh = false): Promise<{ tasks: Loaded[]; entryOf(id: string): Loaded }> {
    const view = fresh ? undefined : this.recentHeldView(executor);
    const read = view ?? (await this.readHeld(executor));
    const viewed = view !== undefined;
    const byId = new Map([...read].map(([id, task]) => [id, viewed ? { ...task, viewed } : task]));
    return {
      tasks: [...byId.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)),
      entryOf: (id) => byId.get(id) ?? { id, meta: undefined, exists: false, key: this.keys.held(executor, id), revision: '0', viewed },
    };
  }

  /** Applies this store's own write to an executor's held view (or drops the view when it cannot). */
  updateHeldView(executor: string, id: string, held: TaskMeta | null | undefined, revision: string): void {
    const view = this.heldViews.get(executor);
    if (!view) return;
    if (held === undefined) this.heldViews.delete(executor);
    else if (held === null) view.tasks.delete(id);
    else view.tasks.set(id, { id, meta: held, exists: true, key: this.keys.held(executor, id), revision });
  }

  /** Forgets `executor`'s held view: a change this store cannot follow in it (a cancel by task id). */
  dropHeldView(executor: string): void {
    this.heldViews.delete(executor);
  }

  metaOf(kv: IKeyValue | undefined): TaskMeta | undefined {
    if (!kv) return undefined;
    const meta = parseMeta(kv.value);
    if (!meta) this.logger.error({ key: kv.key.toString() }, 'unreadable task metadata in the store; the task is treated as missing');
    return meta;
  }
}

/** Bytes a step's operations write, as counted against etcd's request limit. */
export function requestBytes(ops: readonly IRequestOp[]): number {
  return ops.reduce((sum, o) => sum + OP_OVERHEAD + (o.request_put?.value ? valueBytes(o.request_put.value) : 0), 0);
}
