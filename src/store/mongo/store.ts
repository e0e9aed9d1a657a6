// The MongoDB TaskStore: tasks and executors in the replica set spread over the judicators, as the
// original kept them (database `judicator`, collections `task` and `executor`, the original's field
// names), with what it lacked: write concern majority (an acknowledged write survives a failover), an
// index for every query, every per-task step one atomic findOneAndUpdate whose filter checks the holder,
// executors keyed by name (no duplicate records), client-chosen ids, the size limit turned into
// TooLargeError, UTC Date fields, and a change stream that wakes long-polling reports cluster-wide.
import { randomBytes } from 'node:crypto';
import {
  MongoClient,
  MongoError,
  MongoNetworkError,
  MongoServerError,
  MongoServerSelectionError,
  MongoWriteConcernError,
  ObjectId,
  type ChangeStream,
  type ChangeStreamDocument,
  type Collection,
  type Document,
  type Filter,
  type IndexDescription,
  type ResumeToken,
} from 'mongodb';
import { TooLargeError, UnavailableError, describeError } from '../../common/errors';
import { ID_PATTERN, idTime, newId } from '../../common/ids';
import type { Logger } from '../../common/logging';
import { sleep } from '../../common/processes';
import { isoTime } from '../../common/time';
import { inputSize, resultSize } from '../../task/codec';
import {
  RUNNING_STATUSES,
  TaskStatus,
  isDoneStatus,
  type CompletedTask,
  type ExecutorInfo,
  type StepLimits,
  type StepReport,
  type Task,
  type TaskBrief,
  type TaskInput,
  type TaskResult,
} from '../../task/types';
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
import { errorResult, giveUpMessage, notFinalResult, tooLargeResult } from '../store-results';

export const DATABASE = 'judicator';
export const TASK_COLLECTION = 'task';
export const EXECUTOR_COLLECTION = 'executor';

export interface MongoStoreOptions extends StoreOptions {
  /** Connection string of the replica set (mongodb/module.ts replicaSetUri). */
  uri: string;
  database?: string;
  logger: Logger;
  /** Milliseconds a majority write waits for the secondaries before it fails (wtimeoutMS). Default 10 s. */
  writeTimeoutMs?: number;
  /** Milliseconds an operation waits for a primary (serverSelectionTimeoutMS). Default 10 s. */
  serverSelectionTimeoutMs?: number;
  /** Milliseconds before a broken change stream is opened again. Default 1 s. */
  changeStreamRetryMs?: number;
  /** Milliseconds between attempts while opening (the replica set may not be initiated yet). Default 1 s. */
  openRetryMs?: number;
}

interface ResultDoc {
  compile_output: Uint8Array;
  compile_error: Uint8Array;
  execute_output: Uint8Array;
  execute_error: Uint8Array;
  accepted?: boolean | null;
  compile?: StepReport | null;
  execute?: StepReport | null;
}

export interface TaskDoc {
  _id: ObjectId;
  user: number;
  compile: { source: Uint8Array; command: Uint8Array; timeout: number; limits?: StepLimits };
  execute: { input: Uint8Array; data: Uint8Array; command: Uint8Array; timeout: number; standard: Uint8Array; limits?: StepLimits };
  network?: boolean;
  add_time: Date;
  done: boolean;
  status: TaskStatus;
  executor: string | null;
  report_time: Date;
  result: ResultDoc | null;
  /** Addition: times the task went back to Retrying. */
  retries: number;
  /** Addition: the holder reported it as executing since it was assigned (else the answer may be lost). */
  acknowledged: boolean;
  /** Addition: bytes the input takes (what the size limit counts), so a result can be checked against it. */
  input_size: number;
  /**
   * Addition: "<executor>/<random>" written whenever a task is taken from its executor (cancel, requeue,
   * release): the change stream turns it into a `released` event without needing pre-images (6.0+).
   */
  released?: string;
}

export interface ExecutorDoc {
  _id: string;
  hostname: string;
  report_time: Date;
  vacant?: number;
  slots?: number;
  host?: string;
}

