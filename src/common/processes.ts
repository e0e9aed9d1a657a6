// Child processes and process groups: start a child in its own group, stop it with a grace period, kill
// the whole group, and tell whether a pid is still the process we think it is. Shared by the supervisor,
// the etcd and mongod members and the executor's task runner, so every child in kv2 dies the same way.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import fs from 'node:fs';
import readline from 'node:readline';
import type { Readable } from 'node:stream';

/** Starts `command` as the leader of a new process group, so the group can be killed as one. */
export function spawnInGroup(command: string, args: readonly string[], options: SpawnOptions = {}): ChildProcess {
  return spawn(command, args, { ...options, detached: true });
}

/** Sends `signal` to every process of group `pgid`; a group that is already gone is not an error. */
export function signalGroup(pgid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw error;
  }
}

/** Sends `signal` to one process; a process that is already gone is not an error. */
export function signalProcess(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(pid, signal);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw error;
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** True while any process of group `pgid` exists. */
export function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The start time of `pid` in clock ticks since boot (field 22 of /proc/<pid>/stat), or undefined if
 * there is no such process. A pid plus its start time names one process for good: pids are reused,
 * start times are not.
 */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may contain spaces; fields after it are plain.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19];
  } catch {
    return undefined;
  }
}

/** Resolves with the exit code (or signal name) once `child` has exited; at once if it already has. */
export function exited(child: ChildProcess): Promise<number | NodeJS.Signals> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode);
  if (child.signalCode !== null) return Promise.resolve(child.signalCode);
  return new Promise((resolve) => {
    child.once('exit', (code, signal) => resolve(code ?? signal ?? 0));
  });
}

/** Waits up to `ms` for `child` to exit; true if it did. */
export async function exitedWithin(child: ChildProcess, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  const result = await Promise.race([exited(child).then(() => true as const), timeout]);
  clearTimeout(timer);
  return result;
}

/**
 * Stops a child the polite way: `signal` to the child, up to `graceMs` for it to exit, then SIGKILL to
 * its whole process group. Finally the group is swept with SIGKILL in any case, so nothing the child
 * started survives it. Resolves once the child has been reaped.
 */
export async function stopChild(
  child: ChildProcess,
  options: { signal?: NodeJS.Signals; graceMs: number; group?: boolean },
): Promise<void> {
  const pid = child.pid;
  if (pid === undefined) return;
  const group = options.group ?? true;
  if (child.exitCode === null && child.signalCode === null) {
    signalProcess(pid, options.signal ?? 'SIGTERM');
    if (!(await exitedWithin(child, options.graceMs))) {
      if (group) signalGroup(pid, 'SIGKILL');
      else signalProcess(pid, 'SIGKILL');
      await exited(child);
    }
  }
  if (group) signalGroup(pid, 'SIGKILL');
}

/** Calls `onLine` for every line of `stream` (a child's stdout or stderr). */
export function forEachLine(stream: Readable | null | undefined, onLine: (line: string) => void): void {
  if (!stream) return;
  const lines = readline.createInterface({ input: stream, crlfDelay: Infinity });
  lines.on('line', onLine);
}

/** Resolves after `ms`, or at once when `signal` aborts. Used by loops that must stop on shutdown. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
