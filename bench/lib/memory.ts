// Resident memory of a process tree, read from /proc: VmRSS (what `ps` shows, counting the shared pages
// of the kv2 executable in every process that maps them), RssAnon (the process's own memory) and Pss
// (shared pages divided among the processes sharing them, so per-process Pss adds up to the real total).
import fs from 'node:fs';
import { listProcesses } from '../../test/helpers/process-table';

export interface ProcessMemory {
  pid: number;
  label: string;
  rssKb: number;
  anonKb: number;
  pssKb: number;
  /** CPU time the process itself has used so far (user + system, not its children's), ms. */
  cpuMs: number;
}

const TICKS_PER_SECOND = 100; // USER_HZ: /proc/<pid>/stat counts CPU time in these on Linux

/** User + system CPU time of a process itself, ms (0 when it is gone). */
export function readCpuMs(pid: number): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[11] and [12] are utime and stime (the 14th and 15th of the whole line).
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS_PER_SECOND;
  } catch {
    return 0;
  }
}

function statusField(status: string, name: string): number {
  const match = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status);
  return match ? Number(match[1]) : 0;
}

export function readMemory(pid: number): Omit<ProcessMemory, 'label'> | undefined {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    let pssKb = 0;
    try {
      pssKb = statusField(fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'), 'Pss');
    } catch {
      // smaps_rollup needs a newer kernel or more rights: Pss stays 0
    }
    return { pid, rssKb: statusField(status, 'VmRSS'), anonKb: statusField(status, 'RssAnon'), pssKb, cpuMs: readCpuMs(pid) };
  } catch {
    return undefined;
  }
}

/**
 * The processes of a tree rooted at `rootPid` that `label` names (returns undefined for the others, such
 * as the shells of running tasks), with their memory now.
 */
export function treeMemory(rootPid: number, label: (cmdline: string) => string | undefined): ProcessMemory[] {
  const table = listProcesses().filter((p) => p.state !== 'Z');
  const byParent = new Map<number, typeof table>();
  for (const p of table) byParent.set(p.ppid, [...(byParent.get(p.ppid) ?? []), p]);
  const root = table.find((p) => p.pid === rootPid);
  if (!root) return [];
  const result: ProcessMemory[] = [];
  const visit = (p: (typeof table)[number], parent?: (typeof table)[number]) => {
    // A fork that has not exec'd yet (a step the launcher is starting) is not a process of its own.
    const name = parent && parent.cmdline === p.cmdline ? undefined : label(p.cmdline);
    if (name !== undefined) {
      const memory = readMemory(p.pid);
      if (memory) result.push({ ...memory, label: name });
    }
    for (const child of byParent.get(p.pid) ?? []) visit(child, p);
  };
  visit(root);
  return result;
}

/** Per label: the largest figures seen over several samples (a peak under load). */
export class PeakMemory {
  private readonly peaks = new Map<string, ProcessMemory>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly sample: () => ProcessMemory[]) {}

  /** Samples every `everyMs` until stop(). */
  start(everyMs: number): void {
    this.take();
    this.timer = setInterval(() => this.take(), everyMs);
  }

  stop(): ProcessMemory[] {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.take();
    return [...this.peaks.values()];
  }

  private take(): void {
    for (const m of this.sample()) {
      const old = this.peaks.get(m.label);
      this.peaks.set(m.label, old ? { ...m, rssKb: Math.max(old.rssKb, m.rssKb), anonKb: Math.max(old.anonKb, m.anonKb), pssKb: Math.max(old.pssKb, m.pssKb) } : m);
    }
  }
}

/** The label of a kv2 process from its command line, or undefined for a process that is not kv2's own. */
export function kv2Label(cmdline: string): string | undefined {
  if (/(^|\/)kv2-step-launcher$/.test(cmdline)) return 'step launcher';
  const module = /__module (\S+) (\S+)/.exec(cmdline);
  if (module) return `${module[1]} ${module[2]} module`;
  if (/(^|\/)etcd\s/.test(cmdline) && cmdline.includes('--data-dir')) return 'etcd';
  const role = /(?:kv2|main\.ts)\S*\s+(standalone|judicator|executor|gateway)\b/.exec(cmdline);
  if (role) return `${role[1]} supervisor`;
  return undefined;
}
