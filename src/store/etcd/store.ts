// The etcd task store: tasks in the judicators' own etcd cluster (key layout in keys.ts). Its transitions
// are transitions.ts (one function each) and a whole report report.ts, both through changes.ts (read ->
// rule -> write conditioned on what was read); here are its reads, its executor records, its change
// feed (feed.ts) and its task events and live records (task-events.ts).
//
// Round trips: search 2; get 1; a report 2 whatever it carries (report.ts); the transitions' own are in
// transitions.ts.
import type { Etcd3 } from 'etcd3';
import { highestIdAt, idTime, lowestIdAt } from '../../common/ids';
import type { Logger } from '../../common/logging';
import { TaskStatus, type ExecutorInfo, type Task, type TaskBrief } from '../../task/types';
import { BoundTransitions } from '../bound-transitions';
import { executorInfo, heartbeatRecord, type HeartbeatRecord } from '../executor-record';
import type { LiveTask } from '../../task/events';
import { heartbeatSignature, type ExecutorHeartbeat, type LiveRecord, type PendingCallback, type ReportInput, type ReportOutcome, type SearchQuery, type SearchResult, type StoreEvent, type StoreOptions, type TaskChangeHandlers, type TaskChangeWatch, type TaskStore, type WriteFence } from '../task-store';
import { DEFAULT_REPORT_REFRESH_MS, isUnacknowledged } from '../transition-rules';
import { DEFAULT_HELD_VIEW_MS, TaskChanges } from './changes';
import { joinChunks, readChunks } from './chunks';
import { StoreFeed } from './feed';
import { heldExecutor, inclusiveEnd, invertId, lastSegment, prefixEnd, storeKeys, type StoreKeys } from './keys';
import { briefOf, taskOf } from './meta';
import { etcdReport } from './report';
import { EtcdChangeWatch, readLive, watchLive, writeLive } from './task-events';
import { etcdTransitions, redeliveryRound, type EtcdTransitionContext } from './transitions';
import { DEFAULT_TXN_LIMITS, cmp, etcdCall, getMany, op, runSteps, type TxnLimits } from './txn';

export { DEFAULT_HELD_VIEW_MS } from './changes';
export { DEFAULT_REPORT_REFRESH_MS } from '../transition-rules';

/** recordHeartbeat rewrites an executor's record (when its slots and host are unchanged) at most this often. */
export const DEFAULT_HEARTBEAT_REFRESH_MS = 1_000;
/** How long opening a store waits for its change feed before going on without it (it keeps trying). */
const FEED_START_TIMEOUT_MS = 5_000;

export interface EtcdTaskStoreOptions extends StoreOptions {
  /** The etcd client, or a function returning the current one (the judicator's, whose TLS follows renewals). */
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

export class EtcdTaskStore extends BoundTransitions<EtcdTransitionContext> implements TaskStore {
  readonly kind = 'etcd' as const;
  private readonly keys: StoreKeys;
  private readonly clientOf: () => Etcd3;
  private readonly now: () => number;
  private readonly limits: TxnLimits;
  private readonly feed: StoreFeed;
  private readonly logger: Logger;
  private readonly heartbeatRefreshMs: number;
  private readonly heartbeats = new Map<string, { ms: number; signature: string }>();
  protected readonly context: EtcdTransitionContext;
  private lastClient: Etcd3 | undefined;

