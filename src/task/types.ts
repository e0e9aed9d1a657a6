// The task domain: statuses, result codes and the shapes of a task as every part of kv2 sees it. The
// numbers and field names are the original's (clients depend on them); additions are marked as such.

/** Result codes of every RPC and API answer (the original's ReturnCode). */
export const ReturnCode = {
  OK: 0,
  ERROR: 1,
  NOT_EXIST: 2,
  TOO_LARGE: 3,
  INVALID_INPUT: 4,
  /** Addition: the API token is missing or wrong (HTTP 401 on the gateway). */
  UNAUTHORIZED: 5,
} as const;
export type ReturnCode = (typeof ReturnCode)[keyof typeof ReturnCode];

/** Task status codes (the original's). `done` tasks are in a final status. */
export const TaskStatus = {
  PENDING: 0,
  COMPILING: 1,
  COMPILE_FAILED: 2,
  RUNNING: 3,
  RUN_FAILED: 4,
  SUCCESS: 5,
  RETRYING: 6,
  CANCELLED: 7,
  UNKNOWN_ERROR: 8,
} as const;
export type TaskStatus = (typeof TaskStatus)[keyof typeof TaskStatus];

export const STATUS_NAMES: Record<TaskStatus, string> = {
  0: 'Pending',
  1: 'Compiling',
  2: 'Compile failed',
  3: 'Running',
  4: 'Run failed',
  5: 'Success',
  6: 'Retrying',
  7: 'Cancelled',
  8: 'Unknown error',
};

/** Statuses of a task that is not done: queued (Pending, Retrying) or held by an executor (any of them). */
export const UNFINISHED_STATUSES: readonly TaskStatus[] = [TaskStatus.PENDING, TaskStatus.COMPILING, TaskStatus.RUNNING, TaskStatus.RETRYING];
/** Statuses an executor may report while a task runs (the store records only these for a running task). */
export const RUNNING_STATUSES: readonly TaskStatus[] = [TaskStatus.COMPILING, TaskStatus.RUNNING];
/**
 * Statuses an executor may report for a task it holds: a running one, or the one the task was assigned
 * with (Pending, Retrying) until the executor starts it.
 */
export const EXECUTING_STATUSES: readonly TaskStatus[] = UNFINISHED_STATUSES;
/** Statuses an executor may finish a task with. */
export const EXECUTOR_FINAL_STATUSES: readonly TaskStatus[] = [
  TaskStatus.COMPILE_FAILED,
  TaskStatus.RUN_FAILED,
  TaskStatus.SUCCESS,
  TaskStatus.UNKNOWN_ERROR,
];

/** The original's timeout error texts (clients match on them). */
export const COMPILE_TIMEOUT_TEXT = 'Compile time out.';
export const EXECUTE_TIMEOUT_TEXT = 'Execution time out.';

/** Optional per-step limits (addition, the isolation issue). Absent fields take the executor's defaults. */
export interface StepLimits {
  /** CPU seconds. */
  cpu_time?: number;
  /** Bytes of memory (address space / cgroup memory). */
  memory?: number;
  /** Processes (and threads) the step may have at once. */
  processes?: number;
  /** Largest file the step may write, in bytes. */
  file_size?: number;
  /** Bytes of stdout (and of stderr) kept; beyond it the step is stopped. */
  output?: number;
}

/**
 * A task as submitted: binary fields are raw bytes. `source` and `data` are zip archives (may be empty);
 * `command`, `input` and `standard` are zlib-compressed UTF-8 text, as in the original.
 */
export interface TaskInput {
  user: number;
  compile: { source: Buffer; command: Buffer; timeout: number; limits?: StepLimits };
  execute: { input: Buffer; data: Buffer; command: Buffer; timeout: number; standard: Buffer; limits?: StepLimits };
  /** Addition: the task asks for network access inside the sandbox (the executor may refuse). */
  network?: boolean;
}

/** Why a step was stopped before it finished by itself (addition). */
export const STOP_REASONS = ['time', 'memory', 'output', 'cancel', 'processes', 'file_size', 'cpu_time'] as const;
export type StopReason = (typeof STOP_REASONS)[number];

/** Judge-grade facts about one step (addition). */
export interface StepReport {
  exit_code: number | null;
  signal: string | null;
  wall_ms: number;
  cpu_ms: number | null;
  memory_kb: number | null;
  stopped: StopReason | null;
}

/** A finished task's result: the four texts zlib-compressed, as in the original, plus additions. */
export interface TaskResult {
  compile_output: Buffer;
  compile_error: Buffer;
  execute_output: Buffer;
  execute_error: Buffer;
  /** Execute output against `execute.standard`: null when no standard was given or execute did not run. */
  accepted?: boolean | null;
  compile?: StepReport | null;
  execute?: StepReport | null;
}

/** The summary of a task (the original's TaskBrief): what search returns. */
export interface TaskBrief {
  id: string;
  user: number;
  add_time: string;
  done: boolean;
  status: TaskStatus;
  executor: string | null;
  report_time: string;
}

/** A task as stored: its input, its state and (once done) its result. */
export interface Task extends TaskBrief, TaskInput {
  /** Addition: how many times the task went back to Retrying. */
  retries: number;
  result: TaskResult | null;
}

/** A task an executor finished, as reported. */
export interface CompletedTask {
  id: string;
  status: TaskStatus;
  result: TaskResult;
}

/** An executor as the judicators know it. */
export interface ExecutorInfo {
  /** The executor's name (`--main-name`); the original's `hostname` field held it too. */
  id: string;
  hostname: string;
  report_time: string;
  /** Additions. */
  host?: string;
  slots?: number;
  vacant?: number;
  started?: string;
  /** Whether it reported within the judicators' executor TTL (`--executor-ttl`). */
  alive?: boolean;
  /** Further plain fields the executor reports of itself (its sandbox, say). */
  [field: string]: string | number | boolean | null | undefined;
}

export function isDoneStatus(status: TaskStatus): boolean {
  return !UNFINISHED_STATUSES.includes(status);
}

/** The brief of a task: what search returns, and what the RPC carries of it. */
export function briefOf(task: TaskBrief): TaskBrief {
  return {
    id: task.id,
    user: task.user,
    add_time: task.add_time,
    done: task.done,
    status: task.status,
    executor: task.executor,
    report_time: task.report_time,
  };
}
