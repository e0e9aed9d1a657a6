// Running one step of a task (compile or execute): the command in its own process group, stdin from a
// file, stdout and stderr captured while they stream and capped, stopped whole on timeout, output
// overflow or cancel, and not finished until nothing it started is left running.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import type { StopReason } from '../task/types';
import { killGroupAndWait, recordGroup } from './process-group';

/** How long the output pipes may stay open after the step's processes are gone (held by an escapee). */
const PIPE_DRAIN_MS = 2_000;

/** How the step's command ended, for containment to interpret (SIGXCPU means the CPU limit...). */
export interface StepEnd {
  exitCode: number | null;
  signal: string | null;
}

/** Extra containment of a step beyond its process group (a cgroup), and the facts it measures. */
export interface StepContainment {
  /** Watches the running step; calls `stop` when a limit is exceeded. Returns the function that ends the watch. */
  watch?(stop: (reason: StopReason) => void): () => void;
  /** Kills every process of the step, including those that left its process group; waits for them. */
  killAll(): Promise<void>;
  /** Kills synchronously without waiting (the executor is exiting). */
  killNow?(): void;
  /** Once everything is dead: CPU time, peak memory, and a limit that stopped the step, where known. */
  collect(end: StepEnd): Promise<{ cpuMs: number | null; memoryKb: number | null; stopped: StopReason | null }>;
}

export interface StepSpec {
  /** Program and arguments (`bash compile.sh`, possibly behind limit and sandbox wrappers). */
  argv: readonly string[];
  cwd: string;
  env: NodeJS.ProcessEnv;
  /**
   * File given as stdin; null means /dev/null. It sits in the task's own directory, where an earlier
   * step could have replaced it: it is opened without following a link or blocking on a FIFO, and
   * must be a regular file owned by `stdinOwner` when that is given.
   */
  stdinFile: string | null;
  stdinOwner?: number;
  /** Wall-clock limit in ms; 0 means none. */
  timeoutMs: number;
  /** Bytes kept of stdout and (separately) of stderr; one byte more stops the step. */
  outputLimit: number;
  /** Aborting it cancels the step. */
  signal: AbortSignal;
  /** Where to record the step's process group, so a restarted executor can kill its leftovers. */
  groupRecordFile?: string;
  containment?: StepContainment;
}

export interface StepOutcome {
  /** Exit code of the step's command, or null when it died of a signal or never started. */
  exitCode: number | null;
  signal: string | null;
  wallMs: number;
  cpuMs: number | null;
  memoryKb: number | null;
  stdout: Buffer;
  stderr: Buffer;
  /** Why kv2 stopped the step before it ended by itself. */
  stopped: StopReason | null;
  /** The command could not be started at all (why). */
  startError: string | null;
}

/**
 * Process groups of the steps running now. The executor's exit handler kills them synchronously, so
 * even an abrupt exit (a second signal) leaves no task running.
 */
const liveGroups = new Set<number>();
const liveContainments = new Set<StepContainment>();

export function killRunningStepsNow(): void {
  for (const pgid of liveGroups) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
  for (const containment of liveContainments) containment.killNow?.();
}

/** The first `limit` bytes of a stream; says when more arrived. */
class CappedCapture {
  private readonly chunks: Buffer[] = [];
  private size = 0;
  overflowed = false;

  constructor(private readonly limit: number) {}

  /** Keeps what fits; false once the stream went past the limit. */
  push(chunk: Buffer): boolean {
    if (this.overflowed) return false;
    const room = this.limit - this.size;
    if (chunk.length > room) {
      if (room > 0) this.chunks.push(chunk.subarray(0, room));
      this.size = this.limit;
      this.overflowed = true;
      return false;
    }
    this.chunks.push(chunk);
    this.size += chunk.length;
    return true;
  }

  bytes(): Buffer {
    return Buffer.concat(this.chunks, this.size);
  }
}

function streamEnded(stream: NodeJS.ReadableStream | null): Promise<void> {
  if (!stream) return Promise.resolve();
  return new Promise((resolve) => {
    stream.once('end', resolve);
    stream.once('close', resolve);
    stream.once('error', () => resolve());
  });
}

function openInput(file: string | null, owner: number | undefined): number {
  if (file === null) return fs.openSync('/dev/null', 'r');
  const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  const stat = fs.fstatSync(fd);
  if (!stat.isFile() || (owner !== undefined && stat.uid !== owner)) {
    fs.closeSync(fd);
    throw new Error(`${file} is not a regular file of the task's`);
  }
  return fd;
}

