// Large values in etcd (a task's input, its result): cut into chunks, so that no etcd request carries 10
// MiB or more. etcd 3.4.22+ (and 3.5 before 3.5.7) writes such a request to its WAL but then refuses to
// start on it ("wal: max entry size limit exceeded", etcd-io/etcd#14114): one 15 MiB task would keep its
// member from ever restarting. A value of one chunk is written inline, in the transaction that commits
// the task. A larger one is staged first, its chunks written a few MiB per request under a lease, and the
// committing transaction detaches them from the lease (a put that keeps the value: a few bytes in the
// WAL). If the commit never happens (lost race, crash) the lease expires and etcd deletes the chunks.
import { randomBytes } from 'node:crypto';
import type { Etcd3, ICompare, IKeyValue, IRequestOp } from 'etcd3';
import { chunkKey, prefixEnd } from './keys';
import { etcdCall, op, type TxnLimits } from './txn';

/** Largest chunk of a stored value. */
export const CHUNK_BYTES = 1024 * 1024;
/** How long staged chunks live without a commit (seconds): far more than an upload takes. */
export const STAGING_TTL_S = 600;

export interface StagedBlob {
  /** Names this upload's chunks (under `<blob prefix><token>/`). */
  token: string;
  chunks: number;
  /** What the committing transaction must check and do: inline puts, or detaching staged chunks. */
  compare: ICompare[];
  ops: IRequestOp[];
  /** Bytes `ops` carry. */
  bytes: number;
  /** Drops the staged chunks when the commit did not happen. */
  discard(): Promise<void>;
}

export function newToken(): string {
  return randomBytes(4).toString('hex');
}

/** Cuts `value` into chunks of at most CHUNK_BYTES (an empty value is one empty chunk). */
export function chunksOf(value: Buffer, size: number = CHUNK_BYTES): Buffer[] {
  if (value.length <= size) return [value];
  const chunks: Buffer[] = [];
  for (let start = 0; start < value.length; start += size) chunks.push(value.subarray(start, start + size));
  return chunks;
}

/** A value of one chunk, written inline by the committing transaction; undefined if it is larger. */
export function inlineBlob(value: Buffer, prefixOf: (token: string) => string): StagedBlob | undefined {
  if (value.length > CHUNK_BYTES) return undefined;
  const token = newToken();
  return { token, chunks: 1, compare: [], ops: [op.put(chunkKey(prefixOf(token), 0), value)], bytes: value.length, discard: async () => undefined };
}

/**
 * Prepares `value` for a transaction that commits it under `prefixOf(token)`: small values come back as
 * inline puts; large ones are written now under a lease. `limits.maxRequestBytes` bounds each request.
 */
export async function stageBlob(client: Etcd3, value: Buffer, prefixOf: (token: string) => string, limits: TxnLimits, what: string): Promise<StagedBlob> {
  const inline = inlineBlob(value, prefixOf);
  if (inline) return inline;
  const token = newToken();
  const prefix = prefixOf(token);
  const chunks = chunksOf(value);
  const lease = await etcdCall(what, () => client.leaseClient.leaseGrant({ TTL: STAGING_TTL_S }));
  const discard = async () => {
    await etcdCall(what, () => client.leaseClient.leaseRevoke({ ID: lease.ID })).catch(() => undefined);
  };
  try {
    const perRequest = Math.max(1, Math.floor(limits.maxRequestBytes / CHUNK_BYTES));
    for (let start = 0; start < chunks.length; start += perRequest) {
      const puts: IRequestOp[] = chunks
        .slice(start, start + perRequest)
        .map((chunk, i) => ({ request_put: { key: Buffer.from(chunkKey(prefix, start + i)), value: chunk, lease: lease.ID } }));
      await etcdCall(what, () => client.kv.txn({ success: puts }));
    }
  } catch (error) {
    await discard();
    throw error;
  }
  const keys = chunks.map((_, n) => chunkKey(prefix, n));
  return {
    token,
    chunks: chunks.length,
    // A chunk whose lease expired is gone: the commit must fail rather than keep a hole.
    compare: keys.map((key) => ({ key: Buffer.from(key), target: 'Version', result: 'Greater', version: 0 })),
    ops: keys.map((key) => ({ request_put: { key: Buffer.from(key), ignore_value: true, lease: 0 } })),
    bytes: keys.length * 64,
    discard,
  };
}

/** A read of every chunk under `prefix` (one upload's, or all of a task's), as a transaction operation. */
export function readChunks(prefix: string): IRequestOp {
  return { request_range: { key: Buffer.from(prefix), range_end: prefixEnd(prefix) } };
}

/** The value stored in chunks under `prefix`, from a range read that returned them (and maybe others). */
export function joinChunks(kvs: readonly IKeyValue[], prefix: string, chunks: number): Buffer | undefined {
  const parts = kvs.filter((kv) => kv.key.toString().startsWith(prefix)).map((kv) => kv.value);
  return parts.length === chunks ? Buffer.concat(parts) : undefined;
}
