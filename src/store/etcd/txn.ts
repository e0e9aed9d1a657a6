// etcd requests for the etcd store: operation builders, reads of many keys in one round trip, and the
// batch runner that applies many per-task steps in one transaction. Each step is a nested transaction
// with its own compares (etcd >= 3.3), so one task losing a race does not fail the others, and the
// whole batch is still one raft entry (one fsync) instead of one per task.
import type { Etcd3, ICompare, IKeyValue, IRequestOp, IResponseOp } from 'etcd3';
import { TooLargeError, UnavailableError, describeError } from '../../common/errors';
import { prefixEnd } from './keys';

/** Limits of one etcd request, matching how kv2 starts etcd (`--max-txn-ops`, `--max-request-bytes`). */
export interface TxnLimits {
  /** Steps per batch transaction (each a nested transaction of a few operations). */
  maxSteps: number;
  /** Bytes of values written by one batch (etcd refuses requests over --max-request-bytes, 16 MiB). */
  maxRequestBytes: number;
  /** Bytes of values read back by one batch (the client's gRPC receive limit is 32 MiB). */
  maxResponseBytes: number;
  /** Keys read by one multi-get transaction. */
  maxReads: number;
}

export const DEFAULT_TXN_LIMITS: TxnLimits = {
  // etcd counts a nested transaction's operations against what its parent leaves of --max-txn-ops
  // (10000 as kv2 runs etcd): 500 steps of a dozen operations stay far below.
  maxSteps: 500,
  // Far below the 10 MiB a WAL entry may take (chunks.ts), with room for etcd's own framing.
  maxRequestBytes: 6 * 1024 * 1024,
  maxResponseBytes: 16 * 1024 * 1024,
  maxReads: 1000,
};

export const op = {
  put(key: string, value: Buffer | string): IRequestOp {
    return { request_put: { key: Buffer.from(key), value: typeof value === 'string' ? Buffer.from(value) : value } };
  },
  del(key: string): IRequestOp {
    return { request_delete_range: { key: Buffer.from(key) } };
  },
  get(key: string): IRequestOp {
    return { request_range: { key: Buffer.from(key) } };
  },
  /** Deletes every key starting with `prefix`. */
  delPrefix(prefix: string): IRequestOp {
    return { request_delete_range: { key: Buffer.from(prefix), range_end: prefixEnd(prefix) } };
  },
};

export const cmp = {
  /** The key was not changed since it was read at `revision` ("0" when it did not exist). */
  unchanged(key: string, modRevision: string): ICompare {
    return { key: Buffer.from(key), target: 'Mod', result: 'Equal', mod_revision: modRevision };
  },
  absent(key: string): ICompare {
    return { key: Buffer.from(key), target: 'Version', result: 'Equal', version: 0 };
  },
  /** The key exists (a leader's election key: the write is fenced on it). */
  exists(key: string): ICompare {
    return { key: Buffer.from(key), target: 'Create', result: 'Greater', create_revision: '0' };
  },
  /** The key was created before revision `revision` (or does not exist: its create revision is 0). */
  createdBefore(key: string, revision: string): ICompare {
    return { key: Buffer.from(key), target: 'Create', result: 'Less', create_revision: revision };
  },
};

/** Turns a failed etcd call into the error the edges understand. */
export function storeError(what: string, error: unknown): Error {
  if (error instanceof TooLargeError || error instanceof UnavailableError) return error;
  const text = describeError(error);
  if (/request is too large|larger than max|message length|received message larger/i.test(text)) {
    return new TooLargeError(`the task store (etcd) refused to ${what}: ${text}`, { cause: error });
  }
  return new UnavailableError(`the task store (etcd) could not ${what}: ${text}`, { cause: error });
}

export async function etcdCall<T>(what: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw storeError(what, error);
  }
}

/**
 * Reads `keys` in as few round trips as the limits allow, in order. Linearizable unless `serializable`
 * (the member's own applied state: no wait for the cluster, but possibly a little behind it).
 */
export async function getMany(
  client: Etcd3,
  keys: readonly string[],
  limits: TxnLimits,
  what: string,
  serializable = false,
): Promise<(IKeyValue | undefined)[]> {
  const out: (IKeyValue | undefined)[] = [];
  for (let start = 0; start < keys.length; start += limits.maxReads) {
    const chunk = keys.slice(start, start + limits.maxReads);
    if (chunk.length === 1) {
      const response = await etcdCall(what, () => client.kv.range({ key: Buffer.from(chunk[0]!), serializable }));
      out.push(response.kvs[0]);
      continue;
    }
    // A transaction of reads is serializable only if every read in it is.
    const response = await etcdCall(what, () =>
      client.kv.txn({ success: chunk.map((key) => ({ request_range: { key: Buffer.from(key), serializable } })) }),
    );
    for (const item of response.responses) out.push(item.response_range?.kvs[0]);
  }
  return out;
}

/** One task's change: applied only if all its compares hold. */
export interface TxnStep {
  compare: ICompare[];
  success: IRequestOp[];
  /** Applied when a compare fails (usually nothing). */
  failure?: IRequestOp[];
  /** Bytes of values the step writes and reads back (for splitting batches under etcd's limits). */
  requestBytes: number;
  responseBytes: number;
}

export interface StepResult {
  succeeded: boolean;
  responses: IResponseOp[];
  /** The store revision after the step's transaction: the mod revision of every key it wrote. */
  revision: string;
}

/**
 * Applies `steps`, batched into as few transactions as the limits allow; a step that is too large for
 * any batch goes alone. Returns each step's outcome, in order.
 */
export async function runSteps(client: Etcd3, steps: readonly TxnStep[], limits: TxnLimits, what: string): Promise<StepResult[]> {
  const results: StepResult[] = new Array(steps.length);
  let start = 0;
  while (start < steps.length) {
    let end = start;
    let requestBytes = 0;
    let responseBytes = 0;
    while (end < steps.length && end - start < limits.maxSteps) {
      const step = steps[end]!;
      const fits = requestBytes + step.requestBytes <= limits.maxRequestBytes && responseBytes + step.responseBytes <= limits.maxResponseBytes;
      if (end > start && !fits) break;
      requestBytes += step.requestBytes;
      responseBytes += step.responseBytes;
      end++;
    }
    const batch = steps.slice(start, end);
    if (batch.length === 1) {
      const step = batch[0]!;
      const response = await etcdCall(what, () => client.kv.txn({ compare: step.compare, success: step.success, failure: step.failure ?? [] }));
      results[start] = { succeeded: response.succeeded, responses: response.responses, revision: response.header.revision };
    } else {
      const response = await etcdCall(what, () =>
        client.kv.txn({ success: batch.map((step) => ({ request_txn: { compare: step.compare, success: step.success, failure: step.failure ?? [] } })) }),
      );
      response.responses.forEach((item, i) => {
        const nested = item.response_txn;
        results[start + i] = { succeeded: Boolean(nested?.succeeded), responses: nested?.responses ?? [], revision: response.header.revision };
      });
    }
    start = end;
  }
  return results;
}

/** Byte length of a value as an operation carries it. */
export function valueBytes(value: Buffer | string): number {
  return typeof value === 'string' ? Buffer.byteLength(value) : value.length;
}
