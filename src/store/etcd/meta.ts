// A task's metadata as the etcd store keeps it (JSON in task/<id>, copied into its queue or held entry):
// everything but the large fields, and how it turns back into the shapes the rest of kv2 uses.
import { idTime } from '../../common/ids';
import { isoTime } from '../../common/time';
import { TaskStatus, type StepLimits, type Task, type TaskBrief, type TaskInput, type TaskVerdict } from '../../task/types';
import type { TaskState } from '../transition-rules';
import { verdictOf } from '../../task/verdicts';
import { unpackInput, unpackResult } from './packing';

/** The state every transition's rule reads (TaskState, by the same names), and where the rest is. */
export interface TaskMeta extends TaskState {
  compile: { timeout: number; limits?: StepLimits };
  execute: { timeout: number; limits?: StepLimits };
  network?: boolean;
  /** What the size limit counts of the result (codec.resultSize); of the input: TaskState.input_size. */
  result_size: number;
  /** Where the packed input and result are: the upload's token and its number of chunks (chunks.ts). */
  input_token: string;
  input_chunks: number;
  result_token?: string;
  result_chunks?: number;
  /** The result's verdict against the standard output, once done. */
  accepted?: boolean | null;
  /** Issue 17: the result's verdict, once done (what lists and the task events show). */
  verdict?: TaskVerdict | null;
  /** Issue 17: where the finished task is POSTed; its ending writes the callback's outbox entry. */
  callback_url?: string;
}

/** The metadata of a task being added. */
export function newMeta(task: TaskInput, id: string, inputBytes: number, input: { token: string; chunks: number }): TaskMeta {
  const meta: TaskMeta = {
    user: task.user,
    done: false,
    status: TaskStatus.PENDING,
    executor: null,
    // The original's rule: a new task's report time is its add time.
    report_ms: idTime(id),
    retries: 0,
    acked: false,
    compile: stepMeta(task.compile.timeout, task.compile.limits),
    execute: stepMeta(task.execute.timeout, task.execute.limits),
    input_size: inputBytes,
    result_size: 0,
    input_token: input.token,
    input_chunks: input.chunks,
  };
  if (task.network !== undefined) meta.network = task.network;
  if (task.callback_url !== undefined) meta.callback_url = task.callback_url;
  return meta;
}

function stepMeta(timeout: number, limits: StepLimits | undefined): { timeout: number; limits?: StepLimits } {
  return limits ? { timeout, limits } : { timeout };
}

/** Parses stored metadata; undefined for a value that is not metadata (a damaged store). */
export function parseMeta(value: Buffer): TaskMeta | undefined {
  try {
    const meta = JSON.parse(value.toString('utf8')) as TaskMeta;
    return meta && typeof meta === 'object' && typeof meta.status === 'number' && typeof meta.user === 'number' ? meta : undefined;
  } catch {
    return undefined;
  }
}

export function briefOf(id: string, meta: TaskMeta): TaskBrief {
  return {
    id,
    user: meta.user,
    add_time: isoTime(idTime(id)),
    done: meta.done,
    status: meta.status,
    executor: meta.executor,
    report_time: isoTime(meta.report_ms),
    // A task done before verdicts existed: what its status and `accepted` say.
    ...(meta.done ? { verdict: meta.verdict ?? verdictOf({ done: true, status: meta.status, result: { accepted: meta.accepted } }) } : {}),
  };
}

/** The full task from its metadata and its stored input (and result, once done). */
export function taskOf(id: string, meta: TaskMeta, input: Buffer, result: Buffer | undefined): Task {
  const bytes = unpackInput(input);
  const compile: Task['compile'] = { source: bytes.source, command: bytes.compileCommand, timeout: meta.compile.timeout };
  if (meta.compile.limits) compile.limits = meta.compile.limits;
  const execute: Task['execute'] = {
    input: bytes.input,
    data: bytes.data,
    command: bytes.executeCommand,
    timeout: meta.execute.timeout,
    standard: bytes.standard,
  };
  if (meta.execute.limits) execute.limits = meta.execute.limits;
  const task: Task = {
    ...briefOf(id, meta),
    compile,
    execute,
    retries: meta.retries,
    result: meta.done && result ? unpackResult(result) : null,
  };
  if (meta.network !== undefined) task.network = meta.network;
  if (bytes.judge) task.judge = bytes.judge;
  if (meta.callback_url !== undefined) task.callback_url = meta.callback_url;
  return task;
}
