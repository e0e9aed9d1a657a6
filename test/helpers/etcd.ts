// A bare, real etcd for tests that need one without a judicator (the task store, the change feed): started
// from KV2_ETCD_BINARY or /usr/bin/etcd in a temp dir on free loopback ports, with kv2's request limits,
// and stopped, reaped and removed when the test ends. It can be restarted on its data (same ports).
// With `tls` it serves both ports over mutual TLS with a cluster identity (src/pki/etcd-tls.ts).
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import https from 'node:https';
import { exited, spawnInGroup, stopChild } from '../../src/common/processes';
import { etcdTlsFlags } from '../../src/pki/etcd-tls';
import { readNodeFiles } from '../../src/pki/identity-files';
import { freePorts } from './ports';
import { waitFor } from './wait';

type AfterHook = { after: (fn: () => unknown) => void };

/** A judicator identity directory (ca.crt, node.pem with 127.0.0.1 among its hosts; crl.pem with `crl`). */
export interface EtcdTls {
  dir: string;
  crl?: boolean;
}

/** The etcd binary tests use, or undefined (with the reason) when there is none. */
export function etcdBinary(): { path: string } | { missing: string } {
  const fromEnv = process.env.KV2_ETCD_BINARY;
  if (fromEnv) return fs.existsSync(fromEnv) ? { path: fromEnv } : { missing: `KV2_ETCD_BINARY=${fromEnv} does not exist` };
  return fs.existsSync('/usr/bin/etcd') ? { path: '/usr/bin/etcd' } : { missing: 'no etcd: install etcd-server or set KV2_ETCD_BINARY' };
}

export class EtcdServer {
  private child: ChildProcess | undefined;
  private output = '';

  private constructor(
    private readonly binary: string,
    readonly dir: string,
    readonly clientPort: number,
    readonly peerPort: number,
    readonly tls: EtcdTls | undefined,
  ) {}

  /** Starts an etcd and registers its stop and its dir's removal for the end of the test. */
  static async start(hooks: AfterHook, options: { binary?: string; tls?: EtcdTls } = {}): Promise<EtcdServer> {
    const found = etcdBinary();
    const binary = options.binary ?? ('path' in found ? found.path : undefined);
    if (!binary) throw new Error('missing' in found ? found.missing : 'no etcd');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kv2-etcd-'));
    const [clientPort, peerPort] = await freePorts(2);
    const server = new EtcdServer(binary, dir, clientPort!, peerPort!, options.tls);
    hooks.after(async () => {
      await server.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    });
    await server.run();
    return server;
  }

  get endpoint(): string {
    return `${this.tls ? 'https' : 'http'}://127.0.0.1:${this.clientPort}`;
  }

  get log(): string {
    return this.output;
  }

  /** The etcd process id (undefined while stopped). */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  private async run(): Promise<void> {
    const peer = `${this.tls ? 'https' : 'http'}://127.0.0.1:${this.peerPort}`;
    const child = spawnInGroup(
      this.binary,
      [
        '--name', 'test',
        '--data-dir', path.join(this.dir, 'data'),
        '--listen-client-urls', this.endpoint,
        '--advertise-client-urls', this.endpoint,
        '--listen-peer-urls', peer,
        '--initial-advertise-peer-urls', peer,
        '--initial-cluster', `test=${peer}`,
        // As the judicator runs it (src/etcd/member.ts): batched transactions and 15.5 MiB tasks.
        '--max-txn-ops', '10000',
        '--max-request-bytes', String(16 * 1024 * 1024),
        '--logger', 'zap',
        '--log-outputs', 'stderr',
        ...(this.tls ? etcdTlsFlags(this.tls.dir, { crl: this.tls.crl }) : []),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.child = child;
    const keep = (chunk: Buffer) => {
      this.output = (this.output + chunk.toString()).slice(-100_000);
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    await waitFor(
      async () => {
        if (child.exitCode !== null || child.signalCode !== null) throw new Error(`etcd exited early:\n${this.output.slice(-4000)}`);
        try {
          if (this.tls) return (await this.tlsHealth()) === 'true';
          const response = await fetch(`${this.endpoint}/health`, { signal: AbortSignal.timeout(1_000) });
          return response.ok && ((await response.json()) as { health?: string }).health === 'true';
        } catch {
          return false;
        }
      },
      { what: `etcd on port ${this.clientPort}`, timeoutMs: 20_000 },
    );
  }

  /** `/health` over mutual TLS with the identity etcd itself uses (fetch cannot present a client certificate). */
  private tlsHealth(): Promise<string | undefined> {
    const files = readNodeFiles(this.tls!.dir)!;
    return new Promise((resolve, reject) => {
      const req = https.get(`${this.endpoint}/health`, { ca: files.caPem, cert: files.certPem, key: files.keyPem, agent: false, timeout: 1_000 }, (res) => {
        let text = '';
        res.on('data', (chunk: Buffer) => (text += chunk.toString()));
        res.on('end', () => resolve(res.statusCode === 200 ? (JSON.parse(text) as { health?: string }).health : undefined));
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', reject);
    });
  }

  /** Stops etcd (SIGTERM, then SIGKILL after a grace period) and reaps it. */
  async stop(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child) return;
    await stopChild(child, { signal: 'SIGTERM', graceMs: 5_000 });
    await exited(child);
  }

  /** Stops etcd and starts it again on the same data and ports. */
  async restart(): Promise<void> {
    await this.stop();
    await this.run();
  }
}
