// The benchmark's results: the JSON shape saved under bench/results/, the printed table (every figure as
// median [min-max] of the runs, with its ratio to the floor), the memory table, and issue 15's targets
// judged on the same run: PASS or MISS with the figure and its bound, "not measured" where the run lacks
// a figure a target needs.
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
  /** Tasks per run of each workload (Slurm runs fewer); judged: submissions of 20 tests (issue 17). */
  counts?: { trivial: number; sequential: number; payload: number; judged?: number };
  /** Per figure key ('a.tasksPerSecond', 'b.startP50', ...): one value per run. */
  runs: Record<string, number[]>;
  memory?: { idle: ProcessMemory[]; load: ProcessMemory[] };
  /** Workload (a): CPU time (user + system) per task of each process, ms, one value per run. */
  cpuPerTask?: Record<string, number[]>;
  loadAverage?: { before: number[]; after: number[] };
}

/** One target judged on a run: met is null when a figure it needs was not measured. */
export interface TargetVerdict {
  target: string;
  /** The figure this run measured, with its unit ('-' when not measured). */
  measured: string;
  /** What it had to be: ">= 30.1", "<= 12 ms". */
  bound: string;
  met: boolean | null;
  /** Why it could not be judged. */
  missing?: string;
}

export interface BenchReport {
  startedAt: string;
  seconds: number;
  machine: Record<string, unknown>;
  settings: Record<string, unknown>;
  systems: SystemResult[];
  figures: Record<string, Record<string, Spread>>;
  targets: TargetVerdict[];
}

/** Rows of the table; `system` puts another system's figure into kv2's column (a variant of kv2). */
export const ROWS: { key: string; label: string; system?: string }[] = [
  { key: 'a.tasksPerSecond', label: '(a) trivial tasks, 4 slots: tasks/s' },
  { key: 'a.tasksPerSecond', label: '(a) the same, kv2 with bubblewrap', system: 'kv2-bwrap' },
  { key: 'b.startP50', label: '(b) submit-to-start p50, ms' },
  { key: 'b.startP95', label: '(b) submit-to-start p95, ms' },
  { key: 'b.startP99', label: '(b) submit-to-start p99, ms' },
  { key: 'b.resultP50', label: '(b) submit-to-result p50, ms' },
  { key: 'b.resultP95', label: '(b) submit-to-result p95, ms' },
  { key: 'b.resultP99', label: '(b) submit-to-result p99, ms' },
  { key: 'c.tasksPerSecond', label: '(c) 64 KiB source+output: tasks/s' },
  { key: 'c.megabytesPerSecond', label: '(c) 64 KiB source+output: MB/s' },
  { key: 'a.tasksPerSecond', label: '(d) (a) on 3 judicators + 2 executors', system: 'kv2-cluster' },
  { key: 'b.resultP50', label: '(d) idle 3j+2e: submit-to-result p50, ms', system: 'kv2-cluster' },
  { key: 'e.nextStartMs', label: '(e) 3j+2e leader SIGKILL -> next task starts, ms', system: 'kv2-cluster' },
  { key: 'e.readyMs', label: '(e) judicator started again -> ready, ms', system: 'kv2-cluster' },
  { key: 'f.testsPerSecond', label: '(f) 100 submissions x 20 tests: tests/s' },
  { key: 'f.submissionsPerSecond', label: '(f) the same: submissions/s' },
];

/** The systems that get a column, in order; kv2's variants land in kv2's column (see ROWS). */
const COLUMNS = ['floor', 'kv2', 'bullmq', 'slurm'];
const KV2_VARIANTS = new Set(['kv2', 'kv2-bwrap', 'kv2-cluster']);

export function summarize(systems: SystemResult[]): Record<string, Record<string, Spread>> {
  const figures: Record<string, Record<string, Spread>> = {};
  for (const system of systems) {
    figures[system.key] = Object.fromEntries(Object.entries(system.runs).map(([key, values]) => [key, spread(values)]));
  }
  return figures;
}

