// One task's life on an executor (SPEC §7, the original's §5.4 with its bugs fixed): lay out its
// directory, `bash compile.sh`, then, if that exited 0, its checker program built (when it has one) and
// the task judged (judging.ts: `bash execute.sh < execute.in` once, or once per test in a fresh work dir),
// each step with its limits and capped output; statuses as they change; a final status, verdict and
// result in every case (a task that cannot even be laid out fails with the reason); a cancel stops it at
// whatever point it is; its directory is removed at the end.
import fs from 'node:fs';
import type { Logger } from '../common/logging';
import { describeError } from '../common/errors';
import { inputSize, packBytes, packText, resultSize } from '../task/codec';
import {
  COMPILE_TIMEOUT_TEXT,
  EXECUTE_TIMEOUT_TEXT,
  TaskStatus,
  type StepLimits,
  type StepReport,
  type StopReason,
  type Task,
  type TaskResult,
} from '../task/types';
import { CheckerProgram } from './checker-program';
import type { Confinement, StepPlan } from './confinement';
import { judgeTask, type Judged } from './judging';
import { askedInExecutorUnits, wallLimitMs, type LimitValues } from './limits';
import { LiveState } from './live-state';
import { runStep, type StepOutcome } from './step';
import type { StepCall, StepResult } from './step-runner';
import { taskOutcome, type JudgedLimits } from './verdict';
import { prepareTaskDir, removeTree, taskPaths, type StepName, type TaskPaths } from './workdir';
import type { ZipLimits } from '../task/zip';

export interface RunnerSettings {
  /** Absolute data/main: where task dirs are made. */
  dataDir: string;
  /** Bytes kept of each step's stdout and of its stderr (the executor's default; a task may ask for less). */
  outputLimit: number;
  zipLimits: ZipLimits;
  /** The cluster's task size limit: a result that would take a task past it is replaced (the original's rule). */
  taskMaxSize: number;
  confinement: Confinement;
}

/** The original's texts for a step stopped for its output, plus the same shape for the new limits. */
const STOP_TEXTS: Record<StepName, Record<Exclude<StopReason, 'cancel'>, string>> = {
  compile: {
    time: COMPILE_TIMEOUT_TEXT,
    output: 'Compile output limitation exceeded.',
    memory: 'Compile memory limitation exceeded.',
    cpu_time: 'Compile CPU time limitation exceeded.',
    processes: 'Compile process limitation exceeded.',
    file_size: 'Compile file size limitation exceeded.',
  },
  execute: {
    time: EXECUTE_TIMEOUT_TEXT,
    output: 'Execution output limitation exceeded.',
    memory: 'Execution memory limitation exceeded.',
    cpu_time: 'Execution CPU time limitation exceeded.',
    processes: 'Execution process limitation exceeded.',
    file_size: 'Execution file size limitation exceeded.',
  },
};

/**
 * An empty stream as stored (zlib of nothing), made once: most tasks leave stderr (and often a compile
 * step) empty, and each deflate costs a fraction of a millisecond. Copied for each result, so that no
 * two results share a buffer.
 */
const PACKED_EMPTY = packBytes(Buffer.alloc(0));

/** A step's output as stored. */
function pack(bytes: Buffer): Buffer {
  return bytes.length === 0 ? Buffer.from(PACKED_EMPTY) : packBytes(bytes);
}

/** What a step is judged against: the limits it ran with where the confinement applies them, else what was asked. */
function judgedLimits(applied: LimitValues | undefined, asked: StepLimits | undefined, timeoutMs: number): JudgedLimits {
  const wanted = askedInExecutorUnits(asked);
  const cpuSeconds = applied ? applied.cpu_time : (wanted?.cpu_time ?? 0);
  const memoryBytes = applied ? applied.memory : (wanted?.memory ?? 0);
  return {
    cpuMs: cpuSeconds > 0 ? Math.round(cpuSeconds * 1000) : null,
    memoryKb: memoryBytes > 0 ? Math.floor(memoryBytes / 1024) : null,
    wallMs: timeoutMs > 0 ? timeoutMs : null,
  };
}

/** How many steps of each kind a task ran (logged when it ends: a task's tests share one compile). */
export interface StepCounts {
  compile: number;
  execute: number;
  /** Its checker program's build and runs. */
  checker: number;
}

