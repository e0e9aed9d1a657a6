// The MongoDB TaskStore: tasks and executors in the replica set spread over the judicators (documents.ts:
// the original's database, collections and field names), with what the original lacked: write concern
// majority (an acknowledged write survives a failover), an index for every query, every transition
// conditioned on the task as it was read (transitions.ts), executors keyed by name (no duplicate
// records), client-chosen ids, the size limit turned into TooLargeError, UTC Date fields, a change
// stream that wakes long-polling reports cluster-wide (feed.ts), and the task events and live records of
// issue 17 (task-events.ts). Opened by open.ts.
import type { ChangeStreamDocument, Collection, Filter, MongoClient } from 'mongodb';
import type { Logger } from '../../common/logging';
import { TaskStatus, type ExecutorInfo, type Task } from '../../task/types';
import { BoundTransitions } from '../bound-transitions';
import { executorInfo, heartbeatRecord } from '../executor-record';
import type { LiveTask } from '../../task/events';
import type { ExecutorHeartbeat, LiveRecord, PendingCallback, ReportInput, ReportOutcome, SearchQuery, SearchResult, StoreEvent, StoreOptions, TaskChangeHandlers, TaskChangeWatch, TaskStore, WriteFence } from '../task-store';
import { DEFAULT_REPORT_REFRESH_MS } from '../transition-rules';
import { BRIEF_PROJECTION, DATABASE, EXECUTOR_COLLECTION, TASK_COLLECTION, TASK_INDEXES, parseId, toBrief, toTask, type ExecutorDoc, type TaskDoc } from './documents';
import { checkFence, isDuplicateKey, translate } from './errors';
import { CHANGE_STREAM_OPEN_TIMEOUT_MS, TaskChangeStream } from './feed';
import { MongoChangeWatch, readLive, watchLive, writeLive } from './task-events';
import { mongoTransitions, objectIds, type MongoTransitionContext } from './transitions';

export interface MongoStoreOptions extends StoreOptions {
  /** Connection string of the replica set (mongodb/module.ts replicaSetUri). */
  uri: string;
  database?: string;
  logger: Logger;
  /** Milliseconds a majority write waits for the secondaries before it fails (wtimeoutMS): WRITE_TIMEOUT_MS. */
  writeTimeoutMs?: number;
  /** Milliseconds an operation waits for a primary (serverSelectionTimeoutMS): SERVER_SELECTION_TIMEOUT_MS. */
  serverSelectionTimeoutMs?: number;
  /** Milliseconds before a broken change stream is opened again (CHANGE_STREAM_RETRY_MS). */
  changeStreamRetryMs?: number;
  /** Milliseconds between attempts while opening (the replica set may not be initiated yet): OPEN_RETRY_MS. */
  openRetryMs?: number;
  /** See transition-rules.ts DEFAULT_REPORT_REFRESH_MS. */
  reportRefreshMs?: number;
}

export class MongoTaskStore extends BoundTransitions<MongoTransitionContext> implements TaskStore {
  readonly kind = 'mongodb' as const;
  private readonly tasks: Collection<TaskDoc>;
  private readonly executors: Collection<ExecutorDoc>;
  private readonly now: () => number;
  private readonly feed: TaskChangeStream;
  private readonly logger: Logger;
  protected readonly context: MongoTransitionContext;

  constructor(
    private readonly client: MongoClient,
    options: MongoStoreOptions,
  ) {
    super(mongoTransitions);
    const db = client.db(options.database ?? DATABASE);
    this.tasks = db.collection<TaskDoc>(TASK_COLLECTION);
    this.executors = db.collection<ExecutorDoc>(EXECUTOR_COLLECTION);
    this.now = options.now ?? Date.now;
    this.feed = new TaskChangeStream(this.tasks, options.logger, options.changeStreamRetryMs);
    this.logger = options.logger;
    this.context = {
      tasks: this.tasks,
      now: this.now,
      logger: options.logger,
      maxTaskSize: options.maxTaskSize,
      reportRefreshMs: options.reportRefreshMs ?? DEFAULT_REPORT_REFRESH_MS,
    };
  }

  /** Creates the indexes (idempotent; every judicator does it at start). */
  async ensureIndexes(): Promise<void> {
    await this.tasks.createIndexes(TASK_INDEXES);
  }

  // ---- the transitions are mongoTransitions (transitions.ts, bound by BoundTransitions); a whole report ----