export async function runStep(spec: StepSpec): Promise<StepOutcome> {
  const stdout = new CappedCapture(spec.outputLimit);
  const stderr = new CappedCapture(spec.outputLimit);
  const empty = (stopped: StopReason | null, startError: string | null): StepOutcome => ({
    exitCode: null,
    signal: null,
    wallMs: 0,
    cpuMs: null,
    memoryKb: null,
    stdout: Buffer.alloc(0),
    stderr: Buffer.alloc(0),
    stopped,
    startError,
  });
  if (spec.signal.aborted) return empty('cancel', null);

  let stdinFd: number;
  try {
    stdinFd = openInput(spec.stdinFile, spec.stdinOwner);
  } catch (error) {
    return empty(null, `cannot open the step's input: ${(error as Error).message}`);
  }
  const started = performance.now();
  let child: ChildProcess;
  try {
    // detached: the step leads a new process group, so it can be killed whole.
    child = spawn(spec.argv[0]!, spec.argv.slice(1), { cwd: spec.cwd, env: spec.env, detached: true, stdio: [stdinFd, 'pipe', 'pipe'] });
  } catch (error) {
    return empty(null, `cannot start ${spec.argv[0]}: ${(error as Error).message}`);
  } finally {
    fs.closeSync(stdinFd);
  }
  const pgid = child.pid;

  if (pgid !== undefined) liveGroups.add(pgid);
  const state: { stopped: StopReason | null } = { stopped: null };
  const stop = (reason: StopReason) => {
    if (state.stopped !== null || pgid === undefined) return;
    state.stopped = reason;
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      // already gone; the sweep below makes sure
    }
  };

  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
    child.once('error', (error) => resolve({ code: null, signal: null, error }));
  });
  if (pgid !== undefined && spec.groupRecordFile) {
    try {
      recordGroup(spec.groupRecordFile, pgid);
    } catch {
      // Only a restarted executor's cleanup needs it; the step itself is unaffected.
    }
  }
  const stdoutEnded = streamEnded(child.stdout);
  const stderrEnded = streamEnded(child.stderr);
  child.stdout?.on('data', (chunk: Buffer) => {
    if (!stdout.push(chunk)) stop('output');
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    if (!stderr.push(chunk)) stop('output');
  });
  const onCancel = () => stop('cancel');
  spec.signal.addEventListener('abort', onCancel, { once: true });
  const timer = spec.timeoutMs > 0 ? setTimeout(() => stop('time'), spec.timeoutMs) : undefined;
  if (spec.containment) liveContainments.add(spec.containment);
  const unwatch = pgid !== undefined ? spec.containment?.watch?.(stop) : undefined;

  const ended = await exit;
  const wallMs = Math.round(performance.now() - started);
  if (timer) clearTimeout(timer);
  unwatch?.();
  spec.signal.removeEventListener('abort', onCancel);

  // The step's command is done; anything it left running in the background goes with it.
  if (pgid !== undefined) {
    const left = await killGroupAndWait(pgid);
    if (left.length === 0) liveGroups.delete(pgid);
  }
  await spec.containment?.killAll();
  if (spec.containment) liveContainments.delete(spec.containment);
  let drainTimer: NodeJS.Timeout | undefined;
  await Promise.race([
    Promise.all([stdoutEnded, stderrEnded]),
    new Promise((resolve) => {
      drainTimer = setTimeout(resolve, PIPE_DRAIN_MS);
    }),
  ]);
  clearTimeout(drainTimer);
  child.stdout?.destroy();
  child.stderr?.destroy();

  const facts = (await spec.containment?.collect({ exitCode: ended.code, signal: ended.signal })) ?? { cpuMs: null, memoryKb: null, stopped: null };
  if (ended.error) {
    return { ...empty(null, `cannot start ${spec.argv[0]}: ${ended.error.message}`), wallMs };
  }
  return {
    exitCode: ended.code,
    signal: ended.signal,
    wallMs,
    cpuMs: facts.cpuMs,
    memoryKb: facts.memoryKb,
    stdout: stdout.bytes(),
    stderr: stderr.bytes(),
    stopped: state.stopped ?? facts.stopped,
    startError: null,
  };
}
