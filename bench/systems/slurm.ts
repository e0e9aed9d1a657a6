// Slurm from Debian on this machine alone: munged (its own key and socket), slurmctld and slurmd
// (one node "bench" with as many CPUs as slots, one CPU per job), all in a temp dir on free ports with
// Slurm's default scheduler settings. A task is a batch job submitted with `sbatch` (the script on
// stdin; a payload task carries its source inside the script), whose script writes the command's output
// to a file and renames it into place when complete: the client holds the result when that file appears.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../../test/helpers/ports';
import { waitFor } from '../../test/helpers/wait';
import { onCleanup, tempDir } from '../lib/cleanup';
import { sleep, wallNs } from '../lib/clock';
import { readMemory, type ProcessMemory } from '../lib/memory';
import { PAYLOAD_FILE, shellCommand, type BenchSystem, type Held, type TaskSpec } from './system';

const COMMANDS = ['munged', 'mungekey', 'slurmctld', 'slurmd', 'sbatch', 'sinfo'];
/** Pause between looks for a result file when many tasks are being collected (ms). */
const BURST_POLL_MS = 2;
/** How long a result may take to appear once its file should be there (a job that vanished), ms. */
const RESULT_WAIT_MS = 600_000;

interface Daemon {
  name: string;
  child: ChildProcess;
  output: () => string;
}

export class SlurmSystem implements BenchSystem<string> {
  readonly name = 'Slurm';
  private next = 0;

  private constructor(
    private readonly dir: string,
    private readonly env: NodeJS.ProcessEnv,
    private readonly daemons: Daemon[],
  ) {}

  /** Why Slurm cannot be set up here, or undefined when it can be tried. */
  static unavailable(): string | undefined {
    if (process.getuid?.() !== 0) return 'slurmd must run as root to launch jobs; run the benchmark as root to include Slurm';
    const missing = COMMANDS.filter((c) => spawnSync('sh', ['-c', `command -v ${c}`], { stdio: 'ignore' }).status !== 0);
    return missing.length ? `not installed: ${missing.join(', ')} (apt-get install slurm-wlm munge)` : undefined;
  }

