// The etcd task store: tasks in the judicators' own etcd cluster (key layout in keys.ts). Every
// change to a task is one transaction conditioned on the key its state was read from not having changed
// since (its mod revision), so a task is held by at most one executor, a result is accepted only from the
// executor holding the task, and two judicators (or two leaders) racing cannot both win. Changes to
// several tasks in one call go in one transaction of nested per-task transactions (etcd-txn.ts); a task
// whose compare failed is read again and retried on its own.
//
// Reads before a change are the local member's own state (serializable: no wait for in-flight writes,
// which under load is most of a linearizable read's time). That is safe because whatever such a read
// lets through is checked again by the transaction's compare, and a "no" (not held, not found) is read
// again linearizably before it is answered. A judicator talks to its own member, so these reads also
// see its own writes and everything its change feed has announced.
//
// Round trips, for an executor reporting to one judicator: add 1; a report 3 to 4 whatever it carries
// (results 1, running tasks 0 or 1, lost and unacknowledged tasks 0, assignment 2: the queue with the
// tasks' metadata, then the claim with their inputs), the executor's held tasks being read again at
// most every DEFAULT_HELD_VIEW_MS; search 2; get 1.
import type { Etcd3, ICompare, IKeyValue, IRequestOp, IResponseOp } from 'etcd3';
import { TooLargeError, UnavailableError } from '../../common/errors';
import { highestIdAt, idTime, lowestIdAt, newId } from '../../common/ids';
import type { Logger } from '../../common/logging';
import { isoTime } from '../../common/time';
import { inputSize, resultSize } from '../../task/codec';
import {
  RUNNING_STATUSES,
  TaskStatus,
  isDoneStatus,
  type CompletedTask,
  type ExecutorInfo,
  type Task,
  type TaskBrief,
  type TaskInput,
  type TaskResult,
} from '../../task/types';
import { packInput, packResult } from './packing';
import { inlineBlob, joinChunks, readChunks, stageBlob, type StagedBlob } from './chunks';
import { StoreFeed } from './feed';
import { heldExecutor, inclusiveEnd, invertId, lastSegment, prefixEnd, storeKeys, type StoreKeys } from './keys';
import { briefOf, newMeta, parseMeta, taskOf, type TaskMeta } from './meta';
import { DEFAULT_TXN_LIMITS, cmp, etcdCall, getMany, op, runSteps, valueBytes, type TxnLimits, type TxnStep } from './txn';
import { errorResult, giveUpMessage, notFinalResult, tooLargeResult } from '../store-results';
import type {
  ExecutingUpdate,
  RequeueOutcome,
  RequeueReason,
  SearchQuery,
  SearchResult,
  StoreEvent,
  StoreOptions,
  TaskStore,
  WriteFence,
} from '../task-store';

/** updateExecuting leaves a task alone when nothing changed and its report time is younger than this. */
export const DEFAULT_REPORT_REFRESH_MS = 5_000;
/** recordHeartbeat rewrites an executor's record (when its slots and host are unchanged) at most this often. */
export const DEFAULT_HEARTBEAT_REFRESH_MS = 1_000;
/** How many times a step on one task is read and tried again when other writers keep changing the task. */
const MAX_ATTEMPTS = 10;
/** How many rounds assign makes when other judicators keep taking the tasks it picked. */
const MAX_ASSIGN_ROUNDS = 5;
/** Tasks deleted by one retention transaction (each takes about ten operations). */
const DEFAULT_DELETE_BATCH = 500;
/** Bytes counted per operation against the request budget (key, framing). */
const OP_OVERHEAD = 128;
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
/** How long opening a store waits for its change feed before going on without it (it keeps trying). */
const FEED_START_TIMEOUT_MS = 5_000;

export interface EtcdTaskStoreOptions extends StoreOptions {
  /** The etcd client, or a function returning the current one (a ClusterConnection's `current`). */
  client: Etcd3 | (() => Etcd3);
  /** Where the store keeps its keys: clusterKeys(prefix).store (`kv2/store/`). */
  keyPrefix: string;
  logger: Logger;
  /** See DEFAULT_REPORT_REFRESH_MS. */
  reportRefreshMs?: number;
  /** See DEFAULT_HEARTBEAT_REFRESH_MS. */
  heartbeatRefreshMs?: number;
  /** See DEFAULT_HELD_VIEW_MS. */
  heldViewMs?: number;
  txnLimits?: Partial<TxnLimits>;
}

/** Where a step reads its tasks' state: task/<id>, or the held entries of one executor. */
type Source = { from: 'task' } | { from: 'held'; executor: string };