  constructor(options: EtcdTaskStoreOptions) {
    super(etcdTransitions);
    const client = options.client;
    this.clientOf = typeof client === 'function' ? client : () => client;
    this.keys = storeKeys(options.keyPrefix);
    this.now = options.now ?? Date.now;
    this.limits = { ...DEFAULT_TXN_LIMITS, ...options.txnLimits };
    this.logger = options.logger;
    this.heartbeatRefreshMs = options.heartbeatRefreshMs ?? DEFAULT_HEARTBEAT_REFRESH_MS;
    this.feed = new StoreFeed(this.clientOf, this.keys, this.logger);
    const changes = new TaskChanges({
      client: () => this.client(),
      keys: this.keys,
      limits: this.limits,
      now: this.now,
      logger: this.logger,
      heldViewMs: options.heldViewMs ?? DEFAULT_HELD_VIEW_MS,
    });
    this.context = { changes, maxTaskSize: options.maxTaskSize, reportRefreshMs: options.reportRefreshMs ?? DEFAULT_REPORT_REFRESH_MS, claiming: new Set() };
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
  // the transitions are etcdTransitions (transitions.ts, bound by BoundTransitions); a whole report

  report(executor: string, input: ReportInput): Promise<ReportOutcome> {
    return etcdReport(this.context, executor, input);
  }

  // ---------------------------------------------------------------------------------------------
  // reads

  async search(query: SearchQuery): Promise<SearchResult> {
    const limit = Math.max(0, Math.floor(query.limit));
    const page = Math.max(0, Math.floor(query.page));
    const none: SearchResult = { pages: 0, total: 0, tasks: [] };
    const inTime = (ms: number) => (query.startMs === undefined || ms >= query.startMs) && (query.endMs === undefined || ms <= query.endMs);

    if (query.id !== undefined) {
      const [kv] = await getMany(this.client(), [this.keys.task(query.id)], this.limits, 'search the tasks');
      const meta = this.context.changes.metaOf(kv);
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
      const meta = this.context.changes.metaOf(kvs[i]);
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
    const meta = this.context.changes.metaOf(metaRead?.[0]);
    if (!meta) return undefined;
    const input = joinChunks(inputRead ?? [], k.input(id, meta.input_token), meta.input_chunks);
    if (!input) {
      this.logger.error({ id }, 'a task without its input (a damaged store): treated as missing');
      return undefined;
    }
    const result = meta.result_token ? joinChunks(resultRead ?? [], k.result(id, meta.result_token), meta.result_chunks ?? 1) : undefined;
    return taskOf(id, meta, input, result);
  }

  async unacknowledged(executor: string, reported: ReadonlySet<string>, limit: number): Promise<Task[]> {
    if (limit <= 0) return [];
    const changes = this.context.changes;
    const waiting = (await changes.heldBy(executor)).filter((task) => task.meta && isUnacknowledged(task.meta, executor, reported, task.id)).slice(0, limit);
    if (waiting.length === 0) return [];
    const redelivery = redeliveryRound(changes, waiting);
    return redelivery.settle(await runSteps(this.client(), redelivery.steps, this.limits, 'read the unacknowledged tasks'));
  }

  async holders(): Promise<{ executor: string; oldestReportMs: number; tasks: number }[]> {
    const response = await etcdCall('list the held tasks', () =>
      this.client().kv.range({ key: Buffer.from(this.keys.helds), range_end: prefixEnd(this.keys.helds), serializable: true }),
    );
    const byExecutor = new Map<string, { executor: string; oldestReportMs: number; tasks: number }>();
    for (const kv of response.kvs) {
      const executor = heldExecutor(this.keys, kv.key.toString());
      const meta = this.context.changes.metaOf(kv);
      const entry = byExecutor.get(executor) ?? { executor, oldestReportMs: Number.POSITIVE_INFINITY, tasks: 0 };
      entry.tasks++;
      // An unreadable entry counts as ancient: the leader's requeue then repairs or drops it.
      entry.oldestReportMs = Math.min(entry.oldestReportMs, meta?.report_ms ?? 0);
      byExecutor.set(executor, entry);
    }
    return [...byExecutor.values()];
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
  // executors

  async recordHeartbeat(executor: string, info: ExecutorHeartbeat): Promise<void> {
    const now = this.now();
    const last = this.heartbeats.get(executor);
    const signature = heartbeatSignature(info);
    // The record serves `executors` and executor expiry, both measured in seconds: under load an executor
    // reports many times a second, and rewriting the record each time would be much of etcd's work.
    if (last && now - last.ms < this.heartbeatRefreshMs && last.signature === signature) return;
    const record: ExecutorRecord = { name: executor, report_ms: now, ...heartbeatRecord(info) };
    await etcdCall('record the executor report', () =>
      this.client().kv.put({ key: Buffer.from(this.keys.executor(executor)), value: Buffer.from(JSON.stringify(record)) }),
    );
    this.heartbeats.set(executor, { ms: now, signature });
  }

  async listExecutors(): Promise<ExecutorInfo[]> {
    const response = await etcdCall('list the executors', () =>
      this.client().kv.range({ key: Buffer.from(this.keys.executors), range_end: prefixEnd(this.keys.executors) }),
    );
    const out: ExecutorInfo[] = [];
    for (const kv of response.kvs) {
      const record = parseJson<ExecutorRecord>(kv.value);
      if (!record || typeof record.name !== 'string' || typeof record.report_ms !== 'number') continue;
      out.push(executorInfo(record.name, record.report_ms, record));
    }
    return out;
  }

  async executorKey(name: string): Promise<string | undefined> {
    const response = await etcdCall('read the executor record', () => this.client().kv.range({ key: Buffer.from(this.keys.executor(name)) }));
    const value = response.kvs[0]?.value;
    const record = value ? parseJson<ExecutorRecord>(value) : undefined;
    return typeof record?.key === 'string' ? record.key : undefined;
  }

  async removeExecutor(name: string, fence?: WriteFence): Promise<void> {
    const remove = { request_delete_range: { key: Buffer.from(this.keys.executor(name)) } };
    await etcdCall('remove the executor', () =>
      this.client().kv.txn({ compare: fence ? [cmp.exists(fence.etcdKey)] : [], success: [remove] }),
    );
    this.heartbeats.delete(name);
  }

  // ---------------------------------------------------------------------------------------------
  // the callback outbox (issue 17)

  async dueCallbacks(nowMs: number, limit: number): Promise<PendingCallback[]> {
    const prefix = this.keys.callbacks;
    const response = await etcdCall('read the callback outbox', () => this.client().kv.range({ key: Buffer.from(prefix), range_end: prefixEnd(prefix) }));
    const due: PendingCallback[] = [];
    for (const kv of response.kvs) {
      const entry = parseJson<{ url?: unknown; attempts?: unknown; due_ms?: unknown }>(kv.value);
      const id = lastSegment(kv.key.toString());
      if (!entry || typeof entry.url !== 'string' || typeof entry.attempts !== 'number' || typeof entry.due_ms !== 'number') {
        this.logger.error({ key: kv.key.toString() }, 'unreadable callback in the outbox; it is dropped');
        await this.settleCallback(id, { done: true });
        continue;
      }
      if (entry.due_ms <= nowMs) due.push({ id, url: entry.url, attempts: entry.attempts, dueMs: entry.due_ms });
    }
    return due.sort((a, b) => a.dueMs - b.dueMs || (a.id < b.id ? -1 : 1)).slice(0, limit);
  }

  async settleCallback(id: string, outcome: { done: true } | { retryAtMs: number }, fence?: WriteFence): Promise<void> {
    const key = this.keys.callback(id);
    const compare = fence ? [cmp.exists(fence.etcdKey), cmp.exists(key)] : [cmp.exists(key)];
    if ('done' in outcome) {
      await etcdCall('settle a callback', () => this.client().kv.txn({ compare, success: [op.del(key)] }));
      return;
    }
    const current = await etcdCall('read a callback', () => this.client().kv.range({ key: Buffer.from(key) }));
    const entry = current.kvs[0] && parseJson<{ url: string; attempts: number }>(current.kvs[0].value);
    if (!entry) return;
    const next = JSON.stringify({ url: entry.url, attempts: entry.attempts + 1, due_ms: outcome.retryAtMs });
    await etcdCall('settle a callback', () => this.client().kv.txn({ compare: [...compare, cmp.unchanged(key, current.kvs[0]!.mod_revision)], success: [op.put(key, next)] }));
  }

  // ---------------------------------------------------------------------------------------------
  // change feed

  subscribe(listener: (event: StoreEvent) => void): () => void {
    this.client();
    return this.feed.subscribe(listener);
  }

  watchTaskChanges(after: string | undefined, handlers: TaskChangeHandlers): TaskChangeWatch {
    return new EtcdChangeWatch(() => this.client(), this.keys, after, handlers, this.logger);
  }

  // ---------------------------------------------------------------------------------------------
  // live state of running tasks (task-events.ts)

  writeLive(executor: string, records: readonly LiveTask[]): Promise<string[]> {
    return writeLive(this.client(), this.keys, this.limits, executor, records);
  }

  readLive(id: string): Promise<LiveRecord | undefined> {
    return readLive(this.client(), this.keys, id);
  }

  watchLive(id: string, listener: (record: LiveRecord | null) => void): () => void {
    return watchLive(this.client(), this.keys, id, listener, this.logger);
  }

  async close(): Promise<void> {
    await this.feed.close();
  }
}

/** An executor's record (key executor/<name>). */
interface ExecutorRecord extends HeartbeatRecord {
  name: string;
  report_ms: number;
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
