// Running one step of a task (compile or execute): the command started by the step launcher in its own
// process group and session, stdin from a file, stdout and stderr captured while they stream and capped,
// stopped whole on timeout, output overflow or cancel, and not finished until nothing it started is left
// running.
import { performance } from 'node:perf_hooks';
import type { StopReason } from '../task/types';
import type { StepCommand, StepLauncher, StepUsage } from './launcher';
import { killGroupAndWait, recordGroup } from './process-group';

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
  /** Starts the step's process (one exec, from outside the executor's event loop). */
  launcher: StepLauncher;
  /** The program (`bash compile.sh`, possibly behind bwrap), as whom, with which rlimits and cgroups. */
  command: StepCommand;
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
  /** Each chunk of output as it comes (the task's live state, issue 17). */
  onOutput?: (stream: 'stdout' | 'stderr', chunk: Buffer) => void;
}

export interface StepOutcome {
  /** Exit code of the step's command, or null when it died of a signal or never started. */
  exitCode: number | null;
  signal: string | null;
  wallMs: number;
  cpuMs: number | null;
  memoryKb: number | null;
  /** What wait4 said of the step (CPU time, peak memory, wall time to the microsecond); null when unknown. */
  usage: StepUsage | null;
  stdout: Buffer;
  stderr: Buffer;
  /** Why kv2 stopped the step before it ended by itself. */
  stopped: StopReason | null;
  /** The command could not be started at all, or its launcher failed it (why). */
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

/** SIGKILL to a process or (negative) a group that may be gone already. */
function killQuietly(target: number): void {
  try {
    process.kill(target, 'SIGKILL');
  } catch {
    // gone already; the sweeps after the step make sure
  }
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
    usage: null,
    stdout: Buffer.alloc(0),
    stderr: Buffer.alloc(0),
    stopped,
    startError,
  });
  if (spec.signal.aborted) return empty('cancel', null);

  const started = performance.now();
  const state: { stopped: StopReason | null } = { stopped: null };
  const launched = spec.launcher.launch(
    { ...spec.command, stdinFile: spec.stdinFile, stdinOwner: spec.stdinOwner, outputLimit: spec.outputLimit },
    {
      stdout: (chunk) => {
        spec.onOutput?.('stdout', chunk);
        if (!stdout.push(chunk)) stop('output');
      },
      stderr: (chunk) => {
        spec.onOutput?.('stderr', chunk);
        if (!stderr.push(chunk)) stop('output');
      },
    },
  );
  // The launcher reports the pid once the step exec'd: it leads its own process group and session.
  const kill = () => {
    if (launched.pid !== undefined) killQuietly(-launched.pid);
  };
  const stop = (reason: StopReason) => {
    if (state.stopped !== null) return;
    state.stopped = reason;
    kill();
  };
  const onCancel = () => stop('cancel');
  spec.signal.addEventListener('abort', onCancel, { once: true });

  const pgid = await launched.started;
  let timer: NodeJS.Timeout | undefined;
  let unwatch: (() => void) | undefined;
  if (pgid !== undefined) {
    liveGroups.add(pgid);
    // A stop that came before the pid did.
    if (state.stopped !== null) kill();
    if (spec.groupRecordFile) {
      try {
        recordGroup(spec.groupRecordFile, pgid);
      } catch {
        // Only a restarted executor's cleanup needs it; the step itself is unaffected.
      }
    }
    if (spec.timeoutMs > 0) timer = setTimeout(() => stop('time'), spec.timeoutMs);
    if (spec.containment) liveContainments.add(spec.containment);
    unwatch = spec.containment?.watch?.(stop);
  }

  const ended = await launched.ended;
  const wallMs = ended.usage ? Math.round(ended.usage.wallUs / 1000) : Math.round(performance.now() - started);
  if (timer) clearTimeout(timer);
  unwatch?.();
  spec.signal.removeEventListener('abort', onCancel);

  // The step's command is done (the launcher killed its group as it reaped it); anything that left the
  // group goes with the cgroup.
  if (pgid !== undefined) {
    const left = await killGroupAndWait(pgid);
    if (left.length === 0) liveGroups.delete(pgid);
  }
  await spec.containment?.killAll();
  if (spec.containment) liveContainments.delete(spec.containment);
  // The launcher closes the output pipes at their end of file, or a bounded time after the step ended
  // (a process that escaped the group and the cgroup could hold them open).
  await launched.closed;

  const facts = (await spec.containment?.collect({ exitCode: ended.exitCode, signal: ended.signal })) ?? { cpuMs: null, memoryKb: null, stopped: null };
  if (ended.error !== null) return { ...empty(state.stopped, ended.error), wallMs };
  const usage = ended.usage;
  return {
    exitCode: ended.exitCode,
    signal: ended.signal,
    wallMs,
    // The cgroup counts every process of the step, also those it did not wait for; without one, wait4's.
    cpuMs: facts.cpuMs ?? (usage ? Math.round((usage.userUs + usage.systemUs) / 1000) : null),
    memoryKb: facts.memoryKb ?? usage?.maxRssKb ?? null,
    usage,
    stdout: stdout.bytes(),
    stderr: stderr.bytes(),
    stopped: state.stopped ?? facts.stopped,
    startError: null,
  };
}
