// `npx tsx bench/step-cost.ts` (a profiling aid, not part of `npm run bench` or `npm test`): where an
// executor's time per task goes on this machine. Runs the same trivial task (`date +%s%N`, empty compile
// command) many times through the executor's own TaskRun (src/executor/runner.ts: task dir laid out,
// `bash execute.sh` started by the step launcher, dir removed) with each layer of the confinement alone
// (rlimits, task user, cgroups), with all of it as the executor builds it (as root: task users, cgroups,
// rlimits; sandbox none, then bwrap as the task user, then bwrap as root), and with the plain one (bash
// alone), next to bare spawns of the same shells from Node. Prints medians and the executor's CPU time
// per task (its own process plus the step launcher's); asserts nothing. Run as root for the full
// confinement.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createLogger, type Logger } from '../src/common/logging';
import { findOnPath } from '../src/common/assets';
import { Cgroups } from '../src/executor/cgroups';
import { createConfinement, HostConfinement, PlainConfinement, type Confinement } from '../src/executor/confinement';
import { StepLauncher } from '../src/executor/launcher';
import type { LimitSettings } from '../src/executor/limits';
import { TaskRun } from '../src/executor/runner';
import { TaskUsers } from '../src/executor/task-user';
import { packText, unpackText } from '../src/task/codec';
import { TaskStatus, type Task } from '../src/task/types';
import { wallNs, msBetween } from './lib/clock';
import { readCpuMs } from './lib/memory';
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
  const cpuBefore = process.cpuUsage();
  for (let i = 0; i < RUNS; i++) {
    const t = performance.now();
    await spawnOnce(argv);
    ms.push(performance.now() - t);
  }
  const cpu = process.cpuUsage(cpuBefore);
  console.log(`${label.padEnd(48)} p50 ${percentile(ms, 50).toFixed(1)} ms  p95 ${percentile(ms, 95).toFixed(1)} ms; this process's CPU ${((cpu.user + cpu.system) / 1000 / RUNS).toFixed(2)} ms/spawn`);
}

/** The same bash started by the step launcher, nothing else around it. */
async function timeLaunches(label: string, argv: string[], logger: Logger): Promise<void> {
  const launcher = new StepLauncher(logger);
  await launcher.start();
  const ms: number[] = [];
  const cpuBefore = process.cpuUsage();
  const launcherBefore = readCpuMs(launcher.pid!);
  try {
    for (let i = 0; i < RUNS; i++) {
      const t = performance.now();
      const step = launcher.launch({ argv, cwd: '/', env: { PATH: process.env.PATH }, stdinFile: null, outputLimit: 1 << 20 }, { stdout: () => undefined, stderr: () => undefined });
      await step.closed;
      ms.push(performance.now() - t);
    }
    const cpu = process.cpuUsage(cpuBefore);
    const own = (cpu.user + cpu.system) / 1000 / RUNS;
    const theirs = (readCpuMs(launcher.pid!) - launcherBefore) / RUNS;
    console.log(`${label.padEnd(48)} p50 ${percentile(ms, 50).toFixed(1)} ms  p95 ${percentile(ms, 95).toFixed(1)} ms; CPU ${(own + theirs).toFixed(2)} ms/step (this process ${own.toFixed(2)}, launcher ${theirs.toFixed(2)})`);
  } finally {
    await launcher.close();
  }
}

async function timeTasks(label: string, confinement: Confinement & { launcherPid?: number }, dataDir: string): Promise<void> {
  const logger = createLogger('step-cost', { maxBytes: 1e6, keep: 1, printToStdout: false, level: 'warn', dir: dataDir });
  const settings = { dataDir, outputLimit: 1 << 20, zipLimits: { maxBytes: 1 << 28, maxFiles: 10_000 }, taskMaxSize: 16_252_928, confinement };
  const total: number[] = [];
  const toStart: number[] = [];
  const execute: number[] = [];
  const run = async (i: number) => {
    const id = `${Date.now().toString(16).padStart(8, '0').slice(-8)}${String(i).padStart(16, '0')}`;
    const began = wallNs();
    const taskRun = new TaskRun(task(id), 0, settings, logger, () => undefined);
    await taskRun.done;
    const out = taskRun.result?.execute_output;
    if (taskRun.status !== TaskStatus.SUCCESS || !out) throw new Error(`${label}: task ended with status ${taskRun.status}: ${unpackText(taskRun.result?.execute_error)}`);
    return { began, ended: wallNs(), started: BigInt(unpackText(out).trim()), wall: taskRun.result!.execute?.wall_ms ?? NaN };
  };
  await run(-1); // the step launcher started, the slot's next cgroup made ahead, code paths warm
  const cpuBefore = process.cpuUsage();
  const launcherPid = confinement.launcherPid;
  const launcherBefore = launcherPid ? readCpuMs(launcherPid) : 0;
  for (let i = 0; i < RUNS; i++) {
    const { began, ended, started, wall } = await run(i);
    total.push(msBetween(began, ended));
    toStart.push(msBetween(began, started));
    execute.push(wall);
  }
  const cpu = process.cpuUsage(cpuBefore);
  const own = (cpu.user + cpu.system) / 1000 / RUNS;
  const theirs = launcherPid ? (readCpuMs(launcherPid) - launcherBefore) / RUNS : 0;
  const p = (v: number[]) => `${percentile(v, 50).toFixed(1)}`;
  console.log(
    `${label.padEnd(48)} task p50 ${p(total)} ms (to its command's start ${p(toStart)} ms; execute step ${p(execute)}); ` +
      `executor CPU ${(own + theirs).toFixed(2)} ms/task (its process ${own.toFixed(2)}, launcher ${theirs.toFixed(2)})`,
  );
}