  /**
   * The report's transitions one after another (each is already one query plus its conditioned writes).
   * Assignment comes before the tasks the report gives back or loses go back to the queue, as on etcd
   * (where all of it is one transaction): those are assignable from the next report on.
   */
  async report(executor: string, input: ReportInput): Promise<ReportOutcome> {
    const complete = new Set(input.complete.map((task) => task.id));
    const release = input.release.filter((id) => !complete.has(id));
    const releasing = new Set(release);
    const executing = input.executing.filter((update) => !complete.has(update.id) && !releasing.has(update.id));
    const reported = new Set([...complete, ...release, ...executing.map((update) => update.id)]);
    const { accepted } = input.complete.length ? await this.complete(executor, input.complete) : { accepted: [] };
    const { notHeld } = executing.length ? await this.updateExecuting(executor, executing) : { notHeld: [] };
    const redelivered = await this.unacknowledged(executor, reported, input.vacant);
    const fresh = input.vacant > redelivered.length ? await this.assign(executor, input.vacant - redelivered.length) : [];
    const released = release.length ? await this.release(executor, release) : [];
    const lost = await this.requeueUnreported(executor, reported, input.maxRetries);
    return { accepted, released, notHeld, lost, assigned: [...redelivered, ...fresh] };
  }

  // ---- reads ----

  async search(query: SearchQuery): Promise<SearchResult> {
    const filter: Filter<TaskDoc> = {};
    if (query.id !== undefined) {
      const oid = parseId(query.id);
      if (!oid) return { pages: 0, total: 0, tasks: [] };
      filter._id = oid;
    }
    if (query.user !== undefined) filter.user = query.user;
    if (query.startMs !== undefined || query.endMs !== undefined) {
      const range: { $gte?: Date; $lte?: Date } = {};
      if (query.startMs !== undefined) range.$gte = new Date(query.startMs);
      if (query.endMs !== undefined) range.$lte = new Date(query.endMs);
      filter.add_time = range;
    }
    const limit = Math.max(0, Math.floor(query.limit));
    const page = Math.max(0, Math.floor(query.page));
    try {
      // Counted on an index (no task document is read: they can be 16 MB each); an id is a point lookup.
      const hint = query.id !== undefined ? undefined : query.user !== undefined ? 'user_add_time' : 'add_time';
      const total = await this.tasks.countDocuments(filter, hint ? { hint } : {});
      if (total === 0) return { pages: 0, total: 0, tasks: [] };
      const direction = query.oldToNew ? 1 : -1;
      // add_time is the time the id carries, so this is id order; ties are broken by id.
      let cursor = this.tasks.find(filter, { projection: BRIEF_PROJECTION, sort: { add_time: direction, _id: direction } });
      if (limit > 0) cursor = cursor.skip(page * limit).limit(limit);
      const docs = await cursor.toArray();
      return {
        pages: limit === 0 ? 1 : Math.ceil(total / limit),
        total,
        tasks: docs.map((doc) => toBrief(doc)),
      };
    } catch (error) {
      throw translate(error, 'searching tasks');
    }
  }

  async get(id: string): Promise<Task | undefined> {
    const oid = parseId(id);
    if (!oid) return undefined;
    try {
      const doc = await this.tasks.findOne({ _id: oid });
      return doc ? toTask(doc) : undefined;
    } catch (error) {
      throw translate(error, 'reading a task');
    }
  }

  async unacknowledged(executor: string, reported: ReadonlySet<string>, limit: number): Promise<Task[]> {
    if (limit <= 0) return [];
    try {
      const docs = await this.tasks
        .find({ executor, done: false, acknowledged: false, _id: { $nin: objectIds(reported) } }, { sort: { add_time: 1, _id: 1 }, limit })
        .toArray();
      return docs.map(toTask);
    } catch (error) {
      throw translate(error, 'redelivering tasks');
    }
  }

  async holders(): Promise<{ executor: string; oldestReportMs: number; tasks: number }[]> {
    try {
      const groups = await this.tasks
        .aggregate<{ _id: string; oldest: Date; tasks: number }>([
          { $match: { done: false, executor: { $ne: null } } },
          { $group: { _id: '$executor', oldest: { $min: '$report_time' }, tasks: { $sum: 1 } } },
          { $sort: { _id: 1 } },
        ])
        .toArray();
      return groups.map((g) => ({ executor: g._id, oldestReportMs: g.oldest.getTime(), tasks: g.tasks }));
    } catch (error) {
      throw translate(error, 'listing task holders');
    }
  }

  async countByStatus(): Promise<Partial<Record<TaskStatus, number>>> {
    try {
      const statuses = Object.values(TaskStatus);
      const counts = await Promise.all(statuses.map((status) => this.tasks.countDocuments({ status })));
      const result: Partial<Record<TaskStatus, number>> = {};
      statuses.forEach((status, i) => {
        result[status] = counts[i] ?? 0;
      });
      return result;
    } catch (error) {
      throw translate(error, 'counting tasks');
    }
  }