  static async start(slots: number): Promise<SlurmSystem> {
    const dir = tempDir('kv2-bench-slurm-');
    // munged wants the dir of its socket reachable by all, and not writable by others.
    fs.chmodSync(dir, 0o711);
    for (const sub of ['state', 'spool', 'results', 'jobs']) fs.mkdirSync(path.join(dir, sub));
    const key = path.join(dir, 'munge.key');
    const made = spawnSync('mungekey', ['--create', `--keyfile=${key}`], { encoding: 'utf8' });
    if (made.status !== 0) throw new Error(`mungekey failed: ${made.stderr}`);
    fs.chmodSync(key, 0o400);
    const socket = path.join(dir, 'munge.socket');
    const daemons: Daemon[] = [];
    const startDaemon = (name: string, args: string[], env: NodeJS.ProcessEnv = process.env) => {
      const child = spawn(name, args, { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
      let output = '';
      const keep = (chunk: Buffer) => {
        output = (output + chunk.toString()).slice(-20_000);
      };
      child.stdout!.on('data', keep);
      child.stderr!.on('data', keep);
      const daemon = { name, child, output: () => output };
      daemons.push(daemon);
      onCleanup(`stop ${name}`, () => stopDaemon(daemon));
      return daemon;
    };
    startDaemon('munged', ['--foreground', '--force', `--key-file=${key}`, `--socket=${socket}`, `--pid-file=${dir}/munged.pid`, `--log-file=${dir}/munged.log`, `--seed-file=${dir}/munged.seed`]);
    await waitFor(() => fs.existsSync(socket), { what: 'munged to create its socket', timeoutMs: 20_000 });

    const host = os.hostname().split('.')[0]!;
    const [ctldPort, slurmdPort] = [await freePort(), await freePort()];
    const conf = path.join(dir, 'slurm.conf');
    fs.writeFileSync(
      conf,
      [
        'ClusterName=bench',
        `SlurmctldHost=${host}(127.0.0.1)`,
        `SlurmctldPort=${ctldPort}`,
        `SlurmdPort=${slurmdPort}`,
        'AuthType=auth/munge',
        `AuthInfo=socket=${socket}`,
        'CredType=cred/munge',
        'SlurmUser=root',
        'SlurmdUser=root',
        `StateSaveLocation=${dir}/state`,
        `SlurmdSpoolDir=${dir}/spool`,
        `SlurmctldPidFile=${dir}/slurmctld.pid`,
        `SlurmdPidFile=${dir}/slurmd.pid`,
        `SlurmctldLogFile=${dir}/slurmctld.log`,
        `SlurmdLogFile=${dir}/slurmd.log`,
        // No cgroups: processes tracked by their parent, as the other systems do.
        'ProctrackType=proctrack/linuxproc',
        'TaskPlugin=task/none',
        'MpiDefault=none',
        'ReturnToService=2',
        'SelectType=select/cons_tres',
        'SelectTypeParameters=CR_CPU',
        'JobCompType=jobcomp/none',
        'AccountingStorageType=accounting_storage/none',
        'JobAcctGatherType=jobacct_gather/none',
        // The node has `slots` CPUs whatever the machine has: the same concurrency as the others.
        'SlurmdParameters=config_overrides',
        `NodeName=bench NodeHostname=${host} NodeAddr=127.0.0.1 CPUs=${slots} RealMemory=1000 State=UNKNOWN`,
        'PartitionName=bench Nodes=bench Default=YES MaxTime=INFINITE State=UP',
        '',
      ].join('\n'),
    );
    const env = { ...process.env, SLURM_CONF: conf };
    startDaemon('slurmctld', ['-D', '-c', '-f', conf], env);
    startDaemon('slurmd', ['-D', '-f', conf, '-N', 'bench'], env);
    const system = new SlurmSystem(dir, env, daemons);
    await waitFor(
      () => {
        const dead = daemons.find((d) => d.child.exitCode !== null);
        if (dead) throw new Error(`${dead.name} exited: ${dead.output()} ${system.logTail()}`);
        const state = spawnSync('sinfo', ['-h', '-o', '%T'], { env, encoding: 'utf8', timeout: 10_000 }).stdout.trim();
        return state === 'idle';
      },
      { what: 'the Slurm node to be idle', timeoutMs: 60_000, intervalMs: 250 },
    );
    return system;
  }

  private logTail(): string {
    return ['slurmctld.log', 'slurmd.log']
      .map((f) => path.join(this.dir, f))
      .filter((f) => fs.existsSync(f))
      .map((f) => fs.readFileSync(f, 'utf8').split('\n').slice(-5).join('\n'))
      .join('\n');
  }

  /** The job script: the command's output written next to its final name, then renamed into place. */
  private script(spec: TaskSpec, result: string): string {
    const lines = ['#!/bin/sh', 'set -e', 'work=$(mktemp -d)', 'cd "$work"'];
    if (spec.kind === 'payload') lines.push(`cat > ${PAYLOAD_FILE} <<'KV2_BENCH_EOF'`, spec.source.replace(/\n$/, ''), 'KV2_BENCH_EOF'); // the source ends with its newline
    lines.push(`${shellCommand(spec)} > ${result}.tmp`, `mv ${result}.tmp ${result}`, 'cd /', 'rm -rf "$work"', '');
    return lines.join('\n');
  }

  async submit(spec: TaskSpec): Promise<string> {
    const result = path.join(this.dir, 'results', `${++this.next}.out`);
    await new Promise<void>((resolve, reject) => {
      const child = spawn('sbatch', ['--parsable', '--output=/dev/null', `--error=${this.dir}/jobs/%j.err`, '--chdir=/'], { env: this.env, stdio: ['pipe', 'pipe', 'pipe'] });
      let output = '';
      child.stdout.on('data', (c: Buffer) => (output += c.toString()));
      child.stderr.on('data', (c: Buffer) => (output += c.toString()));
      child.on('error', reject);
      child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`sbatch failed (${code}): ${output.trim()}`))));
      child.stdin.end(this.script(spec, result));
    });
    return result;
  }

  /** Waits for each result file in order: one alone is looked for back to back, many every BURST_POLL_MS. */
  async collect(tickets: readonly Promise<string>[]): Promise<Held[]> {
    const held: Held[] = [];
    const alone = tickets.length === 1;
    for (const ticket of tickets) {
      const file = await ticket;
      const giveUp = Date.now() + RESULT_WAIT_MS;
      for (;;) {
        if (fs.existsSync(file)) {
          held.push({ output: fs.readFileSync(file, 'utf8'), heldNs: wallNs() });
          break;
        }
        if (Date.now() > giveUp) throw new Error(`no result in ${file} after ${RESULT_WAIT_MS / 1000} s: ${this.logTail()}`);
        if (alone) await new Promise((resolve) => setImmediate(resolve));
        else await sleep(BURST_POLL_MS);
      }
    }
    return held;
  }

  memory(): ProcessMemory[] {
    return this.daemons.flatMap((d) => {
      const m = d.child.pid === undefined ? undefined : readMemory(d.child.pid);
      return m ? [{ ...m, label: d.name }] : [];
    });
  }

  async stop(): Promise<void> {
    for (const daemon of [...this.daemons].reverse()) await stopDaemon(daemon);
  }
}

async function stopDaemon(daemon: Daemon): Promise<void> {
  const { child } = daemon;
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  await gone;
  clearTimeout(timer);
}