const LIMITS: LimitSettings = {
  defaults: { cpu_time: 0, memory: 2147483648, processes: 512, file_size: 1073741824, output: 1048576 },
  maxima: { cpu_time: 0, memory: 8589934592, processes: 4096, file_size: 4294967296, output: 8388608 },
};

async function main(): Promise<void> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'kv2-step-cost-'));
  // Searchable by the task users, as an executor's work dir under /var/lib is.
  fs.chmodSync(root, 0o755);
  const logger = createLogger('step-cost', { maxBytes: 1e6, keep: 1, printToStdout: false, level: 'warn', dir: root });
  const dir = (name: string, mode = 0o711) => {
    const made = path.join(root, name);
    fs.mkdirSync(made, { mode });
    return made;
  };
  try {
    const script = path.join(root, 'execute.sh');
    fs.writeFileSync(script, 'date +%s%N\n');
    const bash = findOnPath('bash')!;
    console.log(`step cost on ${os.cpus().length} x ${os.cpus()[0]?.model}, load ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}; ${RUNS} runs each`);
    await timeSpawns("Node spawn sh -c 'echo hello'", ['sh', '-c', 'echo hello']);
    await timeSpawns('Node spawn bash execute.sh (date)', [bash, script]);
    await timeLaunches('step launcher: bash execute.sh (date)', [bash, script], logger);

    const plain = new PlainConfinement(logger);
    try {
      await timeTasks('TaskRun, plain confinement (bash only)', plain, dir('plain', 0o700));
    } finally {
      await plain.close();
    }

    // Each layer of the executor's confinement alone, then all of them as the executor builds them.
    const users = TaskUsers.resolve(null, 1, logger);
    const layers: [string, Omit<ConstructorParameters<typeof HostConfinement>[0], 'launcher' | 'limits' | 'allowNetwork'>][] = [
      ['rlimits only', {}],
      ['task user only', { users }],
      ['cgroups only', { cgroups: Cgroups.detect('step-cost-layer', logger) }],
    ];
    for (const [label, options] of layers) {
      const confinement = new HostConfinement({ limits: LIMITS, allowNetwork: false, launcher: new StepLauncher(logger), bash, ...options });
      try {
        await timeTasks(`TaskRun, ${label}`, confinement, dir(label.replace(/\W+/g, '-')));
      } finally {
        await confinement.close();
      }
    }
    const asRoot = process.getuid?.() === 0;
    const variants: [string, 'none' | 'bwrap', boolean][] = [
      [`executor's confinement${asRoot ? ' (root)' : ''}, no sandbox`, 'none', false],
      ['the same with bwrap', 'bwrap', false],
      ...(asRoot ? [['the same with bwrap as root (closed work dir)', 'bwrap', true] as [string, 'bwrap', boolean]] : []),
    ];
    for (const [label, sandbox, closed] of variants) {
      // A role dir whose parent the task users cannot search makes bwrap run as root, setpriv inside.
      const parent = dir(`${sandbox}-${closed ? 'closed' : 'open'}`, closed ? 0o700 : 0o755);
      const roleDir = path.join(parent, 'executor');
      const dataDir = path.join(roleDir, 'data', 'main');
      fs.mkdirSync(dataDir, { recursive: true, mode: 0o711 });
      const confinement = await createConfinement(
        { userGroup: null, slots: 1, sandbox, allowNetwork: false, limits: LIMITS, executorName: 'step-cost', roleDir, dataDir },
        logger,
      );
      try {
        await timeTasks(`TaskRun, ${label}`, confinement, dataDir);
      } finally {
        await confinement.close();
      }
    }
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
