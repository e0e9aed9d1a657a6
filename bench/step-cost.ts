// `npx tsx bench/step-cost.ts` (a profiling aid, not part of `npm run bench` or `npm test`): where an
// executor's time per task goes on this machine. Runs the same trivial task (`date +%s%N`, empty compile
// command) many times through the executor's own TaskRun (src/executor/runner.ts: task dir laid out,
// `bash compile.sh`, `bash execute.sh`, dir removed) with the confinement the executor builds (as root:
// task users, cgroups, prlimit; sandbox none) and with the plain one (bash alone), next to bare spawns of
// the same shells. Prints medians; asserts nothing. Run as root for the full confinement.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createLogger } from '../src/common/logging';
import { findOnPath } from '../src/common/assets';
import { Cgroups } from '../src/executor/cgroups';
import { createConfinement, HostConfinement, PlainConfinement, type Confinement, type HostConfinementOptions } from '../src/executor/confinement';
import { TaskUsers } from '../src/executor/task-user';
import { TaskRun } from '../src/executor/runner';
import { packText } from '../src/task/codec';
import { TaskStatus, type Task } from '../src/task/types';
import { wallNs, msBetween } from './lib/clock';
import { percentile } from './lib/stats';

const RUNS = Number(process.env.STEP_COST_RUNS ?? 40);

function task(id: string): Task {
  return {
    id,
    user: 1,
    add_time: new Date().toISOString(),
    done: false,
    status: TaskStatus.PENDING,
    executor: null,
    report_time: new Date().toISOString(),
    retries: 0,
    result: null,
    compile: { source: Buffer.alloc(0), command: packText(''), timeout: 30 },
    execute: { input: packText(''), data: Buffer.alloc(0), command: packText('date +%s%N'), timeout: 30, standard: packText('') },
  };
}

function spawnOnce(argv: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    child.stdout.resume();
    child.stderr.resume();
    child.on('error', reject);
    child.on('close', () => resolve());
  });
}

async function timeSpawns(label: string, argv: string[]): Promise<void> {
  const ms: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t = performance.now();
    await spawnOnce(argv);
    ms.push(performance.now() - t);
  }
  console.log(`${label.padEnd(48)} p50 ${percentile(ms, 50).toFixed(1)} ms  p95 ${percentile(ms, 95).toFixed(1)} ms`);
}

async function timeTasks(label: string, confinement: Confinement, dataDir: string): Promise<void> {
  const logger = createLogger('step-cost', { maxBytes: 1e6, keep: 1, printToStdout: false, level: 'warn', dir: dataDir });
  const settings = { dataDir, outputLimit: 1 << 20, zipLimits: { maxBytes: 1 << 28, maxFiles: 10_000 }, taskMaxSize: 16_252_928, confinement };
  const total: number[] = [];
  const toStart: number[] = [];
  const compile: number[] = [];
  const execute: number[] = [];
  const cpuBefore = process.cpuUsage();
  for (let i = 0; i < RUNS; i++) {
    const id = `${Date.now().toString(16).padStart(8, '0').slice(-8)}${String(i).padStart(16, '0')}`;
    const began = wallNs();
    const run = new TaskRun(task(id), 0, settings, logger, () => undefined);
    await run.done;
    total.push(msBetween(began, wallNs()));
    const out = run.result?.execute_output;
    if (run.status !== TaskStatus.SUCCESS || !out) throw new Error(`${label}: task ended with status ${run.status}`);
    const started = BigInt((await import('../src/task/codec')).unpackText(out).trim());
    toStart.push(msBetween(began, started));
    compile.push(run.result!.compile?.wall_ms ?? NaN);
    execute.push(run.result!.execute?.wall_ms ?? NaN);
  }
  const cpu = process.cpuUsage(cpuBefore);
  const p = (v: number[]) => `${percentile(v, 50).toFixed(1)}`;
  console.log(`${label.padEnd(48)} task p50 ${p(total)} ms (to its command's start ${p(toStart)} ms; compile step ${p(compile)}, execute step ${p(execute)}); executor CPU ${((cpu.user + cpu.system) / 1000 / RUNS).toFixed(2)} ms/task`);
}

async function main(): Promise<void> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'kv2-step-cost-'));
  try {
    const script = path.join(root, 'execute.sh');
    fs.writeFileSync(script, 'date +%s%N\n');
    console.log(`step cost on ${os.cpus().length} x ${os.cpus()[0]?.model}, load ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}; ${RUNS} runs each`);
    await timeSpawns("spawn sh -c 'echo hello'", ['sh', '-c', 'echo hello']);
    await timeSpawns('spawn bash execute.sh (date)', ['bash', script]);
    await timeSpawns('spawn prlimit -- bash execute.sh', ['prlimit', '--nofile=1024', '--', 'bash', script]);
    await timeSpawns('spawn sh -c exec -> prlimit -> setpriv -> bash', ['sh', '-c', 'exec "$@"', 'x', 'prlimit', '--nofile=1024', '--', 'setpriv', '--reuid=0', '--regid=0', '--clear-groups', '--', 'bash', script]);

    const plainDir = path.join(root, 'plain');
    fs.mkdirSync(plainDir);
    await timeTasks('TaskRun, plain confinement (bash only)', new PlainConfinement(), plainDir);

    const logger = createLogger('step-cost', { maxBytes: 1e6, keep: 1, printToStdout: false, level: 'warn', dir: root });
    const limits = {
      defaults: { cpu_time: 0, memory: 2147483648, processes: 512, file_size: 1073741824, output: 1048576 },
      maxima: { cpu_time: 0, memory: 8589934592, processes: 4096, file_size: 4294967296, output: 8388608 },
    };
    // Each layer of the executor's confinement alone, then all of them as the executor builds them.
    const users = TaskUsers.resolve(null, 1, logger);
    const layers: [string, Partial<HostConfinementOptions>][] = [
      ['prlimit only', { prlimit: findOnPath('prlimit') }],
      ['task user (setpriv) only', { users, setpriv: users ? findOnPath('setpriv') : undefined }],
      ['cgroups only', { cgroups: Cgroups.detect('step-cost-layer', logger) }],
    ];
    for (const [label, options] of layers) {
      const dir = path.join(root, label.replace(/\W+/g, '-'));
      fs.mkdirSync(dir, { mode: 0o711 });
      const confinement = new HostConfinement({ limits, allowNetwork: false, ...options });
      try {
        await timeTasks(`TaskRun, ${label}`, confinement, dir);
      } finally {
        await confinement.close();
      }
    }
    const fullDir = path.join(root, 'full');
    fs.mkdirSync(fullDir, { mode: 0o711 });
    const full = await createConfinement(
      { userGroup: null, slots: 1, sandbox: 'none', allowNetwork: false, limits, executorName: 'step-cost', roleDir: root },
      logger,
    );
    try {
      await timeTasks(`TaskRun, executor's confinement${process.getuid?.() === 0 ? ' (root)' : ''}`, full, fullDir);
    } finally {
      await full.close?.();
    }
    const bwrapDir = path.join(root, 'bwrap');
    fs.mkdirSync(bwrapDir, { mode: 0o711 });
    const sandboxed = await createConfinement(
      { userGroup: null, slots: 1, sandbox: 'bwrap', allowNetwork: false, limits, executorName: 'step-cost', roleDir: root },
      logger,
    );
    try {
      await timeTasks(`TaskRun, the same with bwrap`, sandboxed, bwrapDir);
    } finally {
      await sandboxed.close?.();
    }
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
