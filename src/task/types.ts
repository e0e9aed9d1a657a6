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

/** Each result code's name (metrics labels, logs) and its words for people (the UI's error titles). */
const RETURN_CODE_WORDS: Record<ReturnCode, readonly [name: string, text: string]> = {
  [ReturnCode.OK]: ['ok', 'OK'],
  [ReturnCode.ERROR]: ['error', 'Error'],
  [ReturnCode.NOT_EXIST]: ['not_exist', 'Does not exist'],
  [ReturnCode.TOO_LARGE]: ['too_large', 'Too large'],
  [ReturnCode.INVALID_INPUT]: ['invalid_input', 'Invalid input'],
  [ReturnCode.UNAUTHORIZED]: ['unauthorized', 'Unauthorized'],
};

/** A result code's name, as metrics and logs label it; `unknown` for a code kv2 does not know. */
export function returnCodeName(code: number): string {
  return RETURN_CODE_WORDS[code as ReturnCode]?.[0] ?? 'unknown';
}

/** A result code in words, as the UI titles an error with it. */
export function returnCodeText(code: number): string {
  return RETURN_CODE_WORDS[code as ReturnCode]?.[1] ?? `Result ${code}`;
}

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

/**
 * Optional per-step limits (addition, the isolation issue; the judges' units from issue 17). Absent fields
 * take the executor's defaults. Where a judge's field and an older one say the same (time_ms and
 * cpu_time, memory_kb and memory), the judge's wins.
 */
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
  /** Issue 17: CPU time in milliseconds, measured (not rounded to seconds); over it is a time limit. */
  time_ms?: number;
  /** Issue 17: wall time in milliseconds (the step's timeout in seconds stays; the smaller one applies). */
  wall_ms?: number;
  /** Issue 17: peak resident memory in KiB. */
  memory_kb?: number;
  /** Issue 17: stack size in KiB (RLIMIT_STACK). */
  stack_kb?: number;
}

/**
 * How a test's output is compared with its expected output (issue 17). `Bytes`, here and in the types
 * below: how binary fields are held (Buffers in kv2, base64 text on the wire, BSON binaries in MongoDB).
 */
export type Checker<Bytes = Buffer> =
  /** Today's comparison: trailing whitespace on each line and trailing empty lines ignored. */
  | { kind: 'exact' }
  /** Whitespace-insensitive: the same tokens in the same order. */
  | { kind: 'tokens' }
  /** Tokens, numbers compared with an absolute or relative tolerance: |a-b| <= error or |a-b| <= error*|b|. */
  | { kind: 'float'; error: number }
  /**
   * A program, testlib's convention: `checker <input> <output> <answer>`, exit 0 OK, 1 wrong answer,
   * 2 presentation error, 3 fail; its message is the first line of its stderr. `source` is its text,
   * zlib-compressed like the other text fields; `source_name`'s extension says how it is built.
   */
  | { kind: 'program'; source_name: string; source: Bytes };

export const CHECKER_KINDS = ['exact', 'tokens', 'float', 'program'] as const;

/** One test of a task: its input and expected output, zlib-compressed text like execute_input/standard. */
export interface JudgeTest<Bytes = Buffer> {
  name: string;
  input: Bytes;
  output: Bytes;
}

export const TEST_MODES = ['first_fail', 'all'] as const;
export type TestMode = (typeof TEST_MODES)[number];

/**
 * How a task is judged (issue 17): its tests (compiled once, each run in a fresh copy of the work dir as
 * compile left it), whether to stop at the first failure, and the checker. An empty `tests` list judges
 * the one test the original's fields make (execute_input against execute_standard).
 */
export interface JudgeSpec<Bytes = Buffer> {
  tests: JudgeTest<Bytes>[];
  mode: TestMode;
  checker: Checker<Bytes>;
}

/**
 * A task as submitted: binary fields are raw bytes. `source` and `data` are zip archives (may be empty);
 * `command`, `input` and `standard` are zlib-compressed UTF-8 text, as in the original.
 */
