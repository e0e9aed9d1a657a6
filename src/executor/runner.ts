// One task's life on an executor (SPEC §7, the original's §5.4 with its bugs fixed): lay out its
// directory, `bash compile.sh`, then, if that exited 0, `bash execute.sh < execute.in`, each step with its
// timeout and capped output; statuses as they change; a final status and result in every case (a task
// that cannot even be laid out fails with the reason); a cancel stops it at whatever point it is; its
// directory is removed at the end.
import fs from 'node:fs';
import type { Logger } from '../common/logging';
import { describeError } from '../common/errors';
import { inputSize, packBytes, packText, resultSize, unpackBytes } from '../task/codec';
import {
  COMPILE_TIMEOUT_TEXT,
  EXECUTE_TIMEOUT_TEXT,
  TaskStatus,
  type StepReport,
  type StopReason,
  type Task,
  type TaskResult,
} from '../task/types';
import type { Confinement, StepPlan } from './confinement';
import { judge } from './judge';
import { runStep, type StepOutcome } from './step';
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

interface StepResult {
  ok: boolean;
  output: Buffer;
  error: Buffer;
  report: StepReport;
  stopped: StopReason | null;
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
  /** Resolves when `finished`. */
  readonly done: Promise<void>;
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
      if (!this.cancelled && !this.result) this.end(TaskStatus.COMPILE_FAILED, this.failure(`Unknown error. ${describeError(error)}`));
      this.finished = true;
      this.onChange(this);
    });
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
        { task: this.id, status: this.status, cancelled: this.cancelled, ms: Date.now() - started },
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
      if (!this.cancelled) this.end(TaskStatus.COMPILE_FAILED, this.failure(`Preparation failed: ${describeError(error)}`));
      return undefined;
    }
  }

  private async steps(paths: TaskPaths): Promise<void> {
    const compile = await this.step('compile', paths);
    if (this.cancelled) return;
    const result: TaskResult = {
      compile_output: pack(compile.output),
      compile_error: pack(compile.error),
      execute_output: pack(Buffer.alloc(0)),
      execute_error: pack(Buffer.alloc(0)),
      accepted: null,
      compile: compile.report,
      execute: null,
    };
    const compiled = this.fitted(result, 'compile');
    if (!compile.ok || compiled !== result) {
      this.end(TaskStatus.COMPILE_FAILED, compiled);
      return;
    }
    // The original started the execute step even when a cancel had come in meanwhile ([BUG]).
    if (this.cancelled) return;
    this.status = TaskStatus.RUNNING;
    this.onChange(this);

    const execute = await this.step('execute', paths);
    if (this.cancelled) return;
    result.execute_output = pack(execute.output);
    result.execute_error = pack(execute.error);
    result.execute = execute.report;
    const fitted = this.fitted(result, 'execute');
    const ok = execute.ok && fitted === result;
    // The standard is only unpacked when there is a successful output to judge.
    fitted.accepted = ok ? judge(ok, execute.output, this.standard()) : null;
    this.end(ok ? TaskStatus.SUCCESS : TaskStatus.RUN_FAILED, fitted);
  }

  private standard(): Buffer {
    try {
      return unpackBytes(this.task.execute.standard);
    } catch {
      return Buffer.alloc(0);
    }
  }

  private async step(step: StepName, paths: TaskPaths): Promise<StepResult> {
    const section = step === 'compile' ? this.task.compile : this.task.execute;
    // `bash` on an empty script prints nothing and exits 0: the same result without starting anything
    // (tasks without a compile command are common, and a process costs milliseconds).
    // (lstat: the compile step may have replaced execute.sh with anything; only a plain empty file counts.)
    const script = fs.lstatSync(step === 'compile' ? paths.compileScript : paths.executeScript, { throwIfNoEntry: false });
    if (script?.isFile() && script.size === 0) {
      const report: StepReport = { exit_code: 0, signal: null, wall_ms: 0, cpu_ms: 0, memory_kb: null, stopped: null };
      return { ok: true, output: Buffer.alloc(0), error: Buffer.alloc(0), report, stopped: null };
    }
    let plan: StepPlan;
    try {
      plan = await this.settings.confinement.plan({
        step,
        slot: this.slot,
        paths,
        script: step === 'compile' ? 'compile.sh' : 'execute.sh',
        limits: section.limits,
        network: this.task.network === true,
        outputLimit: this.settings.outputLimit,
      });
    } catch (error) {
      this.logger.error({ task: this.id, step, err: describeError(error) }, `cannot set up the ${step} step`);
      const report: StepReport = { exit_code: null, signal: null, wall_ms: 0, cpu_ms: null, memory_kb: null, stopped: null };
      return { ok: false, output: Buffer.alloc(0), error: Buffer.from(`Unknown error. cannot set up the step: ${describeError(error)}`), report, stopped: null };
    }
    let outcome: StepOutcome;
    try {
      outcome = await runStep({
        launcher: plan.launcher,
        command: plan.command,
        stdinFile: step === 'execute' ? paths.executeInput : null,
        // Whoever owns the work dir (the task's user) must own its input: not a hard link to another file.
        stdinOwner: fs.lstatSync(paths.workDir).uid,
        timeoutMs: section.timeout * 1000,
        outputLimit: plan.outputLimit,
        signal: this.stopper.signal,
        groupRecordFile: paths.groupRecord(step),
        containment: plan.containment,
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
    this.logger.debug({ task: this.id, step, ...report }, `task ${this.id} ${step} step ended`);
    if (outcome.startError !== null) {
      return { ok: false, output: Buffer.alloc(0), error: Buffer.from(`Unknown error. ${outcome.startError}`), report, stopped: null };
    }
    if (outcome.stopped !== null && outcome.stopped !== 'cancel') {
      return { ok: false, output: outcome.stdout, error: Buffer.from(STOP_TEXTS[step][outcome.stopped]), report, stopped: outcome.stopped };
    }
    return { ok: outcome.exitCode === 0, output: outcome.stdout, error: outcome.stderr, report, stopped: outcome.stopped };
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

  private failure(compileError: string): TaskResult {
    const empty = pack(Buffer.alloc(0));
    return {
      compile_output: empty,
      compile_error: packText(compileError),
      execute_output: empty,
      execute_error: empty,
      accepted: null,
      compile: null,
      execute: null,
    };
  }

  private end(status: TaskStatus, result: TaskResult): void {
    this.status = status;
    this.result = result;
  }
}