/** A task's state as read for a change, and the key (and its mod revision) the change is conditioned on. */
interface Loaded {
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
interface Planned<T> {
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

/** A recent read of one executor's held entries (see DEFAULT_HELD_VIEW_MS). */
interface HeldView {
  /** performance.now() of the read. */
  at: number;
  tasks: Map<string, Loaded>;
}

interface Applied<T> {
  outcome: T;
  /** The responses of the write's operations (undefined when nothing was written). */
  responses: IResponseOp[] | undefined;
}

export class EtcdTaskStore implements TaskStore {
  readonly kind = 'etcd' as const;
  private readonly keys: StoreKeys;
  private readonly clientOf: () => Etcd3;
  private readonly now: () => number;
  private readonly limits: TxnLimits;
  private readonly feed: StoreFeed;
  private readonly logger: Logger;
  private readonly maxTaskSize: number;
  private readonly reportRefreshMs: number;
  private readonly heartbeatRefreshMs: number;
  private readonly heartbeats = new Map<string, { ms: number; slots?: number; host?: string }>();
  private readonly heldViewMs: number;
  private readonly heldViews = new Map<string, HeldView>();
  /** Queue entries being claimed by assign calls in flight here. */
  private readonly claiming = new Set<string>();
  private lastClient: Etcd3 | undefined;

  constructor(options: EtcdTaskStoreOptions) {
    const client = options.client;
    this.clientOf = typeof client === 'function' ? client : () => client;
    this.keys = storeKeys(options.keyPrefix);
    this.now = options.now ?? Date.now;
    this.limits = { ...DEFAULT_TXN_LIMITS, ...options.txnLimits };
    this.logger = options.logger;
    this.maxTaskSize = options.maxTaskSize;
    this.reportRefreshMs = options.reportRefreshMs ?? DEFAULT_REPORT_REFRESH_MS;
    this.heartbeatRefreshMs = options.heartbeatRefreshMs ?? DEFAULT_HEARTBEAT_REFRESH_MS;
    this.heldViewMs = options.heldViewMs ?? DEFAULT_HELD_VIEW_MS;
    this.feed = new StoreFeed(this.clientOf, this.keys, this.logger);
  }

  /** Starts the change feed; resolves once it is live (or after a few seconds, while it keeps trying). */
  async open(): Promise<this> {
    const live = await this.feed.start(FEED_START_TIMEOUT_MS);
    if (!live) this.logger.warn(`the store change feed is not live after ${FEED_START_TIMEOUT_MS} ms (is etcd up?); it keeps trying`);
    return this;
  }

  /** The current etcd client; a new one also gets the change feed moved onto it. */
  private client(): Etcd3 {
    const client = this.clientOf();
    if (client !== this.lastClient) {
      this.lastClient = client;
      this.feed.ensureWatching();
    }
    return client;
  }

  // ---------------------------------------------------------------------------------------------
  // add, cancel, search, get

