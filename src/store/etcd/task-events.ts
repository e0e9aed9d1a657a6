// The etcd store's task events (issue 17): the watch of task/<id> writes that becomes the task changes,
// and the live records of running tasks under live/<id>.
//
// Task changes: every transition writes task/<id> (changes.ts), so a watch of task/ with each key's
// previous value sees every change, in the store's order, cluster-wide; a write that changes none of
// status, done, verdict and executor (a running task's report time refreshed) is no change. The cursor is
// the etcd revision (fixed-width hex, so cursors order as strings): a watch can start after any revision
// etcd still keeps (compaction keeps an hour, etcd/member.ts), on any judicator.
//
// Live records: one key per running task, replaced at each report (never appended to), written only while
// the reporting executor holds the task (the write is conditioned on its held entry), and deleted by the
// same transaction that takes the task from its executor (changes.ts changeOps): nothing is left behind.
import type { Etcd3, IKeyValue, IWatchResponse, Watcher } from 'etcd3';
import { describeError } from '../../common/errors';
import type { Logger } from '../../common/logging';
import { LIVE_OUTPUT_MAX_BYTES, sameChange, type LiveTask, type TaskChange } from '../../task/events';
import type { LiveRecord, TaskChangeBatch, TaskChangeHandlers, TaskChangeWatch } from '../task-store';
import { lastSegment, type StoreKeys } from './keys';
import { briefOf, parseMeta, type TaskMeta } from './meta';
import { cmp, etcdCall, op, runSteps, type TxnLimits } from './txn';

/** How long after a watch was disconnected it is made again from its last revision (ms). */
export const CHANGE_WATCH_RETRY_MS = 1_000;

/** A revision as a cursor: 16 hex digits, so that cursors order as strings. */
export function revisionCursor(revision: string | number | bigint): string {
  return BigInt(revision).toString(16).padStart(16, '0');
}

/** The revision a cursor names, or undefined for a cursor that is not one of this store's. */
export function cursorRevision(cursor: string): bigint | undefined {
  return /^[0-9a-f]{16}$/.test(cursor) ? BigInt(`0x${cursor}`) : undefined;
}

/** The change a task's metadata says, for the events. */
export function changeOf(id: string, meta: TaskMeta): TaskChange {
  return {
    id,
    user: meta.user,
    status: meta.status,
    done: meta.done,
    verdict: briefOf(id, meta).verdict ?? null,
    executor: meta.executor,
  };
}

/**
 * The batches a watch response holds: its events grouped by revision, each task's change once per
 * revision, writes that change nothing left out.
 */
export function batchesOf(response: IWatchResponse, keys: StoreKeys): TaskChangeBatch[] {
  const batches: TaskChangeBatch[] = [];
  for (const event of response.events ?? []) {
    const key = event.kv.key.toString();
    if (!key.startsWith(keys.tasks)) continue;
    const meta = parseMeta(event.kv.value);
    if (!meta) continue;
    const id = lastSegment(key);
    const change = changeOf(id, meta);
    const before = event.prev_kv ? parseMeta(event.prev_kv.value) : undefined;
    if (before && sameChange(change, changeOf(id, before))) continue;
    const cursor = revisionCursor(event.kv.mod_revision);
    const last = batches[batches.length - 1];
    if (last && last.cursor === cursor) last.changes.push(change);
    else batches.push({ cursor, changes: [change] });
  }
  return batches;
}

/**
 * A watch of task/ from a revision on. The etcd3 client resumes a dropped watch from the revision of the
 * last response header, which may skip events a replay had still to deliver; so a disconnected watch is
 * dropped and made again here from the last revision delivered.
 */
export class EtcdChangeWatch implements TaskChangeWatch {
  readonly started: Promise<string>;
  private watcher: Watcher | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** Revision of the last event handed on (or the start): a new watch goes on from the one after. */
  private last: bigint | undefined;

  constructor(
    private readonly client: () => Etcd3,
    private readonly keys: StoreKeys,
    after: string | undefined,
    private readonly handlers: TaskChangeHandlers,
    private readonly logger: Logger,
    private readonly retryMs: number = CHANGE_WATCH_RETRY_MS,
  ) {
    if (after !== undefined) {
      const revision = cursorRevision(after);
      if (revision === undefined) {
        this.started = Promise.reject(new Error(`the cursor ${JSON.stringify(after.slice(0, 40))} is not one of this store's`));
        this.started.catch(() => undefined);
        return;
      }
      this.last = revision;
    }
    this.started = new Promise<string>((resolve, reject) => this.attach(resolve, reject));
    this.started.catch(() => undefined);
  }

