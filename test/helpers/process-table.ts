// Reading the process table (/proc) to prove that nothing a test started is left running.
import fs from 'node:fs';

export interface ProcessInfo {
  pid: number;
  ppid: number;
  state: string;
  cmdline: string;
}

export function listProcesses(): ProcessInfo[] {
  const result: ProcessInfo[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').join(' ').trim();
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      result.push({ pid: Number(entry), ppid: Number(fields[1]), state: fields[0] ?? '?', cmdline });
    } catch {
      // the process ended while we looked
    }
  }
  return result;
}

/** Live (not zombie) processes whose command line mentions `needle` (a test's work dir, say). */
export function processesMentioning(needle: string): ProcessInfo[] {
  return listProcesses().filter((p) => p.pid !== process.pid && p.state !== 'Z' && p.cmdline.includes(needle));
}
