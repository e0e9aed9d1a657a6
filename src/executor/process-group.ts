// The process groups task steps run in: who is still in a group (read from /proc, zombies excluded),
// killing a group whole and waiting until nothing of it runs, and the on-disk record of a step's group
// that lets a restarted executor kill what a previous run left behind.
import fs from 'node:fs';
import { sleep } from '../common/processes';

/** How often a group is re-checked while we wait for it to die. */
const GROUP_POLL_MS = 10;

interface ProcStat {
  pid: number;
  state: string;
  pgrp: number;
  startTime: string;
}

function readStat(pid: number): ProcStat | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may hold spaces or parentheses itself.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { pid, state: fields[0] ?? '?', pgrp: Number(fields[2]), startTime: fields[19] ?? '' };
  } catch {
    return undefined;
  }
}

/**
 * Live members of process group `pgid`. Zombies do not count: they run nothing, and where PID 1 does not
 * reap orphans (some containers) they would otherwise look alive forever.
 */
export function groupMembers(pgid: number): number[] {
  const members: number[] = [];
  let entries: string[];
  try {
    entries = fs.readdirSync('/proc');
  } catch {
    return members;
  }
  for (const entry of entries) {
    if (entry.charCodeAt(0) > 57) continue; // not a pid (letters sort after digits)
    const pid = Number(entry);
    if (!Number.isInteger(pid)) continue;
    const stat = readStat(pid);
    if (stat && stat.pgrp === pgid && stat.state !== 'Z' && stat.state !== 'X') members.push(pid);
  }
  return members;
}

/** Whether any process (zombies included) is in group `pgid`. */
function groupExists(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function killGroupOnce(pgid: number): void {
  try {
    process.kill(-pgid, 'SIGKILL');
  } catch (error) {
    // ESRCH: the group is gone already. EPERM: a member changed user; those are swept by pid below.
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH' && (error as NodeJS.ErrnoException).code !== 'EPERM') throw error;
  }
}

/**
 * SIGKILLs every process of group `pgid` and waits until none is left (or `deadlineMs` passes: a process
 * stuck in the kernel cannot be hurried). Returns the pids still alive at the deadline (normally none).
 */
export async function killGroupAndWait(pgid: number, deadlineMs = 10_000): Promise<number[]> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    // The common case, a step that left nothing behind, needs no scan of /proc.
    if (!groupExists(pgid)) return [];
    killGroupOnce(pgid);
    const left = groupMembers(pgid);
    if (left.length === 0) return [];
    // A member may have been forked while we killed: kill again by pid as well.
    for (const pid of left) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
    }
    if (Date.now() >= deadline) return groupMembers(pgid);
    await sleep(GROUP_POLL_MS);
  }
}

/** Identifies this boot of the machine: pids recorded before a reboot mean nothing after it. */
export function bootId(): string {
  try {
    return fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return 'unknown';
  }
}

/** What a task dir records about a step's process group (for a restarted executor). */
export interface GroupRecord {
  pgid: number;
  /** The leader's start time in clock ticks since boot (/proc/<pid>/stat field 22). */
  start: string;
  boot: string;
}

/** This boot's id, read once: it does not change while the executor runs. */
let thisBoot: string | undefined;

/**
 * Synchronous: a small write to a local file takes microseconds, less than the thread-pool round trips of
 * an asynchronous one.
 */
export function recordGroup(file: string, pgid: number): void {
  thisBoot ??= bootId();
  const record: GroupRecord = { pgid, start: readStat(pgid)?.startTime ?? '', boot: thisBoot };
  fs.writeFileSync(file, JSON.stringify(record), { mode: 0o600 });
}

/**
 * Kills what is left of a group recorded by a previous executor run, if the record still names that
 * group: same boot, and its leader either gone or the very process recorded (a live leader with another
 * start time means the pgid was reused by an unrelated group, which must not be touched).
 * Returns the number of processes killed.
 */
export async function killRecordedGroup(file: string): Promise<number> {
  let record: GroupRecord;
  try {
    record = JSON.parse(fs.readFileSync(file, 'utf8')) as GroupRecord;
  } catch {
    return 0;
  }
  if (!Number.isInteger(record.pgid) || record.pgid <= 1 || record.boot !== bootId()) return 0;
  const leader = readStat(record.pgid);
  if (leader && leader.state !== 'Z' && (leader.startTime !== record.start || leader.pgrp !== record.pgid)) return 0;
  const members = groupMembers(record.pgid);
  if (members.length === 0) return 0;
  await killGroupAndWait(record.pgid);
  return members.length;
}
