// `npm run bench` (never part of `npm test`): kv2 against what a user would pick instead, on this machine,
// in one run (issue 9). Starts each system on loopback in turn — the floor (a plain Node loop spawning
// the command), BullMQ on Debian's Redis (appendfsync always), kv2 standalone (etcd store), kv2 as 3
// judicators + 2 executors + a gateway, and Slurm (slurmctld + slurmd + munged) — runs the same workloads
// (workloads.ts) BENCH_RUNS times each, stops everything, prints one table with the targets, and saves it
// all as JSON under bench/results/. Bounded in time; every process and temp dir is cleaned up, on
// failure and Ctrl-C too. Settings (environment): see SETTINGS below and docs/benchmarks.md.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT } from '../test/helpers/kv2';
import { interrupted, runWithCleanup, tempDir } from './lib/cleanup';
import { sleep } from './lib/clock';
import { PeakMemory, type ProcessMemory } from './lib/memory';
import { judgeTargets, renderCpu, renderMemory, renderTable, renderTargets, summarize, type BenchReport, type SystemResult } from './lib/report';
import { loadIoredis } from './lib/ioredis';
import { ensurePackages, kv2Binary } from './lib/setup';
import { BullmqSystem } from './systems/bullmq';
import { FloorSystem } from './systems/floor';
import { Kv2System } from './systems/kv2';
import { SlurmSystem } from './systems/slurm';
import type { BenchSystem } from './systems/system';
import { judgedBurst, payloadBurst, sequential, trivialBurst, warmUp } from './workloads';

