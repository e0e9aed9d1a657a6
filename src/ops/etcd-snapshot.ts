// An etcd snapshot file: saved from a running member through the v3 Maintenance.Snapshot stream (what
// `etcdctl snapshot save` does: the member's whole backend at one revision, followed by the sha256 that
// `etcdctl snapshot restore` checks), read back with `etcdctl snapshot status`, and checked against that
// embedded sha256 without etcd.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import type { Etcd3 } from 'etcd3';
import { etcdctlProgram } from '../etcd/scratch-etcd';
import { UnavailableError, describeError } from '../common/errors';

/** etcd appends sha256(db) to a snapshot it streams; the db itself is a whole number of 512-byte pages. */
const HASH_BYTES = 32;
const DB_PAGE = 512;
/** Seconds `etcdctl snapshot status` may take (it reads the whole file). */
export const SNAPSHOT_STATUS_TIMEOUT_MS = 120_000;

export interface SavedSnapshot {
  bytes: number;
  sha256: string;
}

/**
 * Streams a snapshot of the member behind `client` (a client of that one member) into `file`: written to
 * `<file>.partial`, fsynced, and renamed only once the stream ended and etcd's own hash at its end checks
 * out, so a snapshot.db is never half a snapshot.
 */
export async function saveSnapshot(client: Etcd3, file: string, onProgress: (received: number, total: number) => void = () => undefined): Promise<SavedSnapshot> {
  const partial = `${file}.partial`;
  const fd = fs.openSync(partial, 'w');
  const hash = createHash('sha256');
  let received = 0;
  try {
    const stream = await client.maintenance.snapshot();
    await new Promise<void>((resolve, reject) => {
      stream.on('data', (chunk) => {
        try {
          fs.writeSync(fd, chunk.blob);
          hash.update(chunk.blob);
          received += chunk.blob.length;
          onProgress(received, received + Number(chunk.remaining_bytes));
        } catch (error) {
          reject(error);
        }
      });
      stream.on('end', () => resolve());
      stream.on('error', (error) => reject(new UnavailableError(`the etcd snapshot stream failed after ${received} bytes: ${describeError(error)}`)));
    });
    fs.fsyncSync(fd);
  } catch (error) {
    fs.closeSync(fd);
    fs.rmSync(partial, { force: true });
    throw error;
  }
  fs.closeSync(fd);
  if (embeddedHashCheck(partial) === 'mismatch') {
    fs.rmSync(partial, { force: true });
    throw new UnavailableError('the etcd snapshot arrived damaged (its own sha256 does not match); run kv2 backup again');
  }
  fs.renameSync(partial, file);
  return { bytes: received, sha256: hash.digest('hex') };
}

/**
 * Checks the sha256 etcd appends to a streamed snapshot: 'absent' for a db file copied from a data dir
 * (no hash to check), 'mismatch' when the file was changed since etcd wrote it.
 */
export function embeddedHashCheck(file: string): 'ok' | 'mismatch' | 'absent' {
  const size = fs.statSync(file).size;
  if (size % DB_PAGE !== HASH_BYTES) return 'absent';
  const hash = createHash('sha256');
  const fd = fs.openSync(file, 'r');
  try {
    const buffer = Buffer.alloc(1024 * 1024);
    let offset = 0;
    const end = size - HASH_BYTES;
    while (offset < end) {
      const read = fs.readSync(fd, buffer, 0, Math.min(buffer.length, end - offset), offset);
      if (read <= 0) break;
      hash.update(buffer.subarray(0, read));
      offset += read;
    }
    const stored = Buffer.alloc(HASH_BYTES);
    fs.readSync(fd, stored, 0, HASH_BYTES, end);
    return hash.digest().equals(stored) ? 'ok' : 'mismatch';
  } finally {
    fs.closeSync(fd);
  }
}

export interface SnapshotStatus {
  /** etcd's hash of the db (not a sha256). */
  hash: number;
  revision: number;
  totalKey: number;
  totalSize: number;
}

/** The etcdctl to run, or a ConfigError saying how to get one. */
export { etcdctlProgram };

/** `etcdctl snapshot status -w json`: reads the whole db, so a file etcd cannot open fails here. */
export function snapshotStatus(file: string): SnapshotStatus {
  const result = spawnSync(etcdctlProgram(), ['snapshot', 'status', file, '-w', 'json'], {
    env: { ...process.env, ETCDCTL_API: '3' },
    encoding: 'utf8',
    timeout: SNAPSHOT_STATUS_TIMEOUT_MS,
  });
  const output = `${result.stdout ?? ''}`.trim();
  if (result.status !== 0 || !output.startsWith('{')) {
    const reason = `${result.stderr ?? ''}${result.error ? describeError(result.error) : ''}`.trim().split('\n').pop() || `exit ${result.status}`;
    throw new Error(`etcdctl cannot read it as an etcd snapshot: ${reason}`);
  }
  const status = JSON.parse(output) as Partial<SnapshotStatus>;
  if (typeof status.revision !== 'number' || typeof status.totalKey !== 'number') throw new Error(`etcdctl snapshot status said something unexpected: ${output}`);
  return { hash: Number(status.hash), revision: status.revision, totalKey: status.totalKey, totalSize: Number(status.totalSize) };
}