/** One index per query shape; names are fixed so a changed definition is noticed, not duplicated. */
export const TASK_INDEXES: IndexDescription[] = [
  // assign (done:false, executor:null, oldest first), and everything per holder (executor:X, done:false).
  { key: { done: 1, executor: 1, add_time: 1, _id: 1 }, name: 'done_executor_add_time' },
  // search without a user, newest or oldest first.
  { key: { add_time: -1, _id: -1 }, name: 'add_time' },
  // search by user.
  { key: { user: 1, add_time: -1, _id: -1 }, name: 'user_add_time' },
  // retention: done tasks by finish time.
  { key: { done: 1, report_time: 1 }, name: 'done_report_time' },
  // countByStatus: one count scan per status.
  { key: { status: 1 }, name: 'status' },
];

const BRIEF_PROJECTION = { user: 1, add_time: 1, done: 1, status: 1, executor: 1, report_time: 1 } as const;

/** How many times a compare-and-swap step is tried against concurrent changes before giving up. */
const CAS_ATTEMPTS = 8;

function toBuffer(value: unknown): Buffer {
  if (Buffer.isBuffer(value)) return value;
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  // bson Binary (when buffers are not promoted)
  if (value && typeof value === 'object' && 'buffer' in value) {
    const inner = (value as { buffer: Uint8Array }).buffer;
    return Buffer.from(inner.buffer, inner.byteOffset, inner.byteLength);
  }
  return Buffer.alloc(0);
}

function parseId(id: string): ObjectId | undefined {
  return ID_PATTERN.test(id) ? ObjectId.createFromHexString(id) : undefined;
}

function releasedMark(executor: string): string {
  // Executor names cannot contain "/" (flags.ts NAME_PATTERN), so the first "/" splits it off again.
  return `${executor}/${randomBytes(6).toString('hex')}`;
}

function resultDoc(result: TaskResult): ResultDoc {
  const doc: ResultDoc = {
    compile_output: result.compile_output,
    compile_error: result.compile_error,
    execute_output: result.execute_output,
    execute_error: result.execute_error,
  };
  if (result.accepted !== undefined) doc.accepted = result.accepted;
  if (result.compile !== undefined) doc.compile = result.compile;
  if (result.execute !== undefined) doc.execute = result.execute;
  return doc;
}

function toResult(doc: ResultDoc | null | undefined): TaskResult | null {
  if (!doc) return null;
  const result: TaskResult = {
    compile_output: toBuffer(doc.compile_output),
    compile_error: toBuffer(doc.compile_error),
    execute_output: toBuffer(doc.execute_output),
    execute_error: toBuffer(doc.execute_error),
  };
  if (doc.accepted !== undefined) result.accepted = doc.accepted;
  if (doc.compile !== undefined) result.compile = doc.compile;
  if (doc.execute !== undefined) result.execute = doc.execute;
  return result;
}

function toBrief(doc: Pick<TaskDoc, '_id' | 'user' | 'add_time' | 'done' | 'status' | 'executor' | 'report_time'>): TaskBrief {
  return {
    id: doc._id.toHexString(),
    user: doc.user,
    add_time: isoTime(doc.add_time.getTime()),
    done: doc.done,
    status: doc.status,
    executor: doc.executor ?? null,
    report_time: isoTime(doc.report_time.getTime()),
  };
}

export function toTask(doc: TaskDoc): Task {
  const compile: Task['compile'] = {
    source: toBuffer(doc.compile.source),
    command: toBuffer(doc.compile.command),
    timeout: doc.compile.timeout,
  };
  if (doc.compile.limits) compile.limits = doc.compile.limits;
  const execute: Task['execute'] = {
    input: toBuffer(doc.execute.input),
    data: toBuffer(doc.execute.data),
    command: toBuffer(doc.execute.command),
    timeout: doc.execute.timeout,
    standard: toBuffer(doc.execute.standard),
  };
  if (doc.execute.limits) execute.limits = doc.execute.limits;
  const task: Task = { ...toBrief(doc), compile, execute, retries: doc.retries ?? 0, result: toResult(doc.result) };
  if (doc.network !== undefined) task.network = doc.network;
  return task;
}

/** A new task's document. Its add (and first report) time is the time its id carries, as in the etcd store. */
export function taskDoc(task: TaskInput, id: ObjectId): TaskDoc {
  const now = new Date(idTime(id.toHexString()));
  const doc: TaskDoc = {
    _id: id,
    user: task.user,
    compile: { source: task.compile.source, command: task.compile.command, timeout: task.compile.timeout },
    execute: {
      input: task.execute.input,
      data: task.execute.data,
      command: task.execute.command,
      timeout: task.execute.timeout,
      standard: task.execute.standard,
    },
    add_time: now,
    done: false,
    status: TaskStatus.PENDING,
    executor: null,
    report_time: now,
    result: null,
    retries: 0,
    acknowledged: false,
    input_size: inputSize(task),
  };
  if (task.compile.limits) doc.compile.limits = task.compile.limits;
  if (task.execute.limits) doc.execute.limits = task.execute.limits;
  if (task.network !== undefined) doc.network = task.network;
  return doc;
}