export class TaskRun {
  readonly id: string;
  /** What the executor reports: COMPILING from the moment the task is taken, RUNNING, then final. */
  status: TaskStatus = TaskStatus.COMPILING;
  /** The result, once the task ended by itself (not when it was cancelled). */
  result: TaskResult | null = null;
  /** Everything is over: processes gone, directory removed. */
  finished = false;
  /** Told to stop (by the judicator, or by a shutdown). */
  cancelled = false;
  /** Issue 17: the test running now (1-based) and how many the task has, once its tests run. */
  progress: { test: number; of: number } | null = null;
  private readonly counts: StepCounts = { compile: 0, execute: 0, checker: 0 };
  /** The task's dir once it is laid out. */
  private paths: TaskPaths | undefined;
  /** Resolves when `finished`. */
  readonly done: Promise<void>;
  /** Issue 17: its step, test and output so far, which the report loop sends once it has run a while. */
  readonly live = new LiveState();
  private readonly stopper = new AbortController();

  constructor(
    readonly task: Task,
    readonly slot: number,
    private readonly settings: RunnerSettings,
    private readonly logger: Logger,
    /** Called whenever status, result or finished changes. */
    private readonly onChange: (run: TaskRun) => void,
  ) {
    this.id = task.id;
    this.done = this.run().catch((error) => {
      // Nothing above should throw; if it does, the task still ends in a final status.
      this.logger.error({ task: this.id, err: describeError(error) }, 'task runner failed unexpectedly');
      if (!this.cancelled && !this.result) this.end(TaskStatus.COMPILE_FAILED, this.failure(`Unknown error. ${describeError(error)}`, { verdict: false }));
      this.finished = true;
      this.onChange(this);
    });
  }

  /** How many steps of each kind it ran so far. */
  get stepCounts(): StepCounts {
    return { ...this.counts };
  }

  /** Stops the task wherever it is; its processes are killed, no result is kept. */
  cancel(): void {
    // A task whose result is ready is as good as reported: it is not thrown away any more.
    if (this.cancelled || this.finished || this.result !== null) return;
    this.cancelled = true;
    this.stopper.abort();
  }

  private async run(): Promise<void> {
    const started = Date.now();
    let paths: TaskPaths | undefined;
    try {
      paths = await this.prepare();
      this.paths = paths;
      if (paths && !this.cancelled) await this.steps(paths);
    } finally {
      const dir = paths?.taskDir ?? taskPaths(this.settings.dataDir, this.id).taskDir;
      await this.settings.confinement.release(this.slot, dir).catch((error) =>
        this.logger.warn({ task: this.id, err: describeError(error) }, 'could not release the task confinement'),
      );
      try {
        removeTree(dir);
      } catch (error) {
        this.logger.warn({ task: this.id, dir, err: describeError(error) }, 'could not remove the task directory; the next executor start wipes it');
      }
      this.finished = true;
      this.logger.info(
        { task: this.id, status: this.status, verdict: this.result?.verdict ?? null, cancelled: this.cancelled, ms: Date.now() - started, steps: this.counts },
        this.cancelled ? `task ${this.id} stopped (cancelled)` : `task ${this.id} finished`,
      );
      this.onChange(this);
    }
  }

  /** The task dir, or undefined when the task failed already (bad zip...) or was cancelled. */
  private async prepare(): Promise<TaskPaths | undefined> {
    try {
      const paths = prepareTaskDir(this.settings.dataDir, this.id, this.task, this.settings.zipLimits);
      await this.settings.confinement.prepare(this.slot, paths);
      return paths;
    } catch (error) {
      this.logger.info({ task: this.id, err: describeError(error) }, `task ${this.id} cannot be prepared`);
      // The original left such a task in a non-final status; here it fails, saying why.
      if (!this.cancelled) this.end(TaskStatus.COMPILE_FAILED, this.failure(`Preparation failed: ${describeError(error)}`, { verdict: true }));
      return undefined;
    }
  }

