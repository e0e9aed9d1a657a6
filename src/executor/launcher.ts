// The executor's side of the step launcher (step-launcher.c, one per executor): starts it, sends it one
// request per step (what to exec, as whom, with which rlimits, cgroups, stdin and output cap), and turns
// its replies into each step's pid, output, end (exit status with the rusage of wait4) and close. A
// launcher that dies is noticed at once: its running steps end with an error saying so, and the next
// step starts a new one.
import { spawn, type ChildProcess } from 'node:child_process';
import os from 'node:os';
import { describeError } from '../common/errors';
import type { Logger } from '../common/logging';
import { launcherPath } from './launcher-binary';

/** The protocol version this side speaks (the launcher says its own in its hello). */
const PROTOCOL = 'kv2-step-launcher 2';
/** How long a starting launcher may take to say hello. */
const START_TIMEOUT_MS = 10_000;
/** How long a launcher asked to stop (end of its input) may take before it is killed. */
const STOP_TIMEOUT_MS = 5_000;
/** After a launcher failed to start, steps fail at once with that reason for this long, then it is tried again. */
const RESTART_BACKOFF_MS = 1_000;
/** Bytes of the launcher's own diagnostics kept for the log line about its death. */
const STDERR_TAIL_BYTES = 4_096;
/** Frame header of a reply: type, id, length. */
const HEADER_BYTES = 9;

export type RlimitName = 'core' | 'cpu' | 'fsize' | 'as' | 'nproc' | 'stack';

/** One rlimit of a step; Infinity: unlimited. */
export interface Rlimit {
  name: RlimitName;
  soft: number;
  hard: number;
}

/** What a step is and how it is set up before its program runs. */
export interface StepCommand {
  /** The program (an absolute path) and its arguments: bash, or bwrap ... bash. */
  argv: readonly string[];
  cwd: string;
  /** The step's whole environment. */
  env: Readonly<Record<string, string | undefined>>;
  /** The task user the step switches to (groups cleared, no capabilities, no new privileges). */
  user?: { uid: number; gid: number };
  rlimits?: readonly Rlimit[];
  /** cgroup.procs files the step joins before anything else. */
  cgroups?: readonly string[];
  /** A mount namespace of its own with empty tmpfs on /tmp, /var/tmp and /dev/shm (needs root). */
  privateTmp?: boolean;
}

export interface LaunchSpec extends StepCommand {
  /** File given as stdin, opened without following a link or waiting on a FIFO; null: /dev/null. */
  stdinFile: string | null;
  /** The uid that must own stdinFile. */
  stdinOwner?: number;
  /** Bytes relayed of each stream; one more and the launcher kills the step's group. */
  outputLimit: number;
}

/**
 * What wait4 tells of a reaped step: its own CPU time and that of every descendant it waited for (bash
 * waits for its commands), and the peak resident memory of the largest of them. Precise to the
 * microsecond and the kilobyte, per step, without a cgroup.
 */
export interface StepUsage {
  userUs: number;
  systemUs: number;
  maxRssKb: number;
  /** From fork to reap, by the launcher's monotonic clock. */
  wallUs: number;
}

export interface LaunchEnd {
  exitCode: number | null;
  signal: string | null;
  /** null when the launcher could not say (it died, or refused the step). */
  usage: StepUsage | null;
  /** Why the step's program never ran, or why the launcher could not see it through. */
  error: string | null;
}

export interface OutputHandlers {
  stdout(chunk: Buffer): void;
  stderr(chunk: Buffer): void;
}

const SIGNAL_NAMES = new Map(Object.entries(os.constants.signals).map(([name, number]) => [number, name]));

function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/** A step handed to the launcher. Every promise settles, whatever happens to the launcher. */
export class LaunchedStep {
  /** Its pid, which is also its process group's and session's, once it exec'd its program. */
  pid: number | undefined;
  private readonly startedAt = deferred<number | undefined>();
  private readonly endedAt = deferred<LaunchEnd>();
  private readonly closedAt = deferred<void>();
  private end: LaunchEnd | undefined;

  constructor(
    readonly id: number,
    readonly handlers: OutputHandlers,
  ) {}

  /** The pid once it exec'd (or failed to); undefined when the step never got a process (see `ended` for why). */
  get started(): Promise<number | undefined> {
    return this.startedAt.promise;
  }