export interface TaskInput<Bytes = Buffer> {
  user: number;
  compile: { source: Bytes; command: Bytes; timeout: number; limits?: StepLimits };
  execute: { input: Bytes; data: Bytes; command: Bytes; timeout: number; standard: Bytes; limits?: StepLimits };
  /** Addition: the task asks for network access inside the sandbox (the executor may refuse). */
  network?: boolean;
  /** Issue 17: tests, test mode and checker; absent: the original's one execute checked against its standard. */
  judge?: JudgeSpec<Bytes>;
  /** Issue 17: where the finished task is POSTed (only to hosts the operator allows). */
  callback_url?: string;
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

/** How a run that got a verdict went, in the judges' words (issue 17): a test's and a task's alike. */
const RUN_VERDICTS = [
  'accepted',
  'wrong_answer',
  'presentation_error',
  'time_limit',
  'memory_limit',
  'output_limit',
  'runtime_error',
  /** The checker program failed (exit 3, or crashed): the judges' "judgement failed". */
  'checker_error',
  /** Ran fine, and nothing was compared (a task of the original's fields without execute_standard). */
  'ok',
] as const;

/** A test's verdict; `skipped`: not run, an earlier test failed (test_mode first_fail). */
export const TEST_VERDICTS = [...RUN_VERDICTS, 'skipped'] as const;
export type TestVerdict = (typeof TEST_VERDICTS)[number];

/** A task's verdict: the first test's that is not accepted, else accepted; or compile_error. */
export const TASK_VERDICTS = [...RUN_VERDICTS, 'compile_error'] as const;
export type TaskVerdict = (typeof TASK_VERDICTS)[number];

/** One test as judged: its verdict and what it took, as judges report it. */
export interface TestReport {
  name: string;
  verdict: TestVerdict;
  /** CPU time in ms (the step's cgroup, else wait4's rusage); null when it did not run. */
  time_ms: number | null;
  wall_ms: number | null;
  /** Peak resident memory in KiB; null when unknown or not run. */
  memory_kb: number | null;
  exit_code: number | null;
  signal: string | null;
  /** The checker's message, or why the test failed ("exit code 42", "killed by SIGSEGV", ...); '' when none. */
  message: string;
}

/** A finished task's result: the four texts zlib-compressed, as in the original, plus additions. */
export interface TaskResult {
  compile_output: Buffer;
  compile_error: Buffer;
  /** With tests: the output of the first test that failed, else of the last test run. */
  execute_output: Buffer;
  execute_error: Buffer;
  /**
   * Execute output against `execute.standard` (or the tests): true iff the verdict is accepted; null when
   * nothing was compared (no standard, or no test got as far as its checker).
   */
  accepted?: boolean | null;
  compile?: StepReport | null;
  /** The execute step's facts; with tests, those of the test execute_output comes from. */
  execute?: StepReport | null;
  /** Issue 17: the task's verdict; null when there is none (an Unknown error). */
  verdict?: TaskVerdict | null;
  /** Issue 17: every test, in order (one, named "1", for a task of the original's fields). */
  tests?: TestReport[];
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
  /** Issue 17: the task's verdict once it is done (its result's), so that lists show verdicts first. */
  verdict?: TaskVerdict | null;
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

/** A language an executor can compile and run tasks in: its toolchain, found at the executor's start. */
export interface ExecutorLanguage {
  /** C, C++, Python 3, Java, ... */
  name: string;
  /** The toolchain's version, as it says it (gcc -dumpfullversion, python3 --version, javac -version...). */
  version: string;
}

/**
 * How an executor confines its tasks (addition), as it says at start: shown by /api/executors, the web
 * UI's executors page and `kv2 status`, so an operator sees an unconfined executor without reading its log.
 */
export interface ExecutorSandbox {
  /** bwrap, or none (only when the operator started it with --main-task-sandbox none). */
  kind: 'bwrap' | 'none';
  /** How the sandbox is made here (as the task user, as root...), or what running without one means. */
  how: string;
  /** What a task's network is: its own loopback only, the host's when it asks, or the host's (no sandbox). */
  network: string;
  /** Each limit (memory, processes, cpu_time...) and what enforces it ("NOT ENFORCED: ..." when nothing does). */
  limits: Record<string, string>;
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
  /** Addition: the languages it registered (its toolchains). */
  languages?: ExecutorLanguage[];
  /** Addition: how it confines tasks (it registers this next to its languages). */
  sandbox?: ExecutorSandbox;
}

/**
 * An executor's sandbox in a few words (kv2 status, the UI's executors page): bwrap or NONE, and the
 * limits nothing (fully) enforces there; "unknown" for an executor older than this field.
 */
export function sandboxSummary(sandbox: ExecutorSandbox | undefined): string {
  if (!sandbox) return 'unknown';
  const weak = Object.entries(sandbox.limits)
    .filter(([, how]) => how.startsWith('NOT ENFORCED') || how.startsWith('PARTLY'))
    .map(([limit, how]) => `${limit} ${how.startsWith('PARTLY') ? 'partly' : 'not'} enforced`);
  return [sandbox.kind === 'none' ? 'NONE' : sandbox.kind, ...weak].join('; ');
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
    ...(task.verdict !== undefined ? { verdict: task.verdict } : {}),
  };
}
