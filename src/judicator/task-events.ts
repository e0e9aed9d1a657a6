// The `events` RPC (issue 17): task changes and running tasks' live state for the gateways' event
// streams, long-polled with a cursor. One watch of the store's task changes per judicator, started by
// the first call and stopped when no call came for EVENTS_IDLE_MS (short tasks pay for nothing while no
// one follows), feeds a bounded log of recent batches; a call gets the batches after its cursor at once,
// or is held until there are some. A cursor older than the log (the gateway fell far behind, or came
// from a judicator whose log reaches further back) is answered with `reset`: the caller re-reads what it
// shows and goes on from the cursor of now. When the log is empty the watch starts after the caller's
// cursor, so a gateway that fails over to another judicator loses nothing.
//
// Live records are followed one task at a time (the store's watchLive) for the tasks some caller asks
// about, at most MAX_FOLLOWED at once, each dropped when no call asked about it for EVENTS_IDLE_MS.
import { describeError } from '../common/errors';
import type { Logger } from '../common/logging';
import type { RpcResponses } from '../rpc/contract';
import { liveToWire } from '../rpc/wire';
import type { LiveRecord, TaskChangeBatch, TaskChangeWatch, TaskStore } from '../store/task-store';
import { ReturnCode } from '../task/types';
import type { TaskChange } from '../task/events';

/** Task changes the log keeps (a few MB at most). */
export const DEFAULT_EVENTS_LOG_CHANGES = 20_000;
/** Most changes one answer carries; a caller further behind asks again at once. */
export const EVENTS_ANSWER_MAX_CHANGES = 2_000;
/** After this long without a call, the watch of task changes and the followed live records stop (ms). */
export const EVENTS_IDLE_MS = 60_000;
/** Running tasks whose live records one judicator follows at once. */
export const MAX_FOLLOWED = 256;
/** How long a call waits for the watch to start before it is answered with what there is (ms). */
const WATCH_START_WAIT_MS = 10_000;

export type EventsAnswer = RpcResponses['events'];

export interface EventsRequest {
  after?: string;
  wait_ms: number;
  live?: Record<string, string>;
}

interface Followed {
  record: LiveRecord | null;
  stop: () => void;
  askedAt: number;
}

export class TaskEventHub {
  private watch: TaskChangeWatch | undefined;
  /** The log holds every batch after this cursor (up to `latest`). */
  private startCursor: string | undefined;
  private latest: string | undefined;
  private log: TaskChangeBatch[] = [];
  private logChanges = 0;
  private readonly waiters = new Set<() => void>();
  private readonly followed = new Map<string, Followed>();
  private lastCall = 0;
  private idleTimer: NodeJS.Timeout | undefined;
  private starting: Promise<void> | undefined;
  private closed = false;

  constructor(
    private readonly store: TaskStore,
    private readonly logger: Logger,
    private readonly settings: { logChanges: number; idleMs: number } = { logChanges: DEFAULT_EVENTS_LOG_CHANGES, idleMs: EVENTS_IDLE_MS },
  ) {}

  async poll(request: EventsRequest, signal: AbortSignal): Promise<EventsAnswer> {
    this.lastCall = Date.now();
    this.scheduleIdleCheck();
    const live = request.live ?? {};
    for (const id of Object.keys(live)) this.follow(id);
    await this.ensureWatching(request.after, signal);
    const deadline = Date.now() + request.wait_ms;
    for (;;) {
      const answer = this.answer(request.after, live);
      const news = answer.reset || answer.changes.length > 0 || answer.live.length > 0 || (request.after === undefined && answer.cursor !== '');
      if (news || Date.now() >= deadline || signal.aborted || this.closed) return answer;
      await this.waitForNews(deadline - Date.now(), signal);
    }
  }

  /** What there is for a caller at `after` now. */
  private answer(after: string | undefined, live: Record<string, string>): EventsAnswer {
    const liveAnswer: EventsAnswer['live'] = [];
    for (const [id, version] of Object.entries(live)) {
      const record = this.followed.get(id)?.record;
      if (record && record.version !== version) liveAnswer.push({ ...liveToWire(record.live), version: record.version });
    }
    // No watch yet (the store is slow or down): the caller keeps its cursor ('' when it had none) and asks again.
    if (this.startCursor === undefined || this.latest === undefined) return { result: ReturnCode.OK, cursor: after ?? '', reset: false, changes: [], live: liveAnswer };
    const cursor = this.latest;
    if (after === undefined) return { result: ReturnCode.OK, cursor, reset: false, changes: [], live: liveAnswer };
    if (after < this.startCursor) return { result: ReturnCode.OK, cursor, reset: true, changes: [], live: liveAnswer };
    const changes: TaskChange[] = [];
    let upTo = after;
    for (const batch of this.log) {
      if (batch.cursor <= after) continue;
      if (changes.length > 0 && changes.length + batch.changes.length > EVENTS_ANSWER_MAX_CHANGES) break;
      changes.push(...batch.changes);
      upTo = batch.cursor;
    }
    return { result: ReturnCode.OK, cursor: changes.length ? upTo : after > cursor ? after : cursor, reset: false, changes, live: liveAnswer };
  }