  /** When it was reaped (its group is killed then), or failed. */
  get ended(): Promise<LaunchEnd> {
    return this.endedAt.promise;
  }

  /** When its output is all in: nothing more comes for it. */
  get closed(): Promise<void> {
    return this.closedAt.promise;
  }

  forked(pid: number): void {
    this.pid = pid;
    this.startedAt.resolve(pid);
  }

  reaped(end: LaunchEnd): void {
    if (this.end) return;
    this.end = end;
    this.startedAt.resolve(this.pid);
    this.endedAt.resolve(end);
  }

  finished(): void {
    this.closedAt.resolve();
  }

  /** Ends it with `error` wherever it is (a launcher that died or refused it). */
  fail(error: string): void {
    this.reaped({ exitCode: null, signal: null, usage: null, error });
    this.finished();
  }
}

/** One request frame: a 32-bit little-endian length, then NUL-terminated key=value fields. */
export function encodeRequest(id: number, spec: LaunchSpec): Buffer {
  const fields: string[] = ['op=start', `id=${id}`];
  for (const arg of spec.argv) fields.push(`argv=${arg}`);
  for (const [name, value] of Object.entries(spec.env)) if (value !== undefined) fields.push(`env=${name}=${value}`);
  fields.push(`cwd=${spec.cwd}`);
  if (spec.user) fields.push(`uid=${spec.user.uid}`, `gid=${spec.user.gid}`);
  const value = (n: number) => (n === Infinity ? 'inf' : String(Math.floor(n)));
  for (const limit of spec.rlimits ?? []) fields.push(`rlimit=${limit.name}:${value(limit.soft)}:${value(limit.hard)}`);
  for (const procs of spec.cgroups ?? []) fields.push(`cgroup=${procs}`);
  if (spec.stdinFile !== null) fields.push(`stdin=${spec.stdinFile}`);
  if (spec.stdinOwner !== undefined && spec.stdinFile !== null) fields.push(`stdin_owner=${spec.stdinOwner}`);
  if (spec.privateTmp) fields.push('private_tmp=1');
  fields.push(`output_limit=${Math.floor(spec.outputLimit)}`);
  if (fields.some((field) => field.includes('\0'))) throw new Error('a step argument, variable or path holds a NUL byte');
  const payload = Buffer.from(`${fields.join('\0')}\0`);
  const frame = Buffer.allocUnsafe(4 + payload.length);
  frame.writeUInt32LE(payload.length, 0);
  payload.copy(frame, 4);
  return frame;
}

/** The fields of an 'X' frame. */
function decodeEnd(payload: Buffer): LaunchEnd {
  const fields = new Map<string, string>();
  for (const field of payload.toString('utf8').split('\0')) {
    const at = field.indexOf('=');
    if (at > 0) fields.set(field.slice(0, at), field.slice(at + 1));
  }
  const number = (key: string) => (fields.has(key) ? Number(fields.get(key)) : NaN);
  const signal = number('signal');
  const usage = { userUs: number('user_us'), systemUs: number('system_us'), maxRssKb: number('maxrss_kb'), wallUs: number('wall_us') };
  return {
    exitCode: Number.isInteger(number('exit')) ? number('exit') : null,
    signal: Number.isInteger(signal) ? (SIGNAL_NAMES.get(signal) ?? `SIG${signal}`) : null,
    usage: Object.values(usage).every(Number.isFinite) ? usage : null,
    error: fields.get('error') ?? null,
  };
}

/** One running launcher process and the steps it holds. */
class LauncherProcess {
  readonly steps = new Map<number, LaunchedStep>();
  readonly ready: Promise<void>;
  /** Steps handed to it and not closed yet (some may still wait for it to be ready). */
  launched = 0;
  /**
   * Steps sent and not yet answered with 'P' or 'R', oldest first: the launcher answers each request at
   * once and in order, so a refusal that could not name its id (a request it could not read) is the
   * oldest one's.
   */
  private readonly unanswered: LaunchedStep[] = [];
  private isGone = false;
  private pending: Buffer = Buffer.alloc(0);
  private stderrTail = '';
  private stopping = false;

