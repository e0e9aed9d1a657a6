// The MongoDB store's documents: tasks and executors as the original kept them (database `judicator`,
// collections `task` and `executor`, the original's field names) with kv2's additions, their indexes, and
// how they turn into the shapes the rest of kv2 uses: Task, TaskBrief, and the TaskState a transition's
// rule reads (with the $set that makes a rule's change so, and the filter that conditions it on the
// fields it was read with).
import { randomBytes } from 'node:crypto';
import { ObjectId, type Filter, type IndexDescription } from 'mongodb';
import { ID_PATTERN, idTime } from '../../common/ids';
import { definedFields } from '../../common/defined-fields';
import { isoTime } from '../../common/time';
import { inputSize } from '../../task/codec';
import {
  TaskStatus,
  type JudgeSpec,
  type Task,
  type TaskBrief,
  type TaskInput,
  type TaskResult,
  type TaskVerdict,
} from '../../task/types';
import { verdictOf } from '../../task/verdicts';
import type { HeartbeatRecord } from '../executor-record';
import type { Change, TaskState } from '../transition-rules';

export const DATABASE = 'judicator';
export const TASK_COLLECTION = 'task';
export const EXECUTOR_COLLECTION = 'executor';

/** A task's result: its outputs as binaries, and the rest of TaskResult as it is. */
export interface ResultDoc extends Pick<TaskResult, (typeof RESULT_FACTS)[number]> {
  compile_output: Uint8Array;
  compile_error: Uint8Array;
  execute_output: Uint8Array;
  execute_error: Uint8Array;
}

/** The fields of a result that the document keeps as they are (each only when present). */
const RESULT_FACTS = ['accepted', 'compile', 'execute', 'verdict', 'tests'] as const;

/**
 * Issue 17: the outbox entry of a finished task's callback, set by the update that ends the task (so a
 * crash between the two cannot lose it), and removed once the callback is delivered or given up.
 */
export interface CallbackDoc {
  url: string;
  /** Deliveries tried and failed so far. */
  attempts: number;
  /** When the next delivery is due. */
  due: Date;
}

/** A task: what was submitted (binaries as BSON binary; judge a subdocument), and its state. */
export interface TaskDoc extends TaskInput<Uint8Array> {
  _id: ObjectId;
  /** Issue 17: the pending callback (the outbox). */
  callback?: CallbackDoc;
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
  /** Issue 17: the running task's live state (task-events.ts), set to null when it leaves its executor. */
  live?: LiveDoc | null;
}

/** A running task's live state as the task document keeps it. */
export interface LiveDoc {
  step: 'compile' | 'execute';
  test: number;
  of: number;
  elapsed_ms: number;
  stdout: Uint8Array;
  stderr: Uint8Array;
  /** Differs whenever the record does (a fresh random value at each write). */
  version: string;
}

/** An executor: its name as _id, and what its last heartbeat said (the key of its process never shown). */
export interface ExecutorDoc extends HeartbeatRecord {
  _id: string;
  hostname: string;
  report_time: Date;
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
  // the callback outbox: pending callbacks by due time (only tasks that have one are in it).
  { key: { 'callback.due': 1 }, name: 'callback_due', partialFilterExpression: { callback: { $exists: true } } },
];

export const BRIEF_PROJECTION = { user: 1, add_time: 1, done: 1, status: 1, executor: 1, report_time: 1, 'result.verdict': 1, 'result.accepted': 1 } as const;

export function toBuffer(value: unknown): Buffer {
  if (Buffer.isBuffer(value)) return value;
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  // bson Binary (when buffers are not promoted)
  if (value && typeof value === 'object' && 'buffer' in value) {
    const inner = (value as { buffer: Uint8Array }).buffer;
    return Buffer.from(inner.buffer, inner.byteOffset, inner.byteLength);
  }
  return Buffer.alloc(0);
}

export function parseId(id: string): ObjectId | undefined {
  return ID_PATTERN.test(id) ? ObjectId.createFromHexString(id) : undefined;
}

export function releasedMark(executor: string): string {
  // Executor names cannot contain "/" (flags.ts NAME_PATTERN), so the first "/" splits it off again.
  return `${executor}/${randomBytes(6).toString('hex')}`;
}

export function resultDoc(result: TaskResult): ResultDoc {
  return {
    compile_output: result.compile_output,
    compile_error: result.compile_error,
    execute_output: result.execute_output,
    execute_error: result.execute_error,
    ...definedFields(result, RESULT_FACTS),
  };
}

function toResult(doc: ResultDoc | null | undefined): TaskResult | null {
  if (!doc) return null;
  return {
    compile_output: toBuffer(doc.compile_output),
    compile_error: toBuffer(doc.compile_error),
    execute_output: toBuffer(doc.execute_output),
    execute_error: toBuffer(doc.execute_error),
    ...definedFields(doc, RESULT_FACTS),
  };
}

