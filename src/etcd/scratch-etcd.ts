// A throwaway, private etcd serving one snapshot file: `etcdctl snapshot restore` into a scratch dir, etcd
// started on free loopback ports, a client handed to the caller, then everything stopped and removed.
// `kv2 backup` reads its task export from it, so the export is exactly the snapshot's data (same
// revision) and the snapshot is proven restorable before the backup is called complete.
import type { ChildProcess } from 'node:child_process';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { Etcd3 } from 'etcd3';
import { resolveProgram } from '../common/assets';
import { ConfigError, UnavailableError, describeError } from '../common/errors';
import { exited, forEachLine, sleep, spawnInGroup, stopChild } from '../common/processes';
import { createEtcdClient } from './client';
import { DEFAULT_MAX_REQUEST_BYTES, DEFAULT_QUOTA_BACKEND_BYTES, MAX_TXN_OPS } from './server-settings';

/** How long the scratch etcd gets to answer after it starts (it loads the whole snapshot). */
export const SNAPSHOT_ETCD_START_TIMEOUT_MS = 60_000;
/** Grace period of its stop (SIGTERM, then SIGKILL of its group). */
const STOP_GRACE_MS = 10_000;
/** Attempts with new ports when a port picked as free was taken before etcd bound it. */
const START_ATTEMPTS = 3;
/** As the judicator runs etcd: the snapshot must fit, and the store's transactions must pass. */
const QUOTA_BACKEND_BYTES = DEFAULT_QUOTA_BACKEND_BYTES;
const MAX_REQUEST_BYTES = DEFAULT_MAX_REQUEST_BYTES;

/** etcdctl (embedded, or the machine's): restoring and reading snapshots need it. */
export function etcdctlProgram(): string {
  const etcdctl = resolveProgram('etcdctl');
  if (!etcdctl) throw new ConfigError('this needs etcdctl, and this kv2 embeds none and none is installed: install etcd-client or set KV2_ETCDCTL_BINARY');
  return etcdctl;
}

/** A loopback port nobody listens on now (the OS's pick), for the private servers of backup and restore. */
export async function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/**
 * Runs `use` with a client of a private etcd holding `snapshotFile`'s data; `scratchDir` (created, and
 * removed afterwards whatever happens) holds its data dir.
 */
export async function withSnapshotEtcd<T>(snapshotFile: string, scratchDir: string, use: (client: Etcd3) => Promise<T>): Promise<T> {
  const etcd = resolveProgram('etcd');
  if (!etcd) throw new ConfigError('reading the snapshot needs etcd, and this kv2 embeds none and none is installed: install etcd-server or set KV2_ETCD_BINARY');
  fs.rmSync(scratchDir, { recursive: true, force: true });
  fs.mkdirSync(scratchDir, { recursive: true });
  try {
    let lastError: unknown;
    for (let attempt = 1; attempt <= START_ATTEMPTS; attempt++) {
      const peerPort = await freeLoopbackPort();
      let clientPort = await freeLoopbackPort();
      while (clientPort === peerPort) clientPort = await freeLoopbackPort();
      const dataDir = path.join(scratchDir, `data-${attempt}`);
      restoreSnapshot(snapshotFile, dataDir, `http://127.0.0.1:${peerPort}`);
      const started = await startEtcd(etcd, dataDir, peerPort, clientPort);
      if ('error' in started) {
        lastError = started.error;
        continue;
      }
      const client = createEtcdClient([`http://127.0.0.1:${clientPort}`], { faultHandling: false, callTimeoutMs: 60_000 });
      try {
        return await use(client);
      } finally {
        client.close();
        await stopChild(started.child, { signal: 'SIGTERM', graceMs: STOP_GRACE_MS });
      }
    }
    throw new UnavailableError(`could not start an etcd to read the snapshot: ${describeError(lastError)}`);
  } finally {
    fs.rmSync(scratchDir, { recursive: true, force: true });
  }
}

function restoreSnapshot(snapshotFile: string, dataDir: string, peerUrl: string): void {
  const result = spawnSync(
    etcdctlProgram(),
    ['snapshot', 'restore', snapshotFile, '--name', 'kv2-backup', '--data-dir', dataDir, '--initial-cluster', `kv2-backup=${peerUrl}`, '--initial-advertise-peer-urls', peerUrl],
    { env: { ...process.env, ETCDCTL_API: '3' }, encoding: 'utf8' },
  );
  if (result.status !== 0) {
    throw new Error(`etcdctl snapshot restore of ${snapshotFile} failed: ${(result.stderr || result.stdout || '').trim().split('\n').pop()}`);
  }
}

async function startEtcd(exe: string, dataDir: string, peerPort: number, clientPort: number): Promise<{ child: ChildProcess } | { error: Error }> {
  const clientUrl = `http://127.0.0.1:${clientPort}`;
  const child = spawnInGroup(
    exe,
    [
      '--name', 'kv2-backup',
      '--data-dir', dataDir,
      '--listen-peer-urls', `http://127.0.0.1:${peerPort}`,
      '--listen-client-urls', clientUrl,
      '--advertise-client-urls', clientUrl,
      '--max-request-bytes', String(MAX_REQUEST_BYTES),
      '--quota-backend-bytes', String(QUOTA_BACKEND_BYTES),
      '--max-txn-ops', String(MAX_TXN_OPS),
      '--logger', 'zap',
      '--log-outputs', 'stderr',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const tail: string[] = [];
  const keep = (line: string) => {
    tail.push(line);
    if (tail.length > 5) tail.shift();
  };
  forEachLine(child.stdout, keep);
  forEachLine(child.stderr, keep);
  let gone = false;
  void exited(child).then(() => (gone = true));
  const deadline = Date.now() + SNAPSHOT_ETCD_START_TIMEOUT_MS;
  while (Date.now() < deadline && !gone) {
    try {
      const response = await fetch(`${clientUrl}/health`, { signal: AbortSignal.timeout(1_000) });
      if (response.ok && ((await response.json()) as { health?: string }).health === 'true') return { child };
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  await stopChild(child, { signal: 'SIGTERM', graceMs: STOP_GRACE_MS });
  return { error: new Error(gone ? `etcd exited: ${tail.join(' | ')}` : `etcd did not answer within ${SNAPSHOT_ETCD_START_TIMEOUT_MS} ms`) };
}