  constructor(
    readonly child: ChildProcess,
    private readonly logger: Logger | undefined,
    /** Called once it is gone (after its steps were failed). */
    private readonly onGone: (process: LauncherProcess) => void,
  ) {
    let hello: (error?: Error) => void = () => undefined;
    this.ready = new Promise<void>((resolve, reject) => {
      hello = (error) => (error ? reject(error) : resolve());
    });
    const timer = setTimeout(() => {
      hello(new Error(`it did not answer within ${START_TIMEOUT_MS} ms`));
      child.kill('SIGKILL');
    }, START_TIMEOUT_MS);
    this.ready.then(
      () => clearTimeout(timer),
      () => clearTimeout(timer),
    );
    child.stdout!.on('data', (chunk: Buffer) => this.receive(chunk, hello));
    child.stderr!.on('data', (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      this.stderrTail = (this.stderrTail + text).slice(-STDERR_TAIL_BYTES);
      for (const line of text.split('\n')) if (line.trim()) this.logger?.warn({ launcher: child.pid }, line.trim());
    });
    // Its input closing under us (it died) is reported by 'exit'; the write error itself says nothing more.
    child.stdin!.on('error', () => undefined);
    child.once('error', (error) => {
      hello(error);
      this.gone(`it could not be run: ${describeError(error)}`);
    });
    child.once('exit', (code, signal) => {
      hello(new Error(`it exited (${signal ?? `code ${code}`}) before it was ready: ${this.stderrTail.trim() || 'no message'}`));
      this.gone(`the step launcher ${this.stopping ? 'stopped' : 'died'} (${signal ?? `exit code ${code}`})`);
    });
  }

  send(step: LaunchedStep, spec: LaunchSpec): void {
    let frame: Buffer;
    try {
      frame = encodeRequest(step.id, spec);
    } catch (error) {
      step.fail(describeError(error));
      return;
    }
    this.steps.set(step.id, step);
    this.unanswered.push(step);
    this.child.stdin!.write(frame);
  }

  stop(): void {
    this.stopping = true;
    this.child.stdin!.end();
  }

  private receive(chunk: Buffer, hello: (error?: Error) => void): void {
    let data = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    while (data.length >= HEADER_BYTES) {
      const length = data.readUInt32LE(5);
      if (data.length < HEADER_BYTES + length) break;
      const type = String.fromCharCode(data[0]!);
      const id = data.readUInt32LE(1);
      const payload = data.subarray(HEADER_BYTES, HEADER_BYTES + length);
      data = data.subarray(HEADER_BYTES + length);
      this.handle(type, id, payload, hello);
    }
    // Copied: a small remainder must not pin the large buffer it came in.
    this.pending = data.length ? Buffer.from(data) : Buffer.alloc(0);
  }

  private handle(type: string, id: number, payload: Buffer, hello: (error?: Error) => void): void {
    if (type === 'H') {
      const said = payload.toString('utf8');
      if (said === PROTOCOL) hello();
      else {
        hello(new Error(`it speaks "${said}", this executor "${PROTOCOL}"`));
        this.child.kill('SIGKILL');
      }
      return;
    }
    const step = type === 'R' && id === 0 ? this.unanswered[0] : this.steps.get(id);
    if (!step) {
      this.logger?.error({ launcher: this.child.pid, type, id }, 'the step launcher answered for a step it was not given');
      return;
    }
    if (type === 'P' || type === 'R') {
      const at = this.unanswered.indexOf(step);
      if (at >= 0) this.unanswered.splice(at, 1);
    }
    switch (type) {
      case 'P':
        step.forked(Number(payload.toString('utf8')));
        break;
      case 'O':
        step.handlers.stdout(Buffer.from(payload));
        break;
      case 'E':
        step.handlers.stderr(Buffer.from(payload));
        break;
      case 'X':
        step.reaped(decodeEnd(payload));
        break;
      case 'C':
        this.steps.delete(id);
        step.finished();
        break;
      case 'R':
        this.steps.delete(step.id);
        step.fail(`the step launcher refused the step: ${payload.toString('utf8')}`);
        break;
      default:
        this.logger?.error({ launcher: this.child.pid, type }, 'the step launcher sent a reply of an unknown type');
    }
  }

