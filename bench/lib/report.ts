// The benchmark's results: the JSON shape saved under bench/results/, the printed table (every figure as
// median [min-max] of the runs, with its ratio to the floor), the memory table and the targets of issue 9.
import { fmt, spread, type Spread } from './stats';
import type { ProcessMemory } from './memory';

export interface SystemResult {
  key: string;
  name: string;
  /** Why the system was not measured at all (not installed, could not be set up). */
  skipped?: string;
  /** Failures of single runs or of the whole system, in order. */
  errors: string[];
  startSeconds?: number;
  /** Tasks per run of each workload (Slurm runs fewer). */
  counts?: { trivial: number; sequential: number; payload: number };
  /** Per figure key ('a.tasksPerSecond', 'b.startP50', ...): one value per run. */
  runs: Record<string, number[]>;
  memory?: { idle: ProcessMemory[]; load: ProcessMemory[] };
  /** Workload (a): CPU time (user + system) per task of each process, ms, one value per run. */
  cpuPerTask?: Record<string, number[]>;
  loadAverage?: { before: number[]; after: number[] };
}

export interface BenchReport {
  startedAt: string;
  seconds: number;
  machine: Record<string, unknown>;
  settings: Record<string, unknown>;
  systems: SystemResult[];
  figures: Record<string, Record<string, Spread>>;
  targets: { target: string; value: string; met: boolean | null }[];
}

export const ROWS: { key: string; label: string; higherIsBetter: boolean; from?: string }[] = [
  { key: 'a.tasksPerSecond', label: '(a) trivial tasks, 4 slots: tasks/s', higherIsBetter: true },
  { key: 'b.startP50', label: '(b) submit-to-start p50, ms', higherIsBetter: false },
  { key: 'b.startP95', label: '(b) submit-to-start p95, ms', higherIsBetter: false },
  { key: 'b.startP99', label: '(b) submit-to-start p99, ms', higherIsBetter: false },
  { key: 'b.resultP50', label: '(b) submit-to-result p50, ms', higherIsBetter: false },
  { key: 'b.resultP95', label: '(b) submit-to-result p95, ms', higherIsBetter: false },
  { key: 'b.resultP99', label: '(b) submit-to-result p99, ms', higherIsBetter: false },
  { key: 'c.tasksPerSecond', label: '(c) 64 KiB source+output: tasks/s', higherIsBetter: true },
  { key: 'c.megabytesPerSecond', label: '(c) 64 KiB source+output: MB/s', higherIsBetter: true },
  { key: 'd.tasksPerSecond', label: '(d) (a) on 3 judicators + 2 executors', higherIsBetter: true, from: 'a.tasksPerSecond' },
];

/** The systems that get a column, in order; the cluster's figure lands in kv2's column as row (d). */
const COLUMNS = ['floor', 'kv2', 'bullmq', 'slurm'];

export function summarize(systems: SystemResult[]): Record<string, Record<string, Spread>> {
  const figures: Record<string, Record<string, Spread>> = {};
  for (const system of systems) {
    figures[system.key] = Object.fromEntries(Object.entries(system.runs).map(([key, values]) => [key, spread(values)]));
  }
  return figures;
}

function cellFor(figures: BenchReport['figures'], column: string, row: (typeof ROWS)[number]): Spread | undefined {
  if (row.from) return column === 'kv2' ? figures['kv2-cluster']?.[row.from] : undefined;
  return figures[column]?.[row.key];
}

function pad(text: string, width: number, right = false): string {
  return right ? text.padStart(width) : text.padEnd(width);
}