function judgeDoc(judge: JudgeSpec): JudgeSpec<Uint8Array> {
  const checker = judge.checker;
  return {
    mode: judge.mode,
    checker: checker.kind === 'program' ? { kind: 'program', source_name: checker.source_name, source: checker.source } : checker,
    tests: judge.tests.map((test) => ({ name: test.name, input: test.input, output: test.output })),
  };
}

function toJudge(doc: JudgeSpec<Uint8Array>): JudgeSpec {
  const checker = doc.checker;
  return {
    mode: doc.mode,
    checker: checker.kind === 'program' ? { kind: 'program', source_name: checker.source_name, source: toBuffer(checker.source) } : checker,
    tests: doc.tests.map((test) => ({ name: test.name, input: toBuffer(test.input), output: toBuffer(test.output) })),
  };
}

export function toBrief(
  doc: Pick<TaskDoc, '_id' | 'user' | 'add_time' | 'done' | 'status' | 'executor' | 'report_time'> & { result?: { verdict?: TaskVerdict | null; accepted?: boolean | null } | null },
): TaskBrief {
  return {
    id: doc._id.toHexString(),
    user: doc.user,
    add_time: isoTime(doc.add_time.getTime()),
    done: doc.done,
    status: doc.status,
    executor: doc.executor ?? null,
    report_time: isoTime(doc.report_time.getTime()),
    // A task done before verdicts existed: what its status and `accepted` say.
    ...(doc.done ? { verdict: doc.result?.verdict ?? verdictOf({ done: true, status: doc.status, result: { accepted: doc.result?.accepted } }) } : {}),
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
  if (doc.judge) task.judge = toJudge(doc.judge);
  if (doc.callback_url !== undefined) task.callback_url = doc.callback_url;
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
  if (task.judge) doc.judge = judgeDoc(task.judge);
  if (task.callback_url !== undefined) doc.callback_url = task.callback_url;
  return doc;
}

/** The fields of a task a transition's rule reads (TaskState), and the filter and $set made from them. */
export const STATE_PROJECTION = { user: 1, done: 1, status: 1, executor: 1, report_time: 1, retries: 1, acknowledged: 1, input_size: 1, callback_url: 1 } as const;

/** The fields a rule reads, and callback_url: the change that ends a task with one queues its callback. */
export type StateDoc = Pick<TaskDoc, '_id' | 'user' | 'done' | 'status' | 'executor' | 'report_time' | 'retries' | 'acknowledged' | 'input_size' | 'callback_url'>;

export function stateOf(doc: StateDoc): TaskState {
  return {
    user: doc.user,
    done: doc.done,
    status: doc.status,
    executor: doc.executor ?? null,
    report_ms: doc.report_time.getTime(),
    retries: doc.retries ?? 0,
    acked: doc.acknowledged ?? false,
    input_size: doc.input_size ?? 0,
  };
}

/**
 * The filter that finds the task only as it was read: every field a rule reads of it (a field missing
 * from an older document stays out of the filter, as the client ignores undefined values).
 */
export function unchangedSince(doc: StateDoc): Filter<TaskDoc> {
  return {
    _id: doc._id,
    done: doc.done,
    status: doc.status,
    executor: doc.executor ?? null,
    report_time: doc.report_time,
    retries: doc.retries,
    acknowledged: doc.acknowledged,
  };
}

/**
 * The $set that makes `change` so on a task read as `doc`: the fields that change, its result, its released
 * mark, and its live record cleared when it leaves its executor.
 */
export function changeSet(doc: StateDoc, change: Change): Partial<TaskDoc> {
  const from = stateOf(doc);
  const next = change.next;
  const set: Partial<TaskDoc> = {};
  if (next.done !== from.done) set.done = next.done;
  if (next.status !== from.status) set.status = next.status;
  if (next.executor !== from.executor) set.executor = next.executor;
  if (next.report_ms !== from.report_ms) set.report_time = new Date(next.report_ms);
  if (next.retries !== from.retries) set.retries = next.retries;
  if (next.acked !== from.acked || doc.acknowledged === undefined) set.acknowledged = next.acked;
  if (change.result) set.result = resultDoc(change.result);
  if (change.announce && from.executor !== null && next.executor !== from.executor) set.released = releasedMark(from.executor);
  // The callback goes into the outbox with the update that ends the task: both happen, or neither.
  if (next.done && !from.done && doc.callback_url) set.callback = { url: doc.callback_url, attempts: 0, due: new Date(next.report_ms) };
  // The live record lives as long as the task's stay on one executor: gone with the change that ends it.
  if (from.executor !== null && (next.done || next.executor !== from.executor)) set.live = null;
  return set;
}