  private gone(reason: string): void {
    if (this.isGone) return;
    this.isGone = true;
    const held = [...this.steps.values()];
    this.steps.clear();
    this.unanswered.length = 0;
    if (!this.stopping || held.length > 0) {
      this.logger?.error({ launcher: this.child.pid, steps: held.length, stderr: this.stderrTail.trim() || undefined }, `${reason}: ${held.length} running step(s) failed`);
    }
    for (const step of held) step.fail(`${reason}; the step was stopped`);
    this.onGone(this);
  }
}

/**
 * The executor's step launcher: started on first use (or by `start`), restarted on the first step after
 * it died. It holds the executor's event loop only while steps run.
 */
export class StepLauncher {
  private current: LauncherProcess | undefined;
  private lastFailure: { at: number; message: string } | undefined;
  private nextId = 1;
  private closed = false;

  constructor(
    private readonly logger?: Logger,
    /** The launcher program; by default the embedded (or, from sources, compiled) one. */
    private readonly program: () => string = launcherPath,
  ) {}

  /** The running launcher's pid (tests kill it to see the executor cope). */
  get pid(): number | undefined {
    return this.current?.child.pid;
  }

  /** Starts the launcher now; rejects with why it cannot run. */
  async start(): Promise<void> {
    await this.ensure().ready;
  }

  launch(spec: LaunchSpec, handlers: OutputHandlers): LaunchedStep {
    const step = new LaunchedStep(this.allocateId(), handlers);
    if (this.closed) {
      step.fail('the executor is stopping');
      return step;
    }
    const backoff = this.lastFailure && Date.now() - this.lastFailure.at < RESTART_BACKOFF_MS ? this.lastFailure.message : undefined;
    if (backoff) {
      step.fail(backoff);
      return step;
    }
    let target: LauncherProcess;
    try {
      target = this.ensure();
    } catch (error) {
      step.fail(this.failedStart(error));
      return step;
    }
    if (target.launched++ === 0) this.holdLoop(target, true);
    target.ready.then(
      () => target.send(step, spec),
      (error) => step.fail(this.failedStart(error)),
    );
    void step.closed.then(() => {
      if (--target.launched === 0) this.holdLoop(target, false);
    });
    return step;
  }

  /** Stops the launcher (it kills whatever steps it still holds) and waits for it. */
  async close(): Promise<void> {
    this.closed = true;
    const target = this.current;
    if (!target) return;
    const exited = new Promise<void>((resolve) => {
      if (target.child.exitCode !== null || target.child.signalCode !== null) resolve();
      else target.child.once('exit', () => resolve());
    });
    target.stop();
    const timer = setTimeout(() => target.child.kill('SIGKILL'), STOP_TIMEOUT_MS);
    await exited;
    clearTimeout(timer);
  }

  private allocateId(): number {
    const id = this.nextId;
    this.nextId = id >= 0xffff_fffe ? 1 : id + 1;
    return id;
  }

  private failedStart(error: unknown): string {
    const message = `cannot start the step launcher: ${describeError(error)}`;
    this.lastFailure = { at: Date.now(), message };
    return message;
  }

  private ensure(): LauncherProcess {
    if (this.current) return this.current;
    const program = this.program();
    // Its own session: a terminal's Ctrl-C reaches the executor, which decides; the launcher follows its
    // input's end of file or its parent's death. A clean environment: it passes each step its own.
    const child = spawn(program, [], { detached: true, env: {}, stdio: ['pipe', 'pipe', 'pipe'] });
    const started = new LauncherProcess(child, this.logger, (gone) => {
      if (this.current === gone) this.current = undefined;
    });
    started.ready.then(
      () => this.logger?.debug({ launcher: child.pid, program }, 'step launcher started'),
      (error) => this.failedStart(error),
    );
    this.current = started;
    this.holdLoop(started, false);
    return started;
  }

  /** Keeps the event loop alive while steps run, and only then: an idle launcher never holds an exit up. */
  private holdLoop(target: LauncherProcess, hold: boolean): void {
    const handles = [target.child, target.child.stdin, target.child.stdout, target.child.stderr] as unknown as ({ ref?(): void; unref?(): void } | null)[];
    for (const handle of handles) {
      if (hold) handle?.ref?.();
      else handle?.unref?.();
    }
  }
}