export function renderTable(report: BenchReport): string {
  const present = COLUMNS.filter((c) => report.systems.some((s) => s.key === c || (c === 'kv2' && s.key === 'kv2-cluster')));
  const names = Object.fromEntries(report.systems.map((s) => [s.key, s.name]));
  const lines: string[] = [];
  const standard = report.systems.find((s) => s.key === 'kv2' || s.key === 'floor')?.counts;
  const heading = (c: string) => {
    const system = report.systems.find((s) => s.key === c);
    const n = system?.counts;
    const fewer = n && standard && n.trivial !== standard.trivial ? ` (n=${n.trivial}/${n.sequential}/${n.payload})` : '';
    return `${c === 'kv2' ? 'kv2' : names[c] ?? c}${fewer}`;
  };
  const header = ['figure', ...present.map(heading)];
  const body = ROWS.map((row) => {
    const floor = row.from ? report.figures.floor?.['a.tasksPerSecond'] : report.figures.floor?.[row.key];
    return [
      row.label,
      ...present.map((column) => {
        const cell = cellFor(report.figures, column, row);
        if (!cell || !Number.isFinite(cell.median)) return '-';
        const ratio = column !== 'floor' && floor && floor.median > 0 ? ` ${fmt(cell.median / floor.median)}x` : '';
        return `${fmt(cell.median)} [${fmt(cell.min)}-${fmt(cell.max)}]${ratio}`;
      }),
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => pad(c, widths[i]!, i > 0)).join(' | ');
  lines.push(line(header));
  lines.push(widths.map((w) => '-'.repeat(w)).join('-|-'));
  for (const row of body) lines.push(line(row));
  return lines.join('\n');
}

/**
 * CPU per task in workload (a), median of the runs: what each process of a system spends on one trivial
 * task (the tasks' own commands excluded). Robust to other load on the machine, unlike the rates.
 */
export function renderCpu(report: BenchReport): string {
  const lines = ["CPU time per task in (a), ms (user + system of each process itself; the tasks' commands not counted):"];
  for (const system of report.systems) {
    if (!system.cpuPerTask) continue;
    const rows = Object.entries(system.cpuPerTask).map(([label, runs]) => [label, spread(runs).median] as const);
    const total = rows.reduce((sum, [, v]) => sum + v, 0);
    const width = Math.max(...rows.map(([l]) => l.length), 5);
    lines.push(`  ${system.name}: ${fmt(total)} in all`);
    for (const [label, value] of rows) lines.push(`    ${pad(label, width)}  ${fmt(value).padStart(7)}`);
  }
  return lines.join('\n');
}

const mb = (kb: number) => (kb / 1024).toFixed(1);

/** Sums of the processes whose label starts with each role prefix ('judicator j1: ', ...). */
export function roleTotals(memory: ProcessMemory[], prefixOf: (label: string) => string): Map<string, { rssKb: number; pssKb: number; anonKb: number; processes: number }> {
  const totals = new Map<string, { rssKb: number; pssKb: number; anonKb: number; processes: number }>();
  for (const m of memory) {
    const role = prefixOf(m.label);
    const t = totals.get(role) ?? { rssKb: 0, pssKb: 0, anonKb: 0, processes: 0 };
    totals.set(role, { rssKb: t.rssKb + m.rssKb, pssKb: t.pssKb + m.pssKb, anonKb: t.anonKb + m.anonKb, processes: t.processes + 1 });
  }
  return totals;
}

export function clusterRole(label: string): string {
  return label.split(':')[0]!;
}

/** Memory of each measured system's processes, idle and at the peak under load, MB. */
export function renderMemory(report: BenchReport): string {
  const lines: string[] = ['resident memory, MB: VmRSS (PSS, own anonymous) idle -> peak under load'];
  for (const system of report.systems) {
    if (!system.memory || system.memory.idle.length === 0) continue;
    const load = new Map(system.memory.load.map((m) => [m.label, m]));
    lines.push(`  ${system.name}:`);
    const rows = system.memory.idle.map((m) => {
      const l = load.get(m.label);
      return [m.label, `${mb(m.rssKb)} (${mb(m.pssKb)}, ${mb(m.anonKb)})`, l ? `${mb(l.rssKb)} (${mb(l.pssKb)}, ${mb(l.anonKb)})` : '-'];
    });
    if (system.key === 'kv2-cluster') {
      const idle = roleTotals(system.memory.idle, clusterRole);
      const peak = roleTotals(system.memory.load, clusterRole);
      for (const [role, t] of idle) {
        const p = peak.get(role);
        rows.push([`${role} role, ${t.processes} processes`, `${mb(t.rssKb)} (${mb(t.pssKb)}, ${mb(t.anonKb)})`, p ? `${mb(p.rssKb)} (${mb(p.pssKb)}, ${mb(p.anonKb)})` : '-']);
      }
    } else if (system.key === 'kv2') {
      const sum = (list: ProcessMemory[]) => list.reduce((a, m) => ({ rssKb: a.rssKb + m.rssKb, pssKb: a.pssKb + m.pssKb, anonKb: a.anonKb + m.anonKb }), { rssKb: 0, pssKb: 0, anonKb: 0 });
      const i = sum(system.memory.idle);
      const p = sum(system.memory.load);
      rows.push([`all ${system.memory.idle.length} processes`, `${mb(i.rssKb)} (${mb(i.pssKb)}, ${mb(i.anonKb)})`, `${mb(p.rssKb)} (${mb(p.pssKb)}, ${mb(p.anonKb)})`]);
    }
    const width = Math.max(...rows.map((r) => r[0]!.length));
    const width2 = Math.max(...rows.map((r) => r[1]!.length));
    for (const r of rows) lines.push(`    ${pad(r[0]!, width)}  ${pad(r[1]!, width2, true)} -> ${r[2]}`);
  }
  return lines.join('\n');
}

/** Issue 9's targets, judged on this run's figures (null: not measured). */
export function judgeTargets(report: Omit<BenchReport, 'targets'>): BenchReport['targets'] {
  const kv2 = report.figures.kv2 ?? {};
  const bull = report.figures.bullmq ?? {};
  const targets: BenchReport['targets'] = [];
  const a = kv2['a.tasksPerSecond']?.median;
  const b = bull['a.tasksPerSecond']?.median;
  targets.push({
    target: "kv2 tasks/s (a) at least BullMQ's",
    value: `${fmt(a ?? NaN)} vs ${fmt(b ?? NaN)}`,
    met: a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) ? null : a >= b,
  });
  const c = kv2['c.tasksPerSecond']?.median;
  const d = bull['c.tasksPerSecond']?.median;
  targets.push({
    target: "kv2 tasks/s (c) at least BullMQ's",
    value: `${fmt(c ?? NaN)} vs ${fmt(d ?? NaN)}`,
    met: c === undefined || d === undefined || !Number.isFinite(c) || !Number.isFinite(d) ? null : c >= d,
  });
  const start = kv2['b.startP50']?.median;
  targets.push({ target: 'kv2 submit-to-start p50 < 3 ms', value: `${fmt(start ?? NaN)} ms`, met: start === undefined || !Number.isFinite(start) ? null : start < 3 });
  const result = kv2['b.resultP50']?.median;
  targets.push({ target: 'kv2 submit-to-result p50 < 10 ms', value: `${fmt(result ?? NaN)} ms`, met: result === undefined || !Number.isFinite(result) ? null : result < 10 });
  const cluster = report.systems.find((s) => s.key === 'kv2-cluster');
  if (cluster?.memory?.idle.length) {
    for (const [role, t] of roleTotals(cluster.memory.idle, clusterRole)) {
      targets.push({ target: `kv2 ${role} role idle < 80 MB (VmRSS, all its processes)`, value: `${mb(t.rssKb)} MB (PSS ${mb(t.pssKb)})`, met: t.rssKb < 80 * 1024 });
    }
  } else {
    targets.push({ target: 'each kv2 role idle < 80 MB', value: 'not measured', met: null });
  }
  return targets;
}

export function renderTargets(targets: BenchReport['targets']): string {
  return ['targets (issue 9):', ...targets.map((t) => `  ${t.met === null ? 'n/a ' : t.met ? 'MET ' : 'MISS'}  ${t.target}: ${t.value}`)].join('\n');
}