  // ---- executors ----

  async recordHeartbeat(executor: string, info: ExecutorHeartbeat): Promise<void> {
    const now = new Date(this.now());
    // The whole record, as the etcd store writes it: nothing an earlier process of the name said stays.
    const record: Omit<ExecutorDoc, '_id'> = { hostname: executor, report_time: now, ...heartbeatRecord(info) };
    for (let attempt = 0; ; attempt++) {
      try {
        await this.executors.replaceOne({ _id: executor }, record, { upsert: true });
        return;
      } catch (error) {
        // Two first heartbeats racing: one insert wins, the other becomes an update on retry.
        if (isDuplicateKey(error) && attempt < 2) continue;
        throw translate(error, 'recording a heartbeat');
      }
    }
  }

  async listExecutors(): Promise<ExecutorInfo[]> {
    try {
      const docs = await this.executors.find({}, { sort: { _id: 1 } }).toArray();
      // recordHeartbeat writes hostname as the _id: the name, as the original's field held it.
      return docs.map((doc) => executorInfo(doc._id, doc.report_time.getTime(), doc));
    } catch (error) {
      throw translate(error, 'listing executors');
    }
  }

  async executorKey(name: string): Promise<string | undefined> {
    try {
      const doc = await this.executors.findOne({ _id: name }, { projection: { key: 1 } });
      return typeof doc?.key === 'string' ? doc.key : undefined;
    } catch (error) {
      throw translate(error, 'reading an executor record');
    }
  }

  async removeExecutor(name: string, fence?: WriteFence): Promise<void> {
    await checkFence(fence);
    try {
      await this.executors.deleteOne({ _id: name });
    } catch (error) {
      throw translate(error, 'removing an executor');
    }
  }

  // ---- the callback outbox (issue 17): the `callback` subdocument the update ending a task sets ----

  async dueCallbacks(nowMs: number, limit: number): Promise<PendingCallback[]> {
    try {
      const docs = await this.tasks
        .find(
          // `callback: {$exists: true}` is the partial index's own filter: the planner may use it (callback_due).
          { callback: { $exists: true }, 'callback.due': { $lte: new Date(nowMs) } },
          { projection: { callback: 1 }, sort: { 'callback.due': 1 }, limit: Math.max(1, limit) },
        )
        .toArray();
      return docs.filter((doc) => doc.callback).map((doc) => ({ id: doc._id.toHexString(), url: doc.callback!.url, attempts: doc.callback!.attempts, dueMs: doc.callback!.due.getTime() }));
    } catch (error) {
      throw translate(error, 'reading the callback outbox');
    }
  }

  async settleCallback(id: string, outcome: { done: true } | { retryAtMs: number }, fence?: WriteFence): Promise<void> {
    await checkFence(fence);
    const oid = parseId(id);
    if (!oid) return;
    try {
      if ('done' in outcome) await this.tasks.updateOne({ _id: oid, callback: { $exists: true } }, { $unset: { callback: '' } });
      else await this.tasks.updateOne({ _id: oid, callback: { $exists: true } }, { $inc: { 'callback.attempts': 1 }, $set: { 'callback.due': new Date(outcome.retryAtMs) } });
    } catch (error) {
      throw translate(error, 'settling a callback');
    }
  }

  // ---- change feed (feed.ts) ----

  subscribe(listener: (event: StoreEvent) => void): () => void {
    return this.feed.subscribe(listener);
  }

  watchTaskChanges(after: string | undefined, handlers: TaskChangeHandlers): TaskChangeWatch {
    return new MongoChangeWatch(this.tasks, after, handlers, this.logger);
  }

  // ---- live state of running tasks (task-events.ts) ----

  writeLive(executor: string, records: readonly LiveTask[]): Promise<string[]> {
    return writeLive(this.tasks, executor, records);
  }

  readLive(id: string): Promise<LiveRecord | undefined> {
    return readLive(this.tasks, id);
  }

  watchLive(id: string, listener: (record: LiveRecord | null) => void): () => void {
    return watchLive(this.tasks, id, listener, this.logger);
  }

  /** The events a change means (feed.ts). */
  static eventsOf(change: ChangeStreamDocument<TaskDoc>): StoreEvent[] {
    return TaskChangeStream.eventsOf(change);
  }

  /** Opens the change stream; resolves once the server has it, so that every change from then on is seen. */
  startFeed(timeoutMs: number = CHANGE_STREAM_OPEN_TIMEOUT_MS): Promise<void> {
    return this.feed.start(timeoutMs);
  }

  async close(): Promise<void> {
    this.feed.close();
    await this.client.close();
  }
}