  async add(task: TaskInput, id?: string): Promise<string> {
    const size = inputSize(task);
    if (size > this.maxTaskSize) {
      throw new TooLargeError(`the task takes ${size} bytes, more than the limit of ${this.maxTaskSize} bytes (--task-max-size)`);
    }
    const taskId = id ?? newId(this.now());
    const k = this.keys;
    const input = await stageBlob(this.client(), packInput(task), (token) => k.input(taskId, token), this.limits, 'store the task input');
    const meta = JSON.stringify(newMeta(task, taskId, size, input));
    // Create-if-absent: a client retrying an add with its own id gets the one task.
    const response = await etcdCall('add the task', () =>
      this.client().kv.txn({
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
  }

  async cancel(id: string): Promise<{ found: true; executor: string | null } | { found: false }> {
    type Outcome = { found: true; executor: string | null } | { found: false };
    const results = await this.perTask([id], 'cancel the task', { from: 'task' }, ({ meta }, now): Planned<Outcome> => {
      if (!meta || meta.done) return { outcome: { found: false }, negative: true };
      return { outcome: { found: true, executor: meta.executor }, write: this.finishOps(id, meta, TaskStatus.CANCELLED, now, null, true) };
    });
    const outcome = results.get(id)!.outcome;
    if (outcome.found && outcome.executor !== null) this.heldViews.delete(outcome.executor);
    return outcome;
  }

  async search(query: SearchQuery): Promise<SearchResult> {
    const limit = Math.max(0, Math.floor(query.limit));
    const page = Math.max(0, Math.floor(query.page));
    const none: SearchResult = { pages: 0, total: 0, tasks: [] };
    const inTime = (ms: number) => (query.startMs === undefined || ms >= query.startMs) && (query.endMs === undefined || ms <= query.endMs);

    if (query.id !== undefined) {
      const [kv] = await getMany(this.client(), [this.keys.task(query.id)], this.limits, 'search the tasks');
      const meta = this.metaOf(kv);
      if (!meta || (query.user !== undefined && meta.user !== query.user) || !inTime(idTime(query.id))) return none;
      return { pages: 1, total: 1, tasks: limit === 0 || page === 0 ? [briefOf(query.id, meta)] : [] };
    }
    if (query.startMs !== undefined && query.endMs !== undefined && query.startMs > query.endMs) return none;

    const ranges = searchRanges(this.keys, query);
    const skip = limit === 0 ? 0 : page * limit;
    // The count and the first keys in one read, so they agree. Counting walks only etcd's in-memory
    // index; the page walks index keys with empty values up to the page's end, never the tasks.
    const response = await etcdCall('search the tasks', () =>
      this.client().kv.txn({
        success: [
          { request_range: { key: ranges.ascending.start, range_end: ranges.ascending.end, count_only: true } },
          {
            request_range: {
              key: ranges.ordered.start,
              range_end: ranges.ordered.end,
              keys_only: true,
              limit: limit === 0 ? this.limits.maxReads : skip + limit,
            },
          },
        ],
      }),
    );
    const total = Number(response.responses[0]?.response_range?.count ?? 0);
    if (total === 0) return none;
    const pages = limit === 0 ? 1 : Math.ceil(total / limit);
    if (skip >= total) return { pages, total, tasks: [] };

    const first = response.responses[1]?.response_range;
    let keys = (first?.kvs ?? []).map((kv) => kv.key);
    if (limit === 0 && first?.more && keys.length > 0) keys = keys.concat(await this.keysAfter(keys[keys.length - 1]!, ranges.ordered.end));
    const ids = keys.slice(skip).map((key) => ranges.idOf(key.toString()));
    const kvs = await getMany(this.client(), ids.map((id) => this.keys.task(id)), this.limits, 'search the tasks');
    const tasks: TaskBrief[] = [];
    ids.forEach((id, i) => {
      const meta = this.metaOf(kvs[i]);
      // A task deleted by retention between the two reads is left out.
      if (meta) tasks.push(briefOf(id, meta));
    });
    return { pages, total, tasks };
  }

  /** The keys after `last` up to `end`, a bounded page per round trip (a search with limit 0). */
  private async keysAfter(last: Buffer, end: Buffer): Promise<Buffer[]> {
    const out: Buffer[] = [];
    let from = afterKey(last);
    for (;;) {
      const response = await etcdCall('search the tasks', () => this.client().kv.range({ key: from, range_end: end, keys_only: true, limit: this.limits.maxReads }));
      for (const kv of response.kvs) out.push(kv.key);
      if (!response.more || response.kvs.length === 0) return out;
      from = afterKey(response.kvs[response.kvs.length - 1]!.key);
    }
  }

  async get(id: string): Promise<Task | undefined> {
    const k = this.keys;
    const response = await etcdCall('read the task', () =>
      this.client().kv.txn({ success: [op.get(k.task(id)), readChunks(k.inputs(id)), readChunks(k.results(id))] }),
    );
    const [metaRead, inputRead, resultRead] = response.responses.map((r) => r.response_range?.kvs ?? []);
    const meta = this.metaOf(metaRead?.[0]);
    if (!meta) return undefined;
    const input = joinChunks(inputRead ?? [], k.input(id, meta.input_token), meta.input_chunks);
    if (!input) {
      this.logger.error({ id }, 'a task without its input (a damaged store): treated as missing');
      return undefined;
    }
    const result = meta.result_token ? joinChunks(resultRead ?? [], k.result(id, meta.result_token), meta.result_chunks ?? 1) : undefined;
    return taskOf(id, meta, input, result);
  }

  // ---------------------------------------------------------------------------------------------
  // report, step by step

  async recordHeartbeat(executor: string, info: { vacant: number; slots?: number; host?: string }): Promise<void> {
    const now = this.now();
    const last = this.heartbeats.get(executor);
    // The record serves `executors` and executor expiry, both measured in seconds: under load an executor
    // reports many times a second, and rewriting the record each time would be much of etcd's work.
    if (last && now - last.ms < this.heartbeatRefreshMs && last.slots === info.slots && last.host === info.host) return;
    const record = { name: executor, report_ms: now, vacant: info.vacant, slots: info.slots, host: info.host };
    await etcdCall('record the executor report', () =>
      this.client().kv.put({ key: Buffer.from(this.keys.executor(executor)), value: Buffer.from(JSON.stringify(record)) }),
    );
    this.heartbeats.set(executor, { ms: now, slots: info.slots, host: info.host });
  }

  async complete(executor: string, tasks: readonly CompletedTask[]): Promise<{ accepted: string[] }> {
    const byId = new Map(tasks.map((task) => [task.id, task]));
    const k = this.keys;
    // Results are staged before the tasks are read (a small one costs nothing: it is written inline).
    // One that cannot fit whatever the input is not staged; one that turns out not to be needed is
    // discarded afterwards.
    const staged = new Map<string, StagedBlob>();
    const used = new Set<string>();
    try {
      for (const task of byId.values()) {
        if (resultSize(task.result) > this.maxTaskSize) continue;
        staged.set(task.id, await stageBlob(this.client(), packResult(task.result), (token) => k.result(task.id, token), this.limits, 'store a result'));
      }
      const results = await this.perTask([...byId.keys()], 'record the finished tasks', { from: 'held', executor }, ({ id, meta }, now): Planned<boolean> => {
        if (!meta || meta.done || meta.executor !== executor) return { outcome: false, negative: true };
        const reported = byId.get(id)!;
        const size = meta.input_size + resultSize(reported.result);
        const blob = staged.get(id);
        if (size > this.maxTaskSize || !blob) {
          return { outcome: true, write: this.finishOps(id, meta, TaskStatus.UNKNOWN_ERROR, now, tooLargeResult(size, this.maxTaskSize), false), held: null };
        }
        if (!isDoneStatus(reported.status)) {
          // The judicator refuses such a report; should one get here, the task must still end consistent.
          return { outcome: true, write: this.finishOps(id, meta, TaskStatus.UNKNOWN_ERROR, now, notFinalResult(reported.result, reported.status), false), held: null };
        }
        used.add(id);
        return {
          outcome: true,
          write: this.finishOps(id, meta, reported.status, now, { blob, size: resultSize(reported.result), accepted: reported.result.accepted }, false),
          held: null,
        };
      });
      for (const id of byId.keys()) if (!results.get(id)?.outcome) used.delete(id);
      return { accepted: [...byId.keys()].filter((id) => results.get(id)?.outcome) };
    } finally {
      for (const [id, blob] of staged) if (!used.has(id)) await blob.discard();
    }
  }

  async updateExecuting(executor: string, updates: readonly ExecutingUpdate[]): Promise<{ notHeld: string[] }> {
    const byId = new Map(updates.map((update) => [update.id, update.status]));
    const k = this.keys;
    const results = await this.perTask([...byId.keys()], 'record the running tasks', { from: 'held', executor }, ({ id, meta }, now): Planned<boolean> => {
      if (!meta || meta.done || meta.executor !== executor) return { outcome: false, negative: true };
      const reported = byId.get(id)!;
      // Only a running status fits a task that is not done; anything else keeps the stored status.
      const status = RUNNING_STATUSES.includes(reported) ? reported : meta.status;
      // The refresh rule: rewriting an unchanged task on every report would be much of etcd's work under
      // load, so its report time is refreshed once it is older than reportRefreshMs (5 s by default, far
      // below the leader's task expiry of 30 s).
      if (status === meta.status && meta.acked && now - meta.report_ms < this.reportRefreshMs) return { outcome: true, keep: true };
      const next: TaskMeta = { ...meta, status, acked: true, report_ms: now };
      const value = JSON.stringify(next);
      return {
        outcome: true,
        write: { ops: [op.put(k.task(id), value), op.put(k.held(executor, id), value), ...this.statusMove(id, meta.status, status)] },
        held: next,
      };
    });
    return { notHeld: [...byId.keys()].filter((id) => !results.get(id)?.outcome) };
  }

  async requeueUnreported(executor: string, reported: ReadonlySet<string>, maxRetries: number): Promise<RequeueOutcome> {
    const lost = (await this.heldBy(executor)).filter((task) => task.meta?.acked && !reported.has(task.id));
    if (lost.length === 0) return { retried: [], abandoned: [] };
    return this.sendBack(executor, lost, {
      countRetry: true,
      reason: 'unreported',
      maxRetries,
      // The executor's own report is answered with the cancels: nobody else needs telling.
      announce: false,
      due: (meta) => meta.acked,
    });
  }

  async unacknowledged(executor: string, reported: ReadonlySet<string>, limit: number): Promise<Task[]> {
    if (limit <= 0) return [];
    const waiting = (await this.heldBy(executor)).filter((task) => task.meta && !task.meta.acked && !reported.has(task.id)).slice(0, limit);
    if (waiting.length === 0) return [];
    // The inputs, read only if the task is still held as it was (it may have been cancelled meanwhile).
    const steps: TxnStep[] = waiting.map((task) => ({
      compare: [cmp.unchanged(task.key, task.revision)],
      success: [readChunks(this.keys.input(task.id, task.meta!.input_token))],
      requestBytes: OP_OVERHEAD,
      responseBytes: task.meta!.input_size,
    }));
    const results = await runSteps(this.client(), steps, this.limits, 'read the unacknowledged tasks');
    const tasks: Task[] = [];
    results.forEach((result, i) => {
      const { id, meta } = waiting[i]!;
      const input = result.succeeded ? joinChunks(result.responses[0]?.response_range?.kvs ?? [], this.keys.input(id, meta!.input_token), meta!.input_chunks) : undefined;
      if (input) tasks.push(taskOf(id, meta!, input, undefined));
    });
    return tasks;
  }

  async release(executor: string, ids: readonly string[]): Promise<string[]> {
    const outcome = await this.sendBack(executor, [...new Set(ids)], {
      countRetry: false,
      reason: 'unreported',
      maxRetries: Number.POSITIVE_INFINITY,
      announce: false,
      due: () => true,
    });
    return outcome.retried;
  }

  async assign(executor: string, count: number): Promise<Task[]> {
    const assigned: Task[] = [];
    for (let round = 0; assigned.length < count && round < MAX_ASSIGN_ROUNDS; round++) {
      const want = Math.min(count - assigned.length, this.limits.maxSteps);
      // Reports served here at the same time would all read the same head of the queue and all but one
      // lose the race for it: each skips what the others are claiming.
      const skip = this.claiming.size;
      // The queue's entries carry the tasks' metadata: no second read before the claim.
      const queue = await etcdCall('read the task queue', () =>
        this.client().kv.range({ key: Buffer.from(this.keys.pendings), range_end: prefixEnd(this.keys.pendings), limit: want + skip, serializable: true }),
      );
      const entries = queue.kvs.filter((kv) => !this.claiming.has(lastSegment(kv.key.toString()))).slice(0, want);
      // Nothing, or only what the others are claiming: the queue is empty for this call.
      if (entries.length === 0) break;
      const ids = entries.map((kv) => lastSegment(kv.key.toString()));
      for (const id of ids) this.claiming.add(id);
      let lost: number;
      try {
        lost = await this.claim(executor, entries, assigned);
      } finally {
        for (const id of ids) this.claiming.delete(id);
      }
      // Fewer queued than wanted, and none lost to another judicator: the queue is empty.
      if (queue.kvs.length < want + skip && lost === 0) break;
    }
    return assigned;
  }

  /** Claims queue `entries` for `executor` in one transaction; appends the tasks won, returns how many were lost. */
  private async claim(executor: string, entries: readonly IKeyValue[], assigned: Task[]): Promise<number> {
    const k = this.keys;
    const now = this.now();
    const claims: { id: string; meta: TaskMeta | undefined }[] = [];
    const steps: TxnStep[] = entries.map((kv) => {
      const key = kv.key.toString();
      const id = lastSegment(key);
      const meta = this.metaOf(kv);
      const compare = [cmp.unchanged(key, kv.mod_revision)];
      if (!meta || meta.done || meta.executor !== null) {
        // A queue entry without an assignable task: only a damaged store has one. Drop it.
        claims.push({ id, meta: undefined });
        return { compare, success: [op.del(key)], requestBytes: OP_OVERHEAD, responseBytes: 0 };
      }
      const next: TaskMeta = { ...meta, executor, report_ms: now, acked: false };
      const value = JSON.stringify(next);
      claims.push({ id, meta: next });
      return {
        compare,
        success: [op.put(k.task(id), value), op.del(key), op.put(k.held(executor, id), value), readChunks(k.input(id, meta.input_token))],
        requestBytes: 4 * OP_OVERHEAD + 2 * value.length,
        responseBytes: meta.input_size,
      };
    });
    const results = await runSteps(this.client(), steps, this.limits, 'assign tasks');
    let lost = 0;
    results.forEach((result, i) => {
      const { id, meta } = claims[i]!;
      if (!result.succeeded) {
        lost++;
        return;
      }
      if (!meta) return;
      const input = joinChunks(result.responses[3]?.response_range?.kvs ?? [], k.input(id, meta.input_token), meta.input_chunks);
      if (!input) {
        this.logger.error({ id, executor }, 'assigned a task whose input is missing (a damaged store): it stays with the executor, which will fail it');
        return;
      }
      assigned.push(taskOf(id, meta, input, undefined));
      this.heldViews.get(executor)?.tasks.set(id, { id, meta, exists: true, key: k.held(executor, id), revision: result.revision });
    });
    return lost;
  }

  // ---------------------------------------------------------------------------------------------
  // executors

  async listExecutors(): Promise<ExecutorInfo[]> {
    const response = await etcdCall('list the executors', () =>
      this.client().kv.range({ key: Buffer.from(this.keys.executors), range_end: prefixEnd(this.keys.executors) }),
    );
    const out: ExecutorInfo[] = [];
    for (const kv of response.kvs) {
      const record = parseJson<{ name: string; report_ms: number; vacant?: number; slots?: number; host?: string }>(kv.value);
      if (!record || typeof record.name !== 'string' || typeof record.report_ms !== 'number') continue;
      // The original's `hostname` field held the executor's name too.
      const info: ExecutorInfo = { id: record.name, hostname: record.name, report_time: isoTime(record.report_ms) };
      if (typeof record.host === 'string') info.host = record.host;
      if (typeof record.slots === 'number') info.slots = record.slots;
      if (typeof record.vacant === 'number') info.vacant = record.vacant;
      out.push(info);
    }
    return out;
  }

  async removeExecutor(name: string, fence?: WriteFence): Promise<void> {
    const remove = { request_delete_range: { key: Buffer.from(this.keys.executor(name)) } };
    await etcdCall('remove the executor', () =>
      this.client().kv.txn({ compare: fence ? [cmp.exists(fence.etcdKey)] : [], success: [remove] }),
    );
    this.heartbeats.delete(name);
  }

  // ---------------------------------------------------------------------------------------------
  // leader duties

  async holders(): Promise<{ executor: string; oldestReportMs: number; tasks: number }[]> {
    const response = await etcdCall('list the held tasks', () =>
      this.client().kv.range({ key: Buffer.from(this.keys.helds), range_end: prefixEnd(this.keys.helds), serializable: true }),
    );
    const byExecutor = new Map<string, { executor: string; oldestReportMs: number; tasks: number }>();
    for (const kv of response.kvs) {
      const executor = heldExecutor(this.keys, kv.key.toString());
      const meta = this.metaOf(kv);
      const entry = byExecutor.get(executor) ?? { executor, oldestReportMs: Number.POSITIVE_INFINITY, tasks: 0 };
      entry.tasks++;
      // An unreadable entry counts as ancient: the leader's requeue then repairs or drops it.
      entry.oldestReportMs = Math.min(entry.oldestReportMs, meta?.report_ms ?? 0);
      byExecutor.set(executor, entry);
    }
    return [...byExecutor.values()];
  }

  async requeueHeldBy(
    executor: string,
    options: { olderThanMs?: number; reason: RequeueReason; maxRetries: number; fence?: WriteFence },
  ): Promise<RequeueOutcome> {
    const cutoff = options.olderThanMs;
    const due = (meta: TaskMeta) => cutoff === undefined || meta.report_ms < cutoff;
    const tasks = (await this.heldBy(executor, true)).filter((task) => !task.meta || due(task.meta));
    if (tasks.length === 0) return { retried: [], abandoned: [] };
    return this.sendBack(executor, tasks, {
      countRetry: true,
      reason: options.reason,
      maxRetries: options.maxRetries,
      // The executor may still be alive (it only stopped reporting these): the feed tells it.
      announce: true,
      due,
      fence: options.fence,
    });
  }

  async deleteFinishedBefore(beforeMs: number, batch: number = DEFAULT_DELETE_BATCH, fence?: WriteFence): Promise<number> {
    const k = this.keys;
    const size = Math.max(1, Math.min(Math.floor(batch), this.limits.maxSteps));
    const end = Buffer.from(k.finishedAt(beforeMs));
    let from: Buffer = Buffer.from(k.finisheds);
    let deleted = 0;
    for (;;) {
      const response = await etcdCall('read the finished tasks', () => this.client().kv.range({ key: from, range_end: end, limit: size, serializable: true }));
      if (response.kvs.length === 0) break;
      const steps: TxnStep[] = response.kvs.map((kv) => {
        const key = kv.key.toString();
        const id = lastSegment(key);
        const value = parseJson<{ user: number; status: number }>(kv.value);
        const ops = [op.del(k.task(id)), op.delPrefix(k.inputs(id)), op.delPrefix(k.results(id)), op.del(k.desc(id)), op.del(k.released(id)), op.del(k.pending(id)), op.del(key)];
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
      const results = await runSteps(this.client(), steps, this.limits, 'delete finished tasks');
      for (const result of results) {
        if (result.succeeded && Number(result.responses[0]?.response_delete_range?.deleted ?? 0) > 0) deleted++;
      }
      if (!response.more) break;
      from = afterKey(response.kvs[response.kvs.length - 1]!.key);
    }
    if (deleted > 0) this.logger.info({ deleted, before: isoTime(beforeMs) }, `deleted ${deleted} tasks finished before ${isoTime(beforeMs)}`);
    return deleted;
  }

  async countByStatus(): Promise<Partial<Record<TaskStatus, number>>> {
    const statuses = Object.values(TaskStatus);
    // Counting walks etcd's in-memory index of the status entries: no task is read.
    const response = await etcdCall('count the tasks', () =>
      this.client().kv.txn({
        success: statuses.map((status) => ({
          request_range: { key: Buffer.from(this.keys.statuses(status)), range_end: prefixEnd(this.keys.statuses(status)), count_only: true, serializable: true },
        })),
      }),
    );
    const counts: Partial<Record<TaskStatus, number>> = {};
    statuses.forEach((status, i) => {
      counts[status] = Number(response.responses[i]?.response_range?.count ?? 0);
    });
    return counts;
  }

  // ---------------------------------------------------------------------------------------------
  // change feed

  subscribe(listener: (event: StoreEvent) => void): () => void {
    this.client();
    return this.feed.subscribe(listener);
  }

  async close(): Promise<void> {
    await this.feed.close();
  }

  // ---------------------------------------------------------------------------------------------
  // the machinery

  /**
   * Reads the tasks `ids` from `source`, asks `plan` what to do with each, and applies all the writes in
   * batched transactions, each conditioned on the key read being unchanged. Tasks whose condition failed
   * (another writer got there first), and "no" answers from the first, serializable read, are read again
   * linearizably and planned again, up to MAX_ATTEMPTS times. `preloaded` stands in for the first read.
   */
  private async perTask<T>(
    ids: readonly string[],
    what: string,
    source: Source,
    plan: (task: Loaded, now: number) => Planned<T>,
    preloaded?: readonly Loaded[],
  ): Promise<Map<string, Applied<T>>> {
    const results = new Map<string, Applied<T>>();
    let todo = [...new Set(ids)];
    for (let attempt = 0; todo.length > 0; attempt++) {
      if (attempt === MAX_ATTEMPTS) {
        throw new UnavailableError(`the task store could not ${what}: tasks ${todo.join(', ')} kept changing under it (${MAX_ATTEMPTS} attempts); try again`);
      }
      const serializable = attempt === 0;
      const loaded = attempt === 0 && preloaded ? preloaded : await this.load(todo, source, serializable);
      const now = this.now();
      const steps: TxnStep[] = [];
      const stepped: { task: Loaded; planned: Planned<T> }[] = [];
      const again: string[] = [];
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
            requestBytes: planned.write.ops.reduce((sum, o) => sum + OP_OVERHEAD + (o.request_put?.value ? valueBytes(o.request_put.value) : 0), 0),
            responseBytes: planned.write.responseBytes ?? 0,
          });
          stepped.push({ task, planned });
        }
      }
      if (steps.length > 0) {
        const applied = await runSteps(this.client(), steps, this.limits, what);
        applied.forEach((result, i) => {
          const { task, planned } = stepped[i]!;
          if (!result.succeeded) {
            again.push(task.id);
            return;
          }
          results.set(task.id, { outcome: planned.outcome, responses: result.responses });
          if (source.from === 'held') this.updateHeldView(source.executor, task.id, planned.held, result.revision);
        });
      }
      todo = again;
    }
    return results;
  }

  /**
   * Reads the state of `ids` from `source`: one round trip. The first read of an executor's held tasks
   * is its held view while that is recent (no round trip), else a read of all of them.
   */
  private async load(ids: readonly string[], source: Source, serializable: boolean): Promise<Loaded[]> {
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
  private async heldBy(executor: string, fresh = false): Promise<Loaded[]> {
    const tasks = (!fresh && this.recentHeldView(executor)) || (await this.readHeld(executor));
    return [...tasks.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /** Applies this store's own write to an executor's held view (or drops the view when it cannot). */
  private updateHeldView(executor: string, id: string, held: TaskMeta | null | undefined, revision: string): void {
    const view = this.heldViews.get(executor);
    if (!view) return;
    if (held === undefined) this.heldViews.delete(executor);
    else if (held === null) view.tasks.delete(id);
    else view.tasks.set(id, { id, meta: held, exists: true, key: this.keys.held(executor, id), revision });
  }

  /**
   * The change that ends a task: its metadata, result, status and finish-time entries, and its queue or
   * held entry. `result` is a result to write inline, or one staged before (with its size and verdict).
   */
  private finishOps(
    id: string,
    meta: TaskMeta,
    status: TaskStatus,
    now: number,
    result: TaskResult | { blob: StagedBlob; size: number; accepted?: boolean | null } | null,
    announce: boolean,
  ): { ops: IRequestOp[]; compare: ICompare[] } {
    const k = this.keys;
    const stored = result && 'blob' in result ? result : result ? this.inlineResult(id, result) : undefined;
    const next: TaskMeta = { ...meta, done: true, status, executor: null, report_ms: now, acked: false, result_size: stored?.size ?? 0 };
    if (stored) {
      next.result_token = stored.blob.token;
      next.result_chunks = stored.blob.chunks;
      if (stored.accepted !== undefined) next.accepted = stored.accepted;
    }
    const ops: IRequestOp[] = [
      op.put(k.task(id), JSON.stringify(next)),
      ...this.statusMove(id, meta.status, status),
      op.put(k.finished(now, id), JSON.stringify({ user: meta.user, status })),
      ...(stored?.blob.ops ?? []),
    ];
    if (meta.executor !== null) {
      ops.push(op.del(k.held(meta.executor, id)));
      if (announce) ops.push(op.put(k.released(id), meta.executor));
    } else {
      ops.push(op.del(k.pending(id)));
    }
    return { ops, compare: stored?.blob.compare ?? [] };
  }

  /** A small result the store writes itself (an error), inline. */
  private inlineResult(id: string, result: TaskResult): { blob: StagedBlob; size: number; accepted?: boolean | null } {
    const blob = inlineBlob(packResult(result), (token) => this.keys.result(id, token));
    if (!blob) throw new Error(`bug: a result written by the store is larger than one chunk`);
    return { blob, size: resultSize(result), accepted: result.accepted };
  }

  private statusMove(id: string, from: TaskStatus, to: TaskStatus): IRequestOp[] {
    if (from === to) return [];
    return [op.del(this.keys.status(from, id)), op.put(this.keys.status(to, id), '')];
  }

  /**
   * Takes tasks from `executor` back to Retrying (assignable again, at their place in the queue), or past
   * `maxRetries` ends them as Unknown error with a message saying why. `tasks` are ids, or held entries
   * already read.
   */
  private async sendBack(
    executor: string,
    tasks: readonly string[] | readonly Loaded[],
    options: { countRetry: boolean; reason: RequeueReason; maxRetries: number; announce: boolean; due: (meta: TaskMeta) => boolean; fence?: WriteFence },
  ): Promise<RequeueOutcome> {
    const k = this.keys;
    const fenced = options.fence ? [cmp.exists(options.fence.etcdKey)] : undefined;
    const preloaded = typeof tasks[0] === 'object' ? (tasks as readonly Loaded[]) : undefined;
    const ids = preloaded ? preloaded.map((task) => task.id) : (tasks as readonly string[]);
    type Outcome = 'retried' | 'abandoned' | 'skipped';
    const plan = ({ id, meta, exists, key }: Loaded, now: number): Planned<Outcome> => {
      // An unreadable held entry (a damaged store): drop it, so that it stops being counted.
      if (!meta && exists) return { outcome: 'skipped', write: { ops: [op.del(key)] }, held: null };
      if (!meta) return { outcome: 'skipped', negative: true };
      if (meta.done || meta.executor !== executor || !options.due(meta)) return { outcome: 'skipped', negative: true };
      const retries = meta.retries + (options.countRetry ? 1 : 0);
      if (retries > options.maxRetries) {
        const result = errorResult(giveUpMessage(meta.retries, options.reason));
        const write = this.finishOps(id, meta, TaskStatus.UNKNOWN_ERROR, now, result, options.announce);
        return { outcome: 'abandoned', write: fenced ? { ...write, compare: [...(write.compare ?? []), ...fenced] } : write, held: null };
      }
      const next = JSON.stringify({ ...meta, status: TaskStatus.RETRYING, executor: null, retries, acked: false, report_ms: now } satisfies TaskMeta);
      const ops = [op.put(k.task(id), next), op.del(k.held(executor, id)), op.put(k.pending(id), next), ...this.statusMove(id, meta.status, TaskStatus.RETRYING)];
      if (options.announce) ops.push(op.put(k.released(id), executor));
      return { outcome: 'retried', write: fenced ? { ops, compare: fenced } : { ops }, held: null };
    };
    const results = await this.perTask(ids, 'send tasks back to the queue', { from: 'held', executor }, plan, preloaded);
    const outcome: RequeueOutcome = { retried: [], abandoned: [] };
    for (const id of ids) {
      const result = results.get(id)?.outcome;
      if (result === 'retried') outcome.retried.push(id);
      else if (result === 'abandoned') outcome.abandoned.push(id);
    }
    if (outcome.retried.length + outcome.abandoned.length > 0) {
      this.logger.info(
        { executor, reason: options.reason, ...outcome },
        `took ${outcome.retried.length + outcome.abandoned.length} tasks back from executor ${executor} (${options.reason}): ${outcome.retried.length} to Retrying, ${outcome.abandoned.length} given up`,
      );
    }
    return outcome;
  }

  private metaOf(kv: IKeyValue | undefined): TaskMeta | undefined {
    if (!kv) return undefined;
    const meta = parseMeta(kv.value);
    if (!meta) this.logger.error({ key: kv.key.toString() }, 'unreadable task metadata in the store; the task is treated as missing');
    return meta;
  }
}

/** The index ranges a search walks: the count over the ascending one, the page over the ordered one. */
function searchRanges(keys: StoreKeys, query: SearchQuery) {
  const low = query.startMs !== undefined ? lowestIdAt(query.startMs) : undefined;
  const high = query.endMs !== undefined ? highestIdAt(query.endMs) : undefined;
  const asc = query.user !== undefined ? keys.userTasks(query.user) : keys.tasks;
  const desc = query.user !== undefined ? keys.userDescTasks(query.user) : keys.descs;
  const ascending = {
    start: Buffer.from(asc + (low ?? '')),
    end: high !== undefined ? inclusiveEnd(asc + high) : prefixEnd(asc),
  };
  const descending = {
    start: Buffer.from(desc + (high !== undefined ? invertId(high) : '')),
    end: low !== undefined ? inclusiveEnd(desc + invertId(low)) : prefixEnd(desc),
  };
  return query.oldToNew
    ? { ascending, ordered: ascending, idOf: (key: string) => lastSegment(key) }
    : { ascending, ordered: descending, idOf: (key: string) => invertId(lastSegment(key)) };
}

/** The first key after `key`. */
function afterKey(key: Buffer): Buffer {
  return Buffer.concat([key, Buffer.from([0])]);
}

function parseJson<T>(value: Buffer): T | undefined {
  try {
    return JSON.parse(value.toString('utf8')) as T;
  } catch {
    return undefined;
  }
}