  /** Starts the watch when there is none: after the caller's cursor when it gives one, else from now. */
  private async ensureWatching(after: string | undefined, signal: AbortSignal): Promise<void> {
    if (this.closed) return;
    if (!this.watch) this.starting ??= this.start(after).finally(() => (this.starting = undefined));
    if (!this.starting) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.starting,
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, WATCH_START_WAIT_MS);
        signal.addEventListener('abort', () => resolve(), { once: true });
      }),
    ]);
    clearTimeout(timer);
  }

  private async start(after: string | undefined): Promise<void> {
    const begin = (from: string | undefined) =>
      this.store.watchTaskChanges(from, {
        batch: (batch) => this.onBatch(watch, batch),
        lost: (reason) => this.onLost(watch, reason),
      });
    let watch = begin(after);
    this.watch = watch;
    let started: string;
    try {
      started = await watch.started;
    } catch (error) {
      if (after === undefined) {
        this.watch = undefined;
        this.logger.warn({ err: describeError(error) }, 'cannot watch the task changes; the next events call tries again');
        return;
      }
      // The store no longer has that history: from now on (callers at that cursor get a reset).
      this.logger.info({ err: describeError(error), after }, 'cannot follow task changes from an old cursor; following them from now');
      watch = begin(undefined);
      this.watch = watch;
      try {
        started = await watch.started;
      } catch (again) {
        this.watch = undefined;
        this.logger.warn({ err: describeError(again) }, 'cannot watch the task changes; the next events call tries again');
        return;
      }
    }
    if (this.watch !== watch) return;
    this.startCursor = started;
    if (this.latest === undefined || this.latest < started) this.latest = started;
    this.logger.debug({ cursor: started }, 'following task changes for the events');
    this.wake();
  }

  private onBatch(watch: TaskChangeWatch, batch: TaskChangeBatch): void {
    if (this.watch !== watch) return;
    this.log.push(batch);
    this.logChanges += batch.changes.length;
    this.latest = batch.cursor;
    // Bounded: the oldest batches go, and the log then starts after the last one dropped.
    while (this.logChanges > this.settings.logChanges && this.log.length > 1) {
      const dropped = this.log.shift()!;
      this.logChanges -= dropped.changes.length;
      this.startCursor = dropped.cursor;
    }
    this.wake();
  }

  private onLost(watch: TaskChangeWatch, reason: string): void {
    if (this.watch !== watch) return;
    this.logger.warn({ reason }, 'the watch of task changes stopped; event streams will be told to re-read');
    this.stopWatching();
    this.wake();
  }

  private stopWatching(): void {
    this.watch?.stop();
    this.watch = undefined;
    // Cursors from before are answered with a reset once a new watch starts (its start is after them).
    this.log = [];
    this.logChanges = 0;
  }

  /** Follows task `id`'s live record (its watch, then its record as it is now). */
  private follow(id: string): void {
    const known = this.followed.get(id);
    if (known) {
      known.askedAt = Date.now();
      return;
    }
    if (this.followed.size >= MAX_FOLLOWED) this.dropOldestFollowed();
    const entry: Followed = { record: null, askedAt: Date.now(), stop: () => undefined };
    this.followed.set(id, entry);
    entry.stop = this.store.watchLive(id, (record) => {
      entry.record = record;
      this.wake();
    });
    this.store.readLive(id).then(
      (record) => {
        // A record the watch brought meanwhile is as new or newer.
        if (record && entry.record === null) entry.record = record;
        this.wake();
      },
      (error: unknown) => this.logger.debug({ err: describeError(error), task: id }, 'cannot read a live record'),
    );
  }

  private dropOldestFollowed(): void {
    let oldest: [string, Followed] | undefined;
    for (const entry of this.followed) if (!oldest || entry[1].askedAt < oldest[1].askedAt) oldest = entry;
    if (!oldest) return;
    oldest[1].stop();
    this.followed.delete(oldest[0]);
  }

  private waitForNews(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        this.waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, ms));
      signal.addEventListener('abort', done, { once: true });
      this.waiters.add(done);
    });
  }

  private wake(): void {
    for (const waiter of [...this.waiters]) waiter();
  }

  /** Stops watching what nobody asked about for settings.idleMs. */
  private scheduleIdleCheck(): void {
    if (this.idleTimer || this.closed) return;
    this.idleTimer = setTimeout(() => {
      this.idleTimer = undefined;
      const now = Date.now();
      for (const [id, entry] of this.followed) {
        if (now - entry.askedAt >= this.settings.idleMs) {
          entry.stop();
          this.followed.delete(id);
        }
      }
      if (now - this.lastCall >= this.settings.idleMs && this.waiters.size === 0) {
        if (this.watch) this.logger.debug('no events call for a while: no longer following task changes');
        this.stopWatching();
        this.startCursor = undefined;
        this.latest = undefined;
      }
      if (this.watch || this.followed.size > 0) this.scheduleIdleCheck();
    }, Math.max(1_000, this.settings.idleMs / 2));
    this.idleTimer.unref();
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.idleTimer);
    this.stopWatching();
    for (const entry of this.followed.values()) entry.stop();
    this.followed.clear();
    this.wake();
  }
}