/** The server's (or the BSON encoder's) "this document is over 16 MB" in any of its spellings. */
export function isTooLargeError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  if (code === 10334 || code === 17419 || code === 17420) return true;
  if ((error as { codeName?: unknown }).codeName === 'BSONObjectTooLarge') return true;
  return /too large|larger than|exceeds the max/i.test(error.message);
}

function isDuplicateKey(error: unknown): boolean {
  return error instanceof MongoServerError && error.code === 11000;
}

/** Connection trouble and unconfirmed majority writes become UnavailableError, with what to check. */
function translate(error: unknown, what: string): unknown {
  if (error instanceof MongoNetworkError || error instanceof MongoServerSelectionError) {
    return new UnavailableError(`the MongoDB replica set does not answer (${what}): ${describeError(error)}; is a majority of the judicators' mongods up?`, { cause: error });
  }
  if (error instanceof MongoWriteConcernError) {
    return new UnavailableError(`a majority of the replica set did not confirm ${what} in time: ${describeError(error)}`, { cause: error });
  }
  return error;
}

export class MongoTaskStore implements TaskStore {
  readonly kind = 'mongodb' as const;
  private readonly tasks: Collection<TaskDoc>;
  private readonly executors: Collection<ExecutorDoc>;
  private readonly now: () => number;
  private readonly listeners = new Set<(event: StoreEvent) => void>();
  private stream: ChangeStream<TaskDoc> | undefined;
  private resumeToken: ResumeToken | undefined;
  private reopenTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly client: MongoClient,
    private readonly options: MongoStoreOptions,
  ) {
    const db = client.db(options.database ?? DATABASE);
    this.tasks = db.collection<TaskDoc>(TASK_COLLECTION);
    this.executors = db.collection<ExecutorDoc>(EXECUTOR_COLLECTION);
    this.now = options.now ?? Date.now;
  }

  private get logger(): Logger {
    return this.options.logger;
  }

  private tooLarge(size: number, what: string): TooLargeError {
    return new TooLargeError(`${what} takes ${size} bytes, more than the task size limit of ${this.options.maxTaskSize} bytes (--task-max-size)`);
  }

  /** Creates the indexes (idempotent; every judicator does it at start). */
  async ensureIndexes(): Promise<void> {
    await this.tasks.createIndexes(TASK_INDEXES);
  }

  async add(task: TaskInput, id?: string): Promise<string> {
    const size = inputSize(task);
    if (size > this.options.maxTaskSize) throw this.tooLarge(size, 'the task');
    const now = this.now();
    const hex = id ?? newId(now);
    const oid = parseId(hex);
    if (!oid) throw new Error(`not a task id: ${hex}`);
    try {
      await this.tasks.insertOne(taskDoc(task, oid));
    } catch (error) {
      // The same client-chosen id again: the first add went through (its answer was lost).
      if (id !== undefined && isDuplicateKey(error)) return hex;
      if (isTooLargeError(error)) throw this.tooLarge(size, 'the task');
      throw translate(error, 'adding a task');
    }
    return hex;
  }

  async cancel(id: string): Promise<{ found: true; executor: string | null } | { found: false }> {
    const oid = parseId(id);
    if (!oid) return { found: false };
    try {
      // Compare-and-swap on the holder: the released mark must name the executor the task is taken from.
      for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
        const current = await this.tasks.findOne({ _id: oid, done: false }, { projection: { executor: 1 } });
        if (!current) return { found: false };
        const holder = current.executor ?? null;
        const set: Partial<TaskDoc> = { done: true, status: TaskStatus.CANCELLED, executor: null, acknowledged: false, report_time: new Date(this.now()) };
        if (holder) set.released = releasedMark(holder);
        const updated = await this.tasks.findOneAndUpdate({ _id: oid, done: false, executor: holder }, { $set: set }, { projection: { _id: 1 } });
        if (updated) return { found: true, executor: holder };
      }
    } catch (error) {
      throw translate(error, 'cancelling a task');
    }
    throw new UnavailableError(`task ${id} kept changing while it was being cancelled; try again`);
  }

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

  async recordHeartbeat(executor: string, info: { vacant: number; slots?: number; host?: string }): Promise<void> {
    const now = new Date(this.now());
    const set: Partial<ExecutorDoc> = { hostname: executor, report_time: now, vacant: info.vacant };
    if (info.slots !== undefined) set.slots = info.slots;
    if (info.host !== undefined) set.host = info.host;
    for (let attempt = 0; ; attempt++) {
      try {
        await this.executors.updateOne({ _id: executor }, { $set: set }, { upsert: true });
        return;
      } catch (error) {
        // Two first heartbeats racing: one insert wins, the other becomes an update on retry.
        if (isDuplicateKey(error) && attempt < 2) continue;
        throw translate(error, 'recording a heartbeat');
      }
    }
  }

  async complete(executor: string, tasks: readonly CompletedTask[]): Promise<{ accepted: string[] }> {
    const accepted: string[] = [];
    try {
      for (const task of tasks) {
        const oid = parseId(task.id);
        if (!oid) continue;
        const held = { _id: oid, executor, done: false };
        const current = await this.tasks.findOne(held, { projection: { input_size: 1 } });
        if (!current) continue;
        const now = new Date(this.now());
        const size = (current.input_size ?? 0) + resultSize(task.result);
        const tooLarge: Partial<TaskDoc> = {
          done: true,
          status: TaskStatus.UNKNOWN_ERROR,
          executor: null,
          acknowledged: false,
          report_time: now,
          result: resultDoc(tooLargeResult(size, this.options.maxTaskSize)),
        };
        // The judicator refuses a non-final status; should one get here, the task must still end consistent.
        const final = isDoneStatus(task.status);
        const normal: Partial<TaskDoc> = {
          done: true,
          status: final ? task.status : TaskStatus.UNKNOWN_ERROR,
          executor: null,
          acknowledged: false,
          report_time: now,
          result: resultDoc(final ? task.result : notFinalResult(task.result, task.status)),
        };
        let updated;
        try {
          updated = await this.tasks.findOneAndUpdate(held, { $set: size > this.options.maxTaskSize ? tooLarge : normal }, { projection: { _id: 1 } });
        } catch (error) {
          if (!isTooLargeError(error)) throw error;
          updated = await this.tasks.findOneAndUpdate(held, { $set: tooLarge }, { projection: { _id: 1 } });
        }
        if (updated) accepted.push(task.id);
      }
    } catch (error) {
      throw translate(error, 'recording results');
    }
    return { accepted };
  }

  async updateExecuting(executor: string, updates: readonly ExecutingUpdate[]): Promise<{ notHeld: string[] }> {
    const notHeld: string[] = [];
    try {
      for (const update of updates) {
        const oid = parseId(update.id);
        const set: Partial<TaskDoc> = { acknowledged: true, report_time: new Date(this.now()) };
        // Only a running status fits a task that is not done; anything else keeps the stored status.
        if (RUNNING_STATUSES.includes(update.status)) set.status = update.status;
        const updated = oid ? await this.tasks.findOneAndUpdate({ _id: oid, executor, done: false }, { $set: set }, { projection: { _id: 1 } }) : null;
        if (!updated) notHeld.push(update.id);
      }
    } catch (error) {
      throw translate(error, 'recording running tasks');
    }
    return { notHeld };
  }

  private idsNotIn(reported: ReadonlySet<string>): ObjectId[] {
    return [...reported].map(parseId).filter((oid): oid is ObjectId => oid !== undefined);
  }

  async requeueUnreported(executor: string, reported: ReadonlySet<string>, maxRetries: number): Promise<RequeueOutcome> {
    try {
      const lost = await this.tasks
        .find({ executor, done: false, acknowledged: true, _id: { $nin: this.idsNotIn(reported) } }, { projection: { _id: 1 } })
        .toArray();
      // The executor's own report is answered with the cancels: nobody else needs telling.
      return await this.requeue(lost.map((d) => d._id), { executor, done: false, acknowledged: true }, { reason: 'unreported', maxRetries, countRetry: true, announce: false });
    } catch (error) {
      throw translate(error, 'requeueing lost tasks');
    }
  }

  async unacknowledged(executor: string, reported: ReadonlySet<string>, limit: number): Promise<Task[]> {
    if (limit <= 0) return [];
    try {
      const docs = await this.tasks
        .find({ executor, done: false, acknowledged: false, _id: { $nin: this.idsNotIn(reported) } }, { sort: { add_time: 1, _id: 1 }, limit })
        .toArray();
      return docs.map(toTask);
    } catch (error) {
      throw translate(error, 'redelivering tasks');
    }
  }

  async release(executor: string, ids: readonly string[]): Promise<string[]> {
    try {
      const oids = [...new Set(ids)].map(parseId).filter((oid): oid is ObjectId => oid !== undefined);
      const outcome = await this.requeue(oids, { executor, done: false }, { reason: 'unreported', maxRetries: Number.POSITIVE_INFINITY, countRetry: false, announce: false });
      return outcome.retried;
    } catch (error) {
      throw translate(error, 'releasing tasks');
    }
  }

  async assign(executor: string, count: number): Promise<Task[]> {
    const assigned: Task[] = [];
    try {
      while (assigned.length < count) {
        // One atomic step per task: concurrent judicators never hand one task to two executors.
        const doc = await this.tasks.findOneAndUpdate(
          { done: false, executor: null },
          { $set: { executor, acknowledged: false, report_time: new Date(this.now()) } },
          { sort: { add_time: 1, _id: 1 }, returnDocument: 'after' },
        );
        if (!doc) break;
        assigned.push(toTask(doc));
      }
    } catch (error) {
      if (assigned.length > 0) {
        // These are held now; the executor gets them again through unacknowledged() if this answer is lost.
        this.logger.warn({ err: describeError(error), executor }, 'assignment stopped early');
        return assigned;
      }
      throw translate(error, 'assigning tasks');
    }
    return assigned;
  }

  async listExecutors(): Promise<ExecutorInfo[]> {
    try {
      const docs = await this.executors.find({}, { sort: { _id: 1 } }).toArray();
      return docs.map((doc) => {
        const info: ExecutorInfo = { id: doc._id, hostname: doc.hostname, report_time: isoTime(doc.report_time.getTime()) };
        if (doc.host !== undefined) info.host = doc.host;
        if (doc.slots !== undefined) info.slots = doc.slots;
        if (doc.vacant !== undefined) info.vacant = doc.vacant;
        return info;
      });
    } catch (error) {
      throw translate(error, 'listing executors');
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

  async requeueHeldBy(
    executor: string,
    options: { olderThanMs?: number; reason: RequeueReason; maxRetries: number; fence?: WriteFence },
  ): Promise<RequeueOutcome> {
    await checkFence(options.fence);
    const filter: Filter<TaskDoc> = { executor, done: false };
    if (options.olderThanMs !== undefined) filter.report_time = { $lt: new Date(options.olderThanMs) };
    try {
      const held = await this.tasks.find(filter, { projection: { _id: 1 } }).toArray();
      // The executor may still be alive (it only stopped reporting these): the change feed tells it.
      return await this.requeue(held.map((d) => d._id), filter, { reason: options.reason, maxRetries: options.maxRetries, countRetry: true, announce: true });
    } catch (error) {
      throw translate(error, 'requeueing tasks');
    }
  }

  /**
   * Sends tasks back to Retrying (or, past `maxRetries`, ends them as Unknown error with a message), each
   * atomically: a compare-and-swap on the holder filter plus the retry count read just before.
   */
  private async requeue(
    ids: readonly ObjectId[],
    holder: Filter<TaskDoc>,
    options: { reason: RequeueReason; maxRetries: number; countRetry: boolean; announce: boolean },
  ): Promise<RequeueOutcome> {
    const outcome: RequeueOutcome = { retried: [], abandoned: [] };
    const executor = String(holder.executor);
    for (const _id of ids) {
      for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
        const current = await this.tasks.findOne({ ...holder, _id }, { projection: { retries: 1 } });
        if (!current) break;
        const retries = current.retries ?? 0;
        const next = retries + (options.countRetry ? 1 : 0);
        const common: Partial<TaskDoc> = { executor: null, acknowledged: false, report_time: new Date(this.now()) };
        if (options.announce) common.released = releasedMark(executor);
        const giveUp = next > options.maxRetries;
        const set: Partial<TaskDoc> = giveUp
          ? { ...common, done: true, status: TaskStatus.UNKNOWN_ERROR, result: resultDoc(errorResult(giveUpMessage(retries, options.reason))) }
          : { ...common, status: TaskStatus.RETRYING, retries: next };
        const updated = await this.tasks.findOneAndUpdate({ ...holder, _id, retries: current.retries }, { $set: set }, { projection: { _id: 1 } });
        if (updated) {
          (giveUp ? outcome.abandoned : outcome.retried).push(_id.toHexString());
          break;
        }
      }
    }
    if (outcome.retried.length + outcome.abandoned.length > 0) {
      this.logger.info(
        { executor, reason: options.reason, ...outcome },
        `took ${outcome.retried.length + outcome.abandoned.length} tasks back from executor ${executor} (${options.reason}): ${outcome.retried.length} to Retrying, ${outcome.abandoned.length} given up`,
      );
    }
    return outcome;
  }

  async deleteFinishedBefore(beforeMs: number, batch = 1000, fence?: WriteFence): Promise<number> {
    await checkFence(fence);
    let deleted = 0;
    try {
      for (;;) {
        const ids = await this.tasks
          .find({ done: true, report_time: { $lt: new Date(beforeMs) } }, { projection: { _id: 1 }, limit: batch })
          .toArray();
        if (ids.length === 0) break;
        const result = await this.tasks.deleteMany({ _id: { $in: ids.map((d) => d._id) }, done: true });
        deleted += result.deletedCount;
        if (ids.length < batch) break;
      }
    } catch (error) {
      throw translate(error, 'deleting finished tasks');
    }
    return deleted;
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

  // ---- change feed ----
  // One change stream per store, open from open() to close(), so that a change made right after a
  // subscribe is never missed; broken streams are opened again from their resume token.

  subscribe(listener: (event: StoreEvent) => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  private emit(event: StoreEvent): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(event);
      } catch (error) {
        this.logger.error({ err: describeError(error) }, 'a store event listener failed');
      }
    }
  }

  /** The events a change means; only the fields below are sent by the server (see the $project). */
  static eventsOf(change: ChangeStreamDocument<TaskDoc>): StoreEvent[] {
    if (change.operationType === 'insert') return [{ type: 'pending' }];
    if (change.operationType === 'replace') return [{ type: 'pending' }];
    if (change.operationType !== 'update') return [];
    const fields = (change.updateDescription?.updatedFields ?? {}) as Partial<TaskDoc>;
    const events: StoreEvent[] = [];
    const id = change.documentKey._id;
    if (typeof fields.released === 'string' && id instanceof ObjectId) {
      // "<executor>/<random>": the random part has no "/", so the last one splits them.
      const slash = fields.released.lastIndexOf('/');
      events.push({ type: 'released', executor: slash > 0 ? fields.released.slice(0, slash) : fields.released, id: id.toHexString() });
    }
    if ('executor' in fields && fields.executor === null && fields.done !== true) events.push({ type: 'pending' });
    // Only the update that ends a task sets done (complete, cancel, give-up); nothing sets it back.
    if (fields.done === true && id instanceof ObjectId) events.push({ type: 'done', id: id.toHexString() });
    return events;
  }

  /**
   * Opens the change stream; resolves once the server has it (its first batch), so that every change
   * from then on is seen. Rejects when it cannot be opened within `timeoutMs`.
   */
  startFeed(timeoutMs = 30_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const stream = this.openStream();
      const timer = setTimeout(() => done(new UnavailableError(`the task change stream did not open within ${timeoutMs} ms`)), timeoutMs);
      const done = (error?: unknown) => {
        clearTimeout(timer);
        stream.off('init', onInit);
        stream.off('error', onError);
        if (error) {
          // The caller decides whether to try again: no reopen behind its back.
          this.closeStream();
          reject(error);
        } else resolve();
      };
      const onInit = () => done();
      const onError = (error: Error) => done(error);
      stream.once('init', onInit);
      stream.once('error', onError);
    });
  }

  private openStream(): ChangeStream<TaskDoc> {
    const pipeline: Document[] = [
      { $match: { operationType: { $in: ['insert', 'update', 'replace'] } } },
      // Never ship task documents (up to 16 MB) through the stream: only what the events need.
      {
        $project: {
          operationType: 1,
          documentKey: 1,
          'updateDescription.updatedFields.released': 1,
          'updateDescription.updatedFields.executor': 1,
          'updateDescription.updatedFields.done': 1,
        },
      },
    ];
    const stream = this.tasks.watch(pipeline, this.resumeToken ? { resumeAfter: this.resumeToken } : {});
    this.stream = stream;
    stream.on('change', (change) => {
      this.resumeToken = change._id;
      for (const event of MongoTaskStore.eventsOf(change)) this.emit(event);
    });
    stream.on('error', (error) => {
      // The driver already resumed once on a resumable error; this one needs a new stream.
      const code = error instanceof MongoServerError ? error.code : undefined;
      // 286 ChangeStreamHistoryLost, 280 ChangeStreamFatalError: the token is useless, start from now.
      if (code === 286 || code === 280) this.resumeToken = undefined;
      else this.resumeToken = stream.resumeToken ?? this.resumeToken;
      if (!this.closed) {
        this.logger.warn({ err: describeError(error), resume: Boolean(this.resumeToken) }, 'the task change stream failed; opening it again');
      }
      void stream.close().catch(() => undefined);
      if (this.stream === stream) this.stream = undefined;
      this.scheduleReopen();
    });
    return stream;
  }

  private scheduleReopen(): void {
    if (this.closed || this.reopenTimer) return;
    this.reopenTimer = setTimeout(() => {
      this.reopenTimer = undefined;
      if (this.closed) return;
      this.openStream();
      // Events may have been missed while the stream was down: let waiting reports look again.
      this.emit({ type: 'pending' });
    }, this.options.changeStreamRetryMs ?? 1_000);
  }

  private closeStream(): void {
    if (this.reopenTimer) clearTimeout(this.reopenTimer);
    this.reopenTimer = undefined;
    const stream = this.stream;
    this.stream = undefined;
    if (stream) void stream.close().catch(() => undefined);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.listeners.clear();
    this.closeStream();
    await this.client.close();
  }
}