function numberSetting(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name}=${raw} is not a positive number`);
  return value;
}

const ALL_SYSTEMS = ['floor', 'bullmq', 'kv2', 'kv2-bwrap', 'kv2-cluster', 'slurm'];

const SETTINGS = {
  /** Runs of every workload; each figure is their median (with min and max). */
  runs: Math.round(numberSetting('BENCH_RUNS', 3)),
  /** Multiplies the task counts (0.1 for a quick look). */
  scale: numberSetting('BENCH_SCALE', 1),
  /** Task slots: the concurrency of every system. */
  slots: Math.round(numberSetting('BENCH_SLOTS', 4)),
  /** Submissions open at once in the bursts (a, c, d): "submitted at once" through a client's connection pool. */
  inFlight: Math.round(numberSetting('BENCH_IN_FLIGHT', 64)),
  /** Systems to measure, comma-separated. */
  systems: (process.env.BENCH_SYSTEMS ?? ALL_SYSTEMS.join(',')).split(',').map((s) => s.trim()).filter(Boolean),
  /**
   * Slurm's share of the task counts: with its default scheduler a job starts a second or more after the
   * previous one ends, so 1000 tasks would take over ten minutes a run. Its rates stay comparable.
   */
  slurmScale: numberSetting('BENCH_SLURM_SCALE', 0.1),
  /** Longest one workload run may take before it counts as failed, seconds. */
  workloadSeconds: numberSetting('BENCH_WORKLOAD_SECONDS', 300),
  /** Longest the whole benchmark may take, seconds; then it cleans up and exits 1. */
  maxSeconds: numberSetting('BENCH_MAX_SECONDS', 3600),
  /** Pause before each workload so that it starts on an idle system, ms. */
  settleMs: numberSetting('BENCH_SETTLE_MS', 1000),
  /** Pause after a system started before its idle memory is read, ms. */
  idleSettleMs: numberSetting('BENCH_IDLE_SETTLE_MS', 5000),
  /** How often memory is sampled under load, ms. */
  memorySampleMs: numberSetting('BENCH_MEMORY_SAMPLE_MS', 250),
};

type Counts = { trivial: number; sequential: number; payload: number; judged: number };

function counts(scale: number): Counts {
  return {
    trivial: Math.max(1, Math.round(1000 * scale)),
    sequential: Math.max(1, Math.round(200 * scale)),
    payload: Math.max(1, Math.round(200 * scale)),
    // Issue 17: submissions of JUDGED_TESTS tests each.
    judged: Math.max(1, Math.round(100 * scale)),
  };
}

const COUNTS = counts(SETTINGS.scale);

const NAMES: Record<string, string> = { floor: 'floor', bullmq: 'BullMQ', kv2: 'kv2', 'kv2-bwrap': 'kv2 (bwrap)', 'kv2-cluster': 'kv2 3j+2e', slurm: 'Slurm' };

/** (a) trivial burst, (b) sequential latency, (c) 64 KiB payloads, (e) leader failover (a cluster's only), (f) judged submissions of 20 tests. */
type Workload = 'a' | 'b' | 'c' | 'e' | 'f';

function machine(): Record<string, unknown> {
  const osRelease = fs.existsSync('/etc/os-release') ? /PRETTY_NAME="?([^"\n]*)/.exec(fs.readFileSync('/etc/os-release', 'utf8'))?.[1] : undefined;
  const version = (command: string, args: string[]) => {
    try {
      return execFileSync(command, args, { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'ignore'] }).split('\n')[0]!.trim();
    } catch {
      return undefined;
    }
  };
  return {
    cpu: os.cpus()[0]?.model,
    cpus: os.cpus().length,
    memoryGiB: Number((os.totalmem() / 2 ** 30).toFixed(1)),
    os: osRelease,
    kernel: os.release(),
    node: process.version,
    redis: version('redis-server', ['--version']),
    slurm: version('slurmctld', ['-V']),
    etcd: version('/usr/bin/etcd', ['--version']),
    loadAverageAtStart: os.loadavg().map((l) => Number(l.toFixed(2))),
  };
}

/** Every workload of one system, SETTINGS.runs times, with its memory idle and at the peak under load. */
async function measure(key: string, start: () => Promise<BenchSystem>, workloads: Workload[], n: Counts = COUNTS): Promise<SystemResult> {
  const result: SystemResult = { key, name: NAMES[key] ?? key, errors: [], runs: {}, counts: n, loadAverage: { before: os.loadavg(), after: [] } };
  const deadlineMs = SETTINGS.workloadSeconds * 1000;
  const record = (prefix: string, figures: object) => {
    for (const [name, value] of Object.entries(figures)) {
      if (name === 'seconds' || (name === 'megabytesPerSecond' && prefix !== 'c') || (name === 'submissionsPerSecond' && prefix !== 'f')) continue;
      (result.runs[`${prefix}.${name}`] ??= []).push(value as number);
    }
  };
  console.log(`\n== ${result.name}`);
  const startedAt = Date.now();
  let system: BenchSystem | undefined;
  try {
    system = await start();
    result.startSeconds = (Date.now() - startedAt) / 1000;
    console.log(`   started in ${result.startSeconds.toFixed(1)} s`);
    let peak: PeakMemory | undefined;
    if (system.memory) {
      await sleep(SETTINGS.idleSettleMs);
      result.memory = { idle: system.memory(), load: [] };
      peak = new PeakMemory(() => system!.memory!());
    }
    await warmUp(system, deadlineMs, workloads.includes('f'));
    for (let run = 1; run <= SETTINGS.runs; run++) {
      for (const workload of workloads) {
        if (interrupted()) throw new Error('interrupted');
        await sleep(SETTINGS.settleMs);
        const what = `run ${run}/${SETTINGS.runs} (${workload})`;
        const cpuBefore = workload === 'a' ? cpuSnapshot(system) : undefined;
        try {
          if (workload === 'a' || workload === 'c') peak?.start(SETTINGS.memorySampleMs);
          const figures =
            workload === 'a'
              ? await trivialBurst(system, n.trivial, SETTINGS.inFlight, deadlineMs)
              : workload === 'b'
                ? await sequential(system, n.sequential, deadlineMs)
                : workload === 'c'
                  ? await payloadBurst(system, n.payload, SETTINGS.inFlight, deadlineMs)
                  : workload === 'f'
                    ? await judgedBurst(system, n.judged, SETTINGS.inFlight, deadlineMs)
                    : await system.failover!();
          record(workload, figures);
          if (cpuBefore) {
            for (const [label, ms] of cpuSnapshot(system)) {
              (result.cpuPerTask ??= {})[label] ??= [];
              result.cpuPerTask[label]!.push((ms - (cpuBefore.get(label) ?? 0)) / n.trivial);
            }
          }
          console.log(`   ${what}: ${Object.entries(figures).map(([k, v]) => `${k} ${(v as number).toFixed(2)}`).join(', ')}`);
        } catch (error) {
          const message = `${what}: ${error instanceof Error ? error.message : String(error)}`;
          result.errors.push(message);
          console.log(`   ${message}`);
        } finally {
          if (peak && result.memory) result.memory.load = mergePeaks(result.memory.load, peak.stop());
        }
      }
    }
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    result.errors.push(message);
    console.log(`   failed: ${message}`);
  } finally {
    await system?.stop().catch((error) => result.errors.push(`stopping: ${error instanceof Error ? error.message : String(error)}`));
    result.loadAverage!.after = os.loadavg();
  }
  return result;
}

/** CPU time used so far (ms) by the benchmark client (this process) and by each of the system's processes. */
function cpuSnapshot(system: BenchSystem): Map<string, number> {
  const usage = process.cpuUsage();
  const snapshot = new Map<string, number>([['benchmark client (this process)', (usage.user + usage.system) / 1000]]);
  for (const p of system.memory?.() ?? []) snapshot.set(p.label, p.cpuMs);
  return snapshot;
}

/** Why kv2's executor could not sandbox its tasks with bubblewrap here, or undefined. */
function bwrapProblem(): string | undefined {
  const probe = spawnSync('bwrap', ['--unshare-pid', '--unshare-net', '--ro-bind', '/', '/', '--proc', '/proc', '--dev', '/dev', 'true'], { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8', timeout: 10_000 });
  if (probe.error) return `bwrap (bubblewrap) cannot run: ${probe.error.message}`;
  return probe.status === 0 ? undefined : `bwrap does not work here: ${probe.stderr.trim().split('\n')[0]}`;
}

/** Why BullMQ's Redis client cannot be loaded, or undefined. */
function ioredisProblem(): string | undefined {
  try {
    loadIoredis();
    return undefined;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}

function mergePeaks(a: ProcessMemory[], b: ProcessMemory[]): ProcessMemory[] {
  const merged = new Map(a.map((m) => [m.label, m]));
  for (const m of b) {
    const old = merged.get(m.label);
    merged.set(m.label, old ? { ...m, rssKb: Math.max(old.rssKb, m.rssKb), anonKb: Math.max(old.anonKb, m.anonKb), pssKb: Math.max(old.pssKb, m.pssKb) } : m);
  }
  return [...merged.values()];
}

async function main(): Promise<number> {
  const began = Date.now();
  const unknown = SETTINGS.systems.filter((s) => !ALL_SYSTEMS.includes(s));
  if (unknown.length) throw new Error(`BENCH_SYSTEMS names unknown systems: ${unknown.join(', ')} (known: ${ALL_SYSTEMS.join(', ')})`);
  console.log(`bench: ${SETTINGS.runs} runs; (a) ${COUNTS.trivial} trivial tasks, (b) ${COUNTS.sequential} sequential, (c) ${COUNTS.payload} x 64 KiB, (f) ${COUNTS.judged} x 20 tests; ${SETTINGS.slots} slots; systems ${SETTINGS.systems.join(', ')}`);

  const wants = (key: string) => SETTINGS.systems.includes(key);
  const packageProblems = ensurePackages({
    ...(wants('bullmq') ? { 'redis-server': 'redis-server' } : {}),
    ...(wants('slurm') ? { 'slurm-wlm': 'slurmctld', 'slurmd': 'slurmd', munge: 'munged' } : {}),
  });
  const kv2 = wants('kv2') || wants('kv2-bwrap') || wants('kv2-cluster') ? kv2Binary() : undefined;
  if (kv2) process.env.KV2_BINARY = kv2.path; // the test helpers that start cluster nodes read it
  const info = machine();
  const tasksRoot = tempDir('kv2-bench-floor-');

  const systems: SystemResult[] = [];
  const skip = (key: string, reason: string) => {
    console.log(`\n== ${NAMES[key]}: not measured: ${reason}`);
    systems.push({ key, name: NAMES[key]!, skipped: reason, errors: [], runs: {} });
  };
  for (const key of SETTINGS.systems) {
    if (interrupted()) break;
    if (key === 'floor') systems.push(await measure(key, async () => new FloorSystem(SETTINGS.slots, tasksRoot), ['a', 'b', 'c', 'f']));
    if (key === 'bullmq') {
      const missing = packageProblems.get('redis-server') ?? ioredisProblem();
      if (missing) skip(key, missing);
      else systems.push(await measure(key, () => BullmqSystem.start(SETTINGS.slots), ['a', 'b', 'c']));
    }
    if (key === 'kv2') systems.push(await measure(key, () => Kv2System.standalone(kv2!.path, SETTINGS.slots), ['a', 'b', 'c', 'f']));
    if (key === 'kv2-bwrap') {
      const problem = bwrapProblem();
      if (problem) skip(key, problem);
      else systems.push(await measure(key, () => Kv2System.standalone(kv2!.path, SETTINGS.slots, 'bwrap'), ['a']));
    }
    if (key === 'kv2-cluster') systems.push(await measure(key, () => Kv2System.cluster(SETTINGS.slots), ['a', 'b', 'e']));
    if (key === 'slurm') {
      const problem = ['slurm-wlm', 'slurmd', 'munge'].map((p) => packageProblems.get(p)).find(Boolean) ?? SlurmSystem.unavailable();
      if (problem) skip(key, problem);
      else systems.push(await measure(key, () => SlurmSystem.start(SETTINGS.slots), ['a', 'b', 'c'], counts(SETTINGS.scale * SETTINGS.slurmScale)));
    }
  }

  if (interrupted()) {
    console.log('bench: interrupted; nothing saved');
    return 130;
  }
  const partial = {
    startedAt: new Date(began).toISOString(),
    seconds: Math.round((Date.now() - began) / 1000),
    machine: { ...info, loadAverageAtEnd: os.loadavg().map((l) => Number(l.toFixed(2))) },
    settings: { ...SETTINGS, counts: COUNTS, kv2Binary: kv2?.path, kv2Built: kv2?.built },
    systems,
    figures: summarize(systems),
  };
  const report: BenchReport = { ...partial, targets: judgeTargets(partial) };

  const m = report.machine;
  console.log(`\nkv2 benchmark, ${report.startedAt}: ${m.cpus} x ${m.cpu}, ${m.memoryGiB} GiB, ${m.os}, Node ${m.node}; load average ${JSON.stringify(m.loadAverageAtStart)} at start, ${JSON.stringify(m.loadAverageAtEnd)} at end`);
  console.log(`figures: median [min-max] of ${SETTINGS.runs} runs, then the ratio to the floor\n`);
  console.log(renderTable(report));
  for (const s of systems) {
    if (s.skipped) console.log(`${s.name}: not measured: ${s.skipped}`);
    for (const e of s.errors) console.log(`${s.name}: ${e}`);
  }
  console.log(`\n${renderCpu(report)}\n\n${renderMemory(report)}\n\n${renderTargets(report.targets)}`);

  const dir = path.join(REPO_ROOT, 'bench', 'results');
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `bench-${report.startedAt.replace(/[:.]/g, '-')}.json`);
  fs.writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
  fs.copyFileSync(file, path.join(dir, 'latest.json'));
  console.log(`\nsaved ${path.relative(REPO_ROOT, file)} (and bench/results/latest.json); took ${report.seconds} s`);
  return systems.some((s) => s.errors.length > 0) ? 1 : 0;
}

runWithCleanup(main, SETTINGS.maxSeconds);