  private async steps(paths: TaskPaths): Promise<void> {
    this.live.begin('compile', 0, 1);
    const compileTimeoutMs = wallLimitMs(this.task.compile.timeout, this.task.compile.limits);
    const compile = await this.runCall({ step: 'compile', script: 'compile.sh', stdinFile: null, timeoutMs: compileTimeoutMs, limits: this.task.compile.limits });
    if (this.cancelled) return;
    const result: TaskResult = {
      compile_output: pack(compile.output),
      compile_error: pack(compile.error),
      execute_output: pack(Buffer.alloc(0)),
      execute_error: pack(Buffer.alloc(0)),
      accepted: null,
      compile: compile.report,
      execute: null,
      verdict: 'compile_error',
      tests: [],
    };
    const compiled = this.fitted(result, 'compile');
    if (!compile.ok || compiled !== result) {
      this.end(TaskStatus.COMPILE_FAILED, compiled);
      return;
    }
    // The original started the execute step even when a cancel had come in meanwhile ([BUG]).
    if (this.cancelled) return;
    const checker = this.task.judge?.checker;
    let program: CheckerProgram | undefined;
    if (checker?.kind === 'program') {
      const built = await CheckerProgram.build({
        checker,
        taskDir: paths.taskDir,
        owner: this.settings.confinement.identity?.(this.slot),
        run: (call) => this.runCall(call),
        compileTimeoutMs,
        compileLimits: this.task.compile.limits,
      });
      if (this.cancelled) return;
      if ('failure' in built) {
        // The task's own checker is broken: the judges' "judgement failed", found before any test ran.
        this.end(TaskStatus.COMPILE_FAILED, { ...result, compile_error: packText(built.failure), verdict: 'checker_error' });
        return;
      }
      program = built.checker;
    }
    this.status = TaskStatus.RUNNING;
    this.onChange(this);

    const judged = await judgeTask({
      task: this.task,
      paths,
      run: (call) => this.runCall(call),
      owner: this.settings.confinement.identity?.(this.slot),
      checker: program,
      cancelled: () => this.cancelled,
      onTest: (test, of) => {
        this.progress = { test, of };
        this.live.begin('execute', test, of);
      },
    });
    if (!judged || this.cancelled) return;
    this.finish(result, judged);
  }

  /** The result of a judged task: its tests, its verdict, and the output of the test it shows. */
  private finish(result: TaskResult, judged: Judged): void {
    const shown = judged.shown;
    result.execute_output = pack(shown.output);
    result.execute_error = pack(shown.error);
    result.execute = shown.report;
    result.tests = judged.tests;
    const outcome = taskOutcome(judged.tests);
    result.verdict = outcome.verdict;
    result.accepted = outcome.accepted;
    let status = outcome.status;
    const fitted = this.fitted(result, 'execute');
    if (fitted !== result) {
      // The original's rule: output too large to keep fails the task as an output limit.
      const only = this.task.judge?.tests.length ? undefined : fitted.tests![0];
      if (only) fitted.tests = [{ ...only, verdict: 'output_limit', message: 'the output is too large to keep (--task-max-size)' }];
      fitted.verdict = only ? 'output_limit' : outcome.verdict;
      fitted.accepted = only ? null : outcome.accepted;
      status = TaskStatus.RUN_FAILED;
    }
    if (judged.unknownError !== null) {
      // kv2 could not run a test: no verdict can be given (the step's error says why).
      fitted.verdict = null;
      fitted.accepted = null;
      status = TaskStatus.RUN_FAILED;
    }
    this.end(status, fitted);
  }

