// The leader's delivery of finished tasks' callbacks (issue 17), from the store's outbox: the transition
// that ends a task with a callback_url writes its callback there in the same atomic write, so neither a
// judicator's crash nor a leader change loses one. The leader POSTs each (callback-post.ts) as soon as
// the store's change feed says a task is done (else every poll interval), settles it once delivered,
// and tries again with exponential backoff up to a bounded number of attempts. A callback is delivered
// once in the normal case; a leader that dies between the POST and the settling leaves it to be sent
// again by the next one, with the same Idempotency-Key (the task's id).
import fs from 'node:fs';
import { describeError } from '../common/errors';
import type { Logger } from '../common/logging';
import { Wakeup } from '../common/wakeup';
import type { LeaderFence } from '../etcd/election';
import type { PendingCallback, TaskStore, WriteFence } from '../store/task-store';
import { CallbackAllowList } from '../task/callback-allow';
import { presentTask } from '../task/present';
import { postCallback, type PostOutcome } from './callback-post';

export interface CallbackSettings {
  /** --task-callback-allow. */
  allow: readonly string[];
  /** --task-callback-secret-file: the HMAC key; null: callbacks are sent unsigned. */
  secretFile: string | null;
  /** One delivery's deadline. */
  timeoutMs: number;
  /** The wait before the second attempt; it doubles with each failure, up to retryMaxMs. */
  retryInitialMs: number;
  retryMaxMs: number;
  /** Attempts before a callback is given up. */
  maxAttempts: number;
  /** How often the outbox is read when the change feed says nothing. */
  pollMs: number;
  /** Deliveries at once. */
  concurrency: number;
}

/** The wait before the attempt after `attempts` failed ones. */
export function retryDelay(settings: Pick<CallbackSettings, 'retryInitialMs' | 'retryMaxMs'>, attempts: number): number {
  return Math.min(settings.retryMaxMs, settings.retryInitialMs * 2 ** Math.max(0, attempts - 1));
}

/** The secret in the file, without a trailing newline; throws a message naming the file. */
export function readCallbackSecret(file: string): Buffer {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (error) {
    throw new Error(`cannot read the callback secret file ${file} (--task-callback-secret-file): ${describeError(error)}`);
  }
  const secret = Buffer.from(bytes.toString('utf8').replace(/\r?\n$/, ''));
  if (secret.length === 0) throw new Error(`the callback secret file ${file} (--task-callback-secret-file) is empty`);
  return secret;
}

export class CallbackSender {
  private readonly allow: CallbackAllowList;
  private readonly secret: Buffer | undefined;

  constructor(
    private readonly store: TaskStore,
    private readonly settings: CallbackSettings,
    private readonly logger: Logger,
  ) {
    this.allow = new CallbackAllowList(settings.allow);
    this.secret = settings.secretFile ? readCallbackSecret(settings.secretFile) : undefined;
    if (!this.allow.empty && !this.secret) logger.warn('task callbacks are allowed but sent unsigned: give --task-callback-secret-file so receivers can check them');
  }

  /** Delivers due callbacks while this judicator leads (until `signal` aborts). */
  async run(leader: LeaderFence, signal: AbortSignal, stillLeading: () => Promise<boolean>): Promise<void> {
    const fence: WriteFence = { etcdKey: leader.key, holds: stillLeading };
    const wakeup = new Wakeup();
    let woken = false;
    const unsubscribe = this.store.subscribe((event) => {
      if (event.type !== 'done') return;
      woken = true;
      wakeup.wake();
    });
    try {
      while (!signal.aborted) {
        woken = false;
        let next: number | undefined;
        try {
          next = await this.round(fence, signal);
        } catch (error) {
          this.logger.warn({ err: describeError(error) }, 'cannot read the callback outbox; trying again');
        }
        if (signal.aborted || woken) continue;
        const waitMs = Math.max(0, Math.min(this.settings.pollMs, next === undefined ? Infinity : next - Date.now()));
        await wakeup.sleep(waitMs, signal);
      }
    } finally {
      unsubscribe();
    }
  }

  /** Delivers what is due now; returns when the next one is due, if it knows. */
  private async round(fence: WriteFence, signal: AbortSignal): Promise<number | undefined> {
    const due = await this.store.dueCallbacks(Date.now(), this.settings.concurrency * 4);
    let index = 0;
    const worker = async () => {
      while (index < due.length && !signal.aborted) await this.deliver(due[index++]!, fence);
    };
    await Promise.all(Array.from({ length: Math.min(this.settings.concurrency, due.length) }, worker));
    // A full batch may not be all: look again at once.
    return due.length === this.settings.concurrency * 4 ? Date.now() : undefined;
  }

  private async deliver(callback: PendingCallback, fence: WriteFence): Promise<void> {
    const task = await this.store.get(callback.id);
    if (!task) {
      await this.store.settleCallback(callback.id, { done: true }, fence);
      return;
    }
    // The task as GET /api/task shows it (long text cut at 1000 characters: the receiver can ask for all).
    const body = Buffer.from(JSON.stringify(presentTask(task, { noTruncate: false })));
    const outcome: PostOutcome = await postCallback({
      url: callback.url,
      body,
      id: callback.id,
      attempt: callback.attempts,
      secret: this.secret,
      allow: this.allow,
      timeoutMs: this.settings.timeoutMs,
    });
    const attempts = callback.attempts + 1;
    const log = { task: callback.id, url: callback.url, attempt: attempts };
    if (outcome.delivered) {
      await this.store.settleCallback(callback.id, { done: true }, fence);
      this.logger.info({ ...log, status: outcome.status }, `callback of task ${callback.id} delivered`);
    } else if (!outcome.retry || attempts >= this.settings.maxAttempts) {
      await this.store.settleCallback(callback.id, { done: true }, fence);
      this.logger.error(
        { ...log, reason: outcome.reason },
        `callback of task ${callback.id} given up after ${attempts} attempt(s): ${outcome.reason}`,
      );
    } else {
      const retryAtMs = Date.now() + retryDelay(this.settings, attempts);
      await this.store.settleCallback(callback.id, { retryAtMs }, fence);
      this.logger.warn({ ...log, reason: outcome.reason, retryAt: new Date(retryAtMs).toISOString() }, `callback of task ${callback.id} failed (${outcome.reason}); trying again`);
    }
  }
}