function cellFor(figures: BenchReport['figures'], column: string, row: (typeof ROWS)[number]): Spread | undefined {
  if (row.system) return column === 'kv2' ? figures[row.system]?.[row.key] : undefined;
  return figures[column]?.[row.key];
}

function pad(text: string, width: number, right = false): string {
  return right ? text.padStart(width) : text.padEnd(width);
}

export function renderTable(report: BenchReport): string {
  const present = COLUMNS.filter((c) => report.systems.some((s) => s.key === c || (c === 'kv2' && KV2_VARIANTS.has(s.key))));
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
    const floor = report.figures.floor?.[row.key];
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
    const own = rows.filter(([label]) => label !== BENCH_CLIENT).reduce((sum, [, v]) => sum + v, 0);
    const width = Math.max(...rows.map(([l]) => l.length), 5);
    lines.push(`  ${system.name}: ${fmt(total)} in all, ${fmt(own)} without the benchmark client`);
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

const BENCH_CLIENT = 'benchmark client (this process)';

/** Median of a figure, or undefined when the run has none. */
function median(report: Omit<BenchReport, 'targets'>, system: string, key: string): number | undefined {
  const value = report.figures[system]?.[key]?.median;
  return value !== undefined && Number.isFinite(value) ? value : undefined;
}

/** Why a system's figures are missing, for "not measured". */
function absence(report: Omit<BenchReport, 'targets'>, system: string, key: string): string {
  const result = report.systems.find((s) => s.key === system);
  const name = result?.name ?? system;
  if (!result) return `${name} was not in this run (BENCH_SYSTEMS)`;
  if (result.skipped) return `${name} was not measured: ${result.skipped}`;
  return `${name} has no ${key} figure (${result.errors[0] ?? 'its runs failed'})`;
}

/**
 * `value` against `factor` x `reference` (or a fixed bound when reference is a number and factor 1).
 * `op` says which side passes.
 */
function judge(
  target: string,
  value: { figure: number | undefined; missing: string },
  bound: { figure: number | undefined; missing: string; factor: number },
  op: '>=' | '<=',
  unit: string,
): TargetVerdict {
  const missing = value.figure === undefined ? value.missing : bound.figure === undefined ? bound.missing : undefined;
  if (missing !== undefined) return { target, measured: '-', bound: '-', met: null, missing };
  const limit = bound.figure! * bound.factor;
  const met = op === '>=' ? value.figure! >= limit : value.figure! <= limit;
  return { target, measured: `${fmt(value.figure!)}${unit}`, bound: `${op} ${fmt(limit)}${unit}`, met };
}

const MB = 1024;

/** Issue 15's targets, judged on this run's medians. */
export function judgeTargets(report: Omit<BenchReport, 'targets'>): TargetVerdict[] {
  const figure = (system: string, key: string) => ({ figure: median(report, system, key), missing: absence(report, system, key) });
  const ratio = (system: string, key: string, factor: number) => ({ ...figure(system, key), factor });
  const fixed = (limit: number) => ({ figure: limit, missing: '', factor: 1 });
  const targets: TargetVerdict[] = [
    judge("(a) kv2 trivial tasks/s >= BullMQ's", figure('kv2', 'a.tasksPerSecond'), ratio('bullmq', 'a.tasksPerSecond', 1), '>=', ''),
    judge("(a) kv2 with bubblewrap tasks/s >= 0.8x BullMQ's", figure('kv2-bwrap', 'a.tasksPerSecond'), ratio('bullmq', 'a.tasksPerSecond', 0.8), '>=', ''),
    judge("(b) kv2 submit-to-start p50 <= 1.3x BullMQ's", figure('kv2', 'b.startP50'), ratio('bullmq', 'b.startP50', 1.3), '<=', ' ms'),
    judge("(b) kv2 submit-to-result p50 <= 1.3x BullMQ's", figure('kv2', 'b.resultP50'), ratio('bullmq', 'b.resultP50', 1.3), '<=', ' ms'),
    judge("(c) kv2 64 KiB tasks MB/s >= BullMQ's", figure('kv2', 'c.megabytesPerSecond'), ratio('bullmq', 'c.megabytesPerSecond', 1), '>=', ' MB/s'),
    judge("(d) 3j+2e tasks/s >= 0.8x standalone's", figure('kv2-cluster', 'a.tasksPerSecond'), ratio('kv2', 'a.tasksPerSecond', 0.8), '>=', ''),
    judge("(d) idle 3j+2e submit-to-result p50 <= 1.5x standalone's", figure('kv2-cluster', 'b.resultP50'), ratio('kv2', 'b.resultP50', 1.5), '<=', ' ms'),
  ];

  const kv2 = report.systems.find((s) => s.key === 'kv2');
  const cpuRows = Object.entries(kv2?.cpuPerTask ?? {}).filter(([label]) => label !== BENCH_CLIENT);
  const cpu = cpuRows.length ? cpuRows.reduce((sum, [, runs]) => sum + spread(runs).median, 0) : undefined;
  targets.push(judge('CPU per trivial task in (a), every kv2 process together (tasks\' commands not counted)', { figure: cpu, missing: absence(report, 'kv2', 'CPU') }, fixed(12), '<=', ' ms'));

  const idle = kv2?.memory?.idle;
  const standalone = idle?.length ? idle.reduce((sum, m) => sum + m.rssKb, 0) / MB : undefined;
  targets.push(judge('idle VmRSS of kv2 standalone, all its processes', { figure: standalone, missing: absence(report, 'kv2', 'memory') }, fixed(200), '<=', ' MB'));
  const cluster = report.systems.find((s) => s.key === 'kv2-cluster');
  const roles = cluster?.memory?.idle.length ? roleTotals(cluster.memory.idle, clusterRole) : undefined;
  const roleBounds: [string, number][] = [['judicator', 120], ['executor', 90], ['gateway', 90]];
  for (const [kind, limit] of roleBounds) {
    const matching = roles ? [...roles].filter(([role]) => role.startsWith(kind)) : [];
    if (matching.length === 0) {
      targets.push(judge(`idle VmRSS of a kv2 ${kind} role (all its processes)`, { figure: undefined, missing: absence(report, 'kv2-cluster', 'memory') }, fixed(limit), '<=', ' MB'));
    }
    for (const [role, t] of matching) {
      targets.push(judge(`idle VmRSS of kv2 ${role} role, ${t.processes} processes`, { figure: t.rssKb / MB, missing: '' }, fixed(limit), '<=', ' MB'));
    }
  }
  targets.push(judge('judicator start (again, after a SIGKILL) to ready', figure('kv2-cluster', 'e.readyMs'), fixed(2000), '<=', ' ms'));
  targets.push(judge('leader SIGKILL -> next task starts (3j+2e, idle)', figure('kv2-cluster', 'e.nextStartMs'), fixed(3000), '<=', ' ms'));
  return targets;
}

export function renderTargets(targets: BenchReport['targets']): string {
  const verdict = (t: TargetVerdict) => (t.met === null ? 'not measured' : t.met ? 'PASS' : 'MISS');
  const width = Math.max(...targets.map((t) => t.target.length));
  const lines = targets.map((t) =>
    t.met === null
      ? `  ${verdict(t).padEnd(12)}  ${t.target.padEnd(width)}  ${t.missing}`
      : `  ${verdict(t).padEnd(12)}  ${t.target.padEnd(width)}  ${t.measured.padStart(10)}  (${t.bound})`,
  );
  const passed = targets.filter((t) => t.met === true).length;
  const missed = targets.filter((t) => t.met === false).length;
  return [`targets (issue 15), judged on this run's medians: ${passed} PASS, ${missed} MISS, ${targets.length - passed - missed} not measured`, ...lines].join('\n');
}