/** The MongoClient settings of the store: majority writes, retryable writes, Dates and buffers as such. */
export function createMongoClient(options: Pick<MongoStoreOptions, 'uri' | 'writeTimeoutMs' | 'serverSelectionTimeoutMs'>): MongoClient {
  return new MongoClient(options.uri, {
    writeConcern: { w: 'majority', wtimeoutMS: options.writeTimeoutMs ?? 10_000 },
    readPreference: 'primary',
    retryWrites: true,
    retryReads: true,
    serverSelectionTimeoutMS: options.serverSelectionTimeoutMs ?? 10_000,
    ignoreUndefined: true,
    promoteBuffers: true,
    appName: 'kv2-judicator',
  });
}

/**
 * Connects to the replica set and creates the indexes, retrying while it is not ready (not initiated
 * yet, no primary) until `signal` aborts. The mongodb module may still be initiating the set when the
 * judicator's main module opens its store.
 */
export async function openMongoStore(options: MongoStoreOptions, signal?: AbortSignal): Promise<MongoTaskStore> {
  const client = createMongoClient(options);
  const store = new MongoTaskStore(client, options);
  let lastLog = 0;
  for (;;) {
    if (signal?.aborted) {
      await store.close().catch(() => undefined);
      throw new UnavailableError('stopped while waiting for the MongoDB replica set');
    }
    try {
      await client.connect();
      await store.ensureIndexes();
      await store.startFeed();
      options.logger.info({ uri: options.uri }, 'MongoDB task store ready');
      return store;
    } catch (error) {
      if (signal?.aborted) {
        await store.close().catch(() => undefined);
        throw new UnavailableError('stopped while waiting for the MongoDB replica set', { cause: error });
      }
      if (!(error instanceof MongoError) && !(error instanceof UnavailableError)) {
        await store.close().catch(() => undefined);
        throw error;
      }
      if (Date.now() - lastLog > 15_000) {
        lastLog = Date.now();
        options.logger.info({ err: describeError(error), uri: options.uri }, 'waiting for the MongoDB replica set (initiating, or no primary yet)');
      }
      await sleep(options.openRetryMs ?? 1_000, signal);
    }
  }
}

/**
 * MongoDB writes cannot be conditioned on an etcd key: the leader's fence is checked right before its
 * duty writes instead (each of which is also conditioned on the task's own state, so a late one is harmless).
 */
async function checkFence(fence: WriteFence | undefined): Promise<void> {
  if (fence && !(await fence.holds())) throw new UnavailableError('no longer the leader: its election key is gone; leader duties stop here');
}
