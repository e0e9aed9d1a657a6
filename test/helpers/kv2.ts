// Running the built `./kv2` in tests: a node (judicator, executor, gateway, standalone) in its own temp
// work dir on free loopback ports, stopped and reaped when the test ends, with its output kept for the
// failure message.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePorts } from './ports';
import { processesMentioning } from './process-table';
import { waitFor } from './wait';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** The executable under test; the test command builds it first. */
export function kv2Binary(): string {
  const binary = process.env.KV2_BINARY || path.join(REPO_ROOT, 'kv2');
  if (!fs.existsSync(binary)) throw new Error(`${binary} does not exist: run npm run build first (npm test does)`);
  return binary;
}

export interface RunResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs kv2 to completion (for commands such as --help, maintain, backup). */
export function runKv2(args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number } = {}): RunResult {
  const result = spawnSync(kv2Binary(), args, {
    cwd: options.cwd,
    env: { ...process.env, ...options.env },
    input: options.input,
    encoding: 'utf8',
    timeout: options.timeoutMs ?? 60_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

export interface JudicatorPorts {
  peer: number;
  client: number;
  rpc: number;
}

export async function judicatorPorts(): Promise<JudicatorPorts> {
  const [peer, client, rpc] = await freePorts(3);
  return { peer: peer!, client: client!, rpc: rpc! };
}

export function judicatorPortFlags(ports: JudicatorPorts): string[] {
  return [
    '--etcd-listen-peer-port', String(ports.peer),
    '--etcd-listen-client-port', String(ports.client),
    '--main-listen-port', String(ports.rpc),
    '--etcd-listen-address', '127.0.0.1',
    '--etcd-advertise-address', '127.0.0.1',
    '--main-listen-address', '127.0.0.1',
    '--main-advertise-address', '127.0.0.1',
  ];
}

type AfterHook = { after: (fn: () => unknown) => void };

/** A kv2 role process (the supervisor) started by a test. */
export class Kv2Node {
  readonly process: ChildProcess;
  private output = '';

  constructor(
    readonly workDir: string,
    readonly args: string[],
    options: { env?: NodeJS.ProcessEnv; binary?: string; cwd?: string } = {},
  ) {
    this.process = spawn(options.binary ?? kv2Binary(), [...args, '--work-dir', workDir], {
      cwd: options.cwd ?? workDir,
      env: { ...process.env, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const keep = (chunk: Buffer) => {
      this.output = (this.output + chunk.toString()).slice(-200_000);
    };
    this.process.stdout!.on('data', keep);
    this.process.stderr!.on('data', keep);
  }

  get log(): string {
    return this.output;
  }

  get exited(): boolean {
    return this.process.exitCode !== null || this.process.signalCode !== null;
  }

  /** Resolves with the exit code (or signal) of the supervisor. */
  waitExit(timeoutMs = 60_000): Promise<number | string> {
    if (this.exited) return Promise.resolve(this.process.exitCode ?? this.process.signalCode!);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`kv2 did not exit within ${timeoutMs} ms\n${this.tail()}`)), timeoutMs);
      this.process.once('exit', (code, signal) => {
        clearTimeout(timer);
        resolve(code ?? signal!);
      });
    });
  }

  /** Stops the node (SIGINT by default) and waits for it; kills whatever it left behind. */
  async stop(signal: NodeJS.Signals = 'SIGINT', timeoutMs = 60_000): Promise<number | string> {
    if (!this.exited) this.process.kill(signal);
    try {
      return await this.waitExit(timeoutMs);
    } finally {
      killLeftovers(this.workDir);
    }
  }

  tail(lines = 40): string {
    return this.output.split('\n').slice(-lines).join('\n');
  }
}

/** Last resort after a test: SIGKILL anything still running from `workDir` (and say so). */
export function killLeftovers(workDir: string): number {
  const leftovers = processesMentioning(workDir);
  for (const p of leftovers) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  return leftovers.length;
}

/** Starts a node and registers its stop (and leftover sweep) for the end of the test. */
export function startNode(hooks: AfterHook, workDir: string, args: string[], options: { env?: NodeJS.ProcessEnv; binary?: string; cwd?: string } = {}): Kv2Node {
  const node = new Kv2Node(workDir, args, options);
  hooks.after(async () => {
    await node.stop('SIGINT').catch(() => node.stop('SIGKILL'));
  });
  return node;
}

/**
 * GET an open route of a judicator's RPC port (`/ping`, `/health`: they need no certificate) over HTTPS,
 * without checking the server's certificate: a liveness probe, as a load balancer makes one.
 */
export function pingJudicator(port: number, route = '/ping', host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const request = https.get({ host, port, path: route, rejectUnauthorized: false, agent: false, timeout: 1_000 }, (response) => {
      response.resume();
      resolve(response.statusCode === 200);
    });
    request.on('timeout', () => request.destroy(new Error('timeout')));
    request.on('error', () => resolve(false));
  });
}

/** A judicator is ready when it is registered in etcd (its /health says so). */
export function judicatorHealthy(port: number, host = '127.0.0.1'): Promise<boolean> {
  return pingJudicator(port, '/health', host);
}

export async function waitForJudicator(node: Kv2Node, port: number, timeoutMs = 30_000, host = '127.0.0.1'): Promise<void> {
  await waitFor(
    async () => {
      if (node.exited) throw new Error(`kv2 exited early:\n${node.tail()}`);
      return judicatorHealthy(port, host);
    },
    { what: `the judicator on ${host}:${port}`, timeoutMs },
  );
}

export function readPid(file: string): number | undefined {
  try {
    const pid = Number(fs.readFileSync(file, 'utf8').trim());
    return pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

export function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    const state = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0];
    return state !== 'Z';
  } catch {
    return false;
  }
}