  private attach(resolve?: (cursor: string) => void, reject?: (error: Error) => void): void {
    if (this.stopped) return;
    let builder = this.client().watch().prefix(this.keys.tasks).only('put').withPreviousKV();
    if (this.last !== undefined) builder = builder.startRevision((this.last + 1n).toString());
    const watcher = builder.watcher();
    this.watcher = watcher;
    watcher.on('connected', (response: IWatchResponse) => {
      // Without a start, the watch begins after the revision etcd is at now.
      if (this.last === undefined) this.last = BigInt(response.header.revision);
      resolve?.(revisionCursor(this.last));
      resolve = undefined;
      reject = undefined;
    });
    watcher.on('data', (response: IWatchResponse) => {
      if (this.stopped || this.watcher !== watcher) return;
      for (const batch of batchesOf(response, this.keys)) this.handlers.batch(batch);
      const events = response.events ?? [];
      if (events.length) this.last = BigInt(events[events.length - 1]!.kv.mod_revision);
    });
    watcher.on('disconnected', () => {
      if (this.watcher !== watcher) return;
      this.watcher = undefined;
      void watcher.cancel().catch(() => undefined);
      this.retry(resolve, reject);
    });
    watcher.on('error', (error: Error) => {
      // A cancelled watch: most often its start revision was compacted away. It does not come back.
      if (this.watcher !== watcher) return;
      this.watcher = undefined;
      const reason = `the store's history of task changes cannot be followed from there (${describeError(error)})`;
      this.logger.info({ err: describeError(error) }, 'a watch of task changes was cancelled by etcd');
      this.stopped = true;
      if (reject) reject(new Error(reason));
      else this.handlers.lost(reason);
    });
  }

  private retry(resolve?: (cursor: string) => void, reject?: (error: Error) => void): void {
    if (this.stopped || this.retryTimer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.attach(resolve, reject);
    }, this.retryMs);
    this.retryTimer.unref();
  }

  stop(): void {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    const watcher = this.watcher;
    this.watcher = undefined;
    if (watcher) void watcher.cancel().catch(() => undefined);
  }
}

/** A live record as stored: JSON, the output base64. */
function encodeLive(live: LiveTask): string {
  return JSON.stringify({
    step: live.step,
    test: live.test,
    of: live.of,
    elapsed_ms: live.elapsed_ms,
    stdout: live.stdout.subarray(0, LIVE_OUTPUT_MAX_BYTES).toString('base64'),
    stderr: live.stderr.subarray(0, LIVE_OUTPUT_MAX_BYTES).toString('base64'),
  });
}

export function decodeLive(kv: IKeyValue | undefined, id: string): LiveRecord | undefined {
  if (!kv) return undefined;
  try {
    const value = JSON.parse(kv.value.toString('utf8')) as Record<string, unknown>;
    const live: LiveTask = {
      id,
      step: value.step === 'compile' ? 'compile' : 'execute',
      test: Number(value.test) || 0,
      of: Number(value.of) || 0,
      elapsed_ms: Number(value.elapsed_ms) || 0,
      stdout: Buffer.from(String(value.stdout ?? ''), 'base64'),
      stderr: Buffer.from(String(value.stderr ?? ''), 'base64'),
    };
    return { live, version: kv.mod_revision };
  } catch {
    return undefined;
  }
}

/** Writes live records of tasks `executor` holds, one conditioned write each, in one transaction. */
export async function writeLive(client: Etcd3, keys: StoreKeys, limits: TxnLimits, executor: string, records: readonly LiveTask[]): Promise<string[]> {
  if (records.length === 0) return [];
  const steps = records.map((live) => {
    const value = encodeLive(live);
    return {
      compare: [cmp.exists(keys.held(executor, live.id))],
      success: [op.put(keys.live(live.id), value)],
      requestBytes: value.length + 128,
      responseBytes: 0,
    };
  });
  const results = await runSteps(client, steps, limits, 'record the live state of running tasks');
  return records.filter((_, i) => results[i]!.succeeded).map((live) => live.id);
}

export async function readLive(client: Etcd3, keys: StoreKeys, id: string): Promise<LiveRecord | undefined> {
  const response = await etcdCall('read the live state of a task', () => client.kv.range({ key: Buffer.from(keys.live(id)) }));
  return decodeLive(response.kvs[0], id);
}

/** Watches one task's live record; the etcd3 client resumes a dropped watch by itself (the latest record is all that counts). */
export function watchLive(client: Etcd3, keys: StoreKeys, id: string, listener: (record: LiveRecord | null) => void, logger: Logger): () => void {
  const key = keys.live(id);
  const watcher = client.watch().key(key).watcher();
  let stopped = false;
  watcher.on('data', (response: IWatchResponse) => {
    if (stopped) return;
    const last = response.events?.[response.events.length - 1];
    if (!last || last.kv.key.toString() !== key) return;
    if (last.type === 'Delete') listener(null);
    else listener(decodeLive(last.kv, id) ?? null);
  });
  watcher.on('error', (error: Error) => logger.warn({ err: describeError(error), task: id }, 'the watch of a live record was cancelled'));
  return () => {
    stopped = true;
    void watcher.cancel().catch(() => undefined);
  };
}
