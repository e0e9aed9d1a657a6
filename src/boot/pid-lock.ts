// The lock beside each pid file (`data/<module>.pid.lock`). Whoever holds it owns the module: the
// supervisor takes it for a moment while it checks or starts the module; `kv2 maintain` holds it for the
// whole maintenance shell, and the supervisor then leaves the module alone.
//
// The lock file names its holder (pid and process start time) and is created atomically with link(2), so
// a reader never sees half a lock. A lock whose holder process is gone (killed with SIGKILL, machine
// rebooted) is stale and is broken by the next taker: nothing depends on the holder cleaning up.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { processStartTime, sleep } from '../common/processes';

export interface LockHolder {
  pid: number;
  /** Start time of the holder process (see processStartTime), to tell a live holder from a reused pid. */
  start: string;
  /** What holds it, for messages: "kv2 judicator supervisor", "kv2 maintain". */
  what: string;
  since: string;
}

export class PidFileLock {
  readonly lockFile: string;
  private held = false;

  constructor(
    readonly pidFile: string,
    private readonly what: string,
  ) {
    this.lockFile = `${pidFile}.lock`;
  }

  get isHeld(): boolean {
    return this.held;
  }

  /** Takes the lock if it is free (or stale). Never waits. */
  tryAcquire(): boolean {
    if (this.held) return true;
    fs.mkdirSync(path.dirname(this.lockFile), { recursive: true });
    for (let attempt = 0; attempt < 3; attempt++) {
      if (this.linkNewLock()) {
        this.held = true;
        return true;
      }
      const holder = readHolder(this.lockFile);
      if (holder === 'missing') continue; // released between our link and our read: try again
      if (holderAlive(holder)) return false;
      this.breakStaleLock(holder);
    }
    return false;
  }

  /** Waits for the lock, polling every `pollMs`, until taken or `signal` aborts (then throws). */
  async acquire(options: { pollMs?: number; signal?: AbortSignal } = {}): Promise<void> {
    while (!this.tryAcquire()) {
      if (options.signal?.aborted) throw new Error(`gave up waiting for ${this.lockFile}`);
      await sleep(options.pollMs ?? 100, options.signal);
    }
  }

  /** Releases the lock if this process still holds it. */
  release(): void {
    if (!this.held) return;
    this.held = false;
    const holder = readHolder(this.lockFile);
    if (holder !== 'missing' && holder !== 'unreadable' && holder.pid === process.pid) {
      fs.rmSync(this.lockFile, { force: true });
    }
  }

  /** The live holder of the lock, if any (for messages such as "locked by kv2 maintain, pid 123"). */
  holder(): LockHolder | undefined {
    const holder = readHolder(this.lockFile);
    return typeof holder === 'object' && holderAlive(holder) ? holder : undefined;
  }

  private linkNewLock(): boolean {
    const me: LockHolder = {
      pid: process.pid,
      start: processStartTime(process.pid) ?? '',
      what: this.what,
      since: new Date().toISOString(),
    };
    const temp = `${this.lockFile}.${process.pid}.${randomBytes(4).toString('hex')}`;
    fs.writeFileSync(temp, JSON.stringify(me), { mode: 0o600 });
    try {
      fs.linkSync(temp, this.lockFile);
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw error;
    } finally {
      fs.rmSync(temp, { force: true });
    }
  }

  /**
   * Removes a stale lock without ever removing a live one: the lock is first renamed aside, and only
   * deleted if what was renamed is the stale lock we looked at (someone may have broken it and taken a
   * fresh one in between, in which case that one is put back).
   */
  private breakStaleLock(stale: LockHolder | 'unreadable'): void {
    const aside = `${this.lockFile}.stale.${process.pid}.${randomBytes(4).toString('hex')}`;
    try {
      fs.renameSync(this.lockFile, aside);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw error;
    }
    const moved = readHolder(aside);
    const same =
      stale === 'unreadable'
        ? moved === 'unreadable'
        : typeof moved === 'object' && moved.pid === stale.pid && moved.start === stale.start;
    if (!same) {
      try {
        fs.linkSync(aside, this.lockFile);
      } catch {
        // someone took the lock again meanwhile; theirs stands
      }
    }
    fs.rmSync(aside, { force: true });
  }
}

function readHolder(file: string): LockHolder | 'missing' | 'unreadable' {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 'missing';
    throw error;
  }
  try {
    const parsed = JSON.parse(text) as LockHolder;
    return Number.isInteger(parsed.pid) && parsed.pid > 0 ? parsed : 'unreadable';
  } catch {
    // Not ours (an empty lock file left by another tool): nobody can be identified as holding it.
    return 'unreadable';
  }
}

function holderAlive(holder: LockHolder | 'unreadable'): boolean {
  if (holder === 'unreadable') return false;
  const start = processStartTime(holder.pid);
  return start !== undefined && (holder.start === '' || start === holder.start);
}

/** Reads a pid file; undefined when it is missing, empty or not a positive integer. */
export function readPidFile(pidFile: string): number | undefined {
  try {
    const text = fs.readFileSync(pidFile, 'utf8').trim();
    const pid = Number(text);
    return /^\d+$/.test(text) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

export function writePidFile(pidFile: string, pid: number | undefined): void {
  fs.mkdirSync(path.dirname(pidFile), { recursive: true });
  fs.writeFileSync(pidFile, pid === undefined ? '' : String(pid), { mode: 0o600 });
}