  /** Runs one confined step of the task (compile, a test, a checker's build or run). */
  private async runCall(call: StepCall): Promise<StepResult> {
    const { paths } = this;
    this.counts[call.checker ? 'checker' : call.step]++;
    const unstarted = (error: string): StepResult => ({
      ok: false,
      output: Buffer.alloc(0),
      error: Buffer.from(`Unknown error. ${error}`),
      report: { exit_code: null, signal: null, wall_ms: 0, cpu_ms: null, memory_kb: null, stopped: null },
      stopped: null,
      startError: error,
      limits: judgedLimits(undefined, call.limits, call.timeoutMs),
    });
    if (!paths) return unstarted('the task directory is gone');
    // `bash` on an empty script prints nothing and exits 0: the same result without starting anything
    // (tasks without a compile command are common, and a process costs milliseconds).
    // (lstat: the compile step may have replaced execute.sh with anything; only a plain empty file counts.)
    if (call.script && !call.argv) {
      const script = fs.lstatSync(`${call.workDir ?? paths.workDir}/${call.script}`, { throwIfNoEntry: false });
      if (script?.isFile() && script.size === 0) {
        const report: StepReport = { exit_code: 0, signal: null, wall_ms: 0, cpu_ms: 0, memory_kb: null, stopped: null };
        return { ok: true, output: Buffer.alloc(0), error: Buffer.alloc(0), report, stopped: null, startError: null, limits: judgedLimits(undefined, call.limits, call.timeoutMs) };
      }
    }
    let plan: StepPlan;
    try {
      plan = await this.settings.confinement.plan({
        step: call.step,
        slot: this.slot,
        paths,
        script: call.script ?? '',
        ...(call.argv ? { argv: call.argv } : {}),
        ...(call.workDir ? { workDir: call.workDir } : {}),
        limits: call.limits,
        network: this.task.network === true,
        outputLimit: this.settings.outputLimit,
      });
    } catch (error) {
      this.logger.error({ task: this.id, step: call.step, err: describeError(error) }, `cannot set up the ${call.step} step`);
      return unstarted(`cannot set up the step: ${describeError(error)}`);
    }
    const limits = judgedLimits(plan.limits, call.limits, call.timeoutMs);
    let outcome: StepOutcome;
    try {
      outcome = await runStep({
        launcher: plan.launcher,
        command: plan.command,
        stdinFile: call.stdinFile,
        // Whoever owns the work dir (the task's user) must own its input: not a hard link to another file.
        stdinOwner: fs.lstatSync(call.workDir ?? paths.workDir).uid,
        timeoutMs: call.timeoutMs,
        outputLimit: plan.outputLimit,
        signal: this.stopper.signal,
        groupRecordFile: paths.groupRecord(call.step),
        containment: plan.containment,
        // The solution's output as it comes (a checker's is not the task's).
        onOutput: call.checker ? undefined : (stream, chunk) => this.live.output(stream, chunk),
      });
    } finally {
      await plan.dispose?.();
    }
    const report: StepReport = {
      exit_code: outcome.exitCode,
      signal: outcome.signal,
      wall_ms: outcome.wallMs,
      cpu_ms: outcome.cpuMs,
      memory_kb: outcome.memoryKb,
      stopped: outcome.stopped,
    };
    this.logger.debug({ task: this.id, step: call.step, ...report }, `task ${this.id} ${call.step} step ended`);
    if (outcome.startError !== null) {
      return { ok: false, output: Buffer.alloc(0), error: Buffer.from(`Unknown error. ${outcome.startError}`), report, stopped: null, startError: outcome.startError, limits };
    }
    if (outcome.stopped !== null && outcome.stopped !== 'cancel') {
      return { ok: false, output: outcome.stdout, error: Buffer.from(STOP_TEXTS[call.step][outcome.stopped]), report, stopped: outcome.stopped, startError: null, limits };
    }
    return { ok: outcome.exitCode === 0, output: outcome.stdout, error: outcome.stderr, report, stopped: outcome.stopped, startError: null, limits };
  }

  /**
   * The original's rule: a result that would take the task past the cluster's size limit loses that
   * step's output, and the step fails with the original's text. Returns `result` itself when it fits.
   */
  private fitted(result: TaskResult, step: StepName): TaskResult {
    const size = inputSize(this.task) + resultSize(result);
    if (size < this.settings.taskMaxSize) return result;
    const text = packText(STOP_TEXTS[step].output);
    const empty = pack(Buffer.alloc(0));
    const report = step === 'compile' ? result.compile : result.execute;
    const stopped = report ? { ...report, stopped: 'output' as const } : null;
    return step === 'compile'
      ? { ...result, compile_output: empty, compile_error: text, compile: stopped }
      : { ...result, execute_output: empty, execute_error: text, execute: stopped, accepted: null };
  }

  /** A task that failed before any step ran: its zips or texts were unusable (or kv2 failed: no verdict). */
  private failure(compileError: string, options: { verdict: boolean }): TaskResult {
    const empty = pack(Buffer.alloc(0));
    return {
      compile_output: empty,
      compile_error: packText(compileError),
      execute_output: empty,
      execute_error: empty,
      accepted: null,
      compile: null,
      execute: null,
      verdict: options.verdict ? 'compile_error' : null,
      tests: [],
    };
  }

  private end(status: TaskStatus, result: TaskResult): void {
    this.status = status;
    this.result = result;
  }
}
