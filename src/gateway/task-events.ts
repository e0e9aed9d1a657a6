// The gateway's one follower of the judicators' `events` (issue 17), shared by all its event streams: one
// long-polled call at a time, with the cursor of the last answer, while any stream is open (and
// EVENTS_LINGER_MS after the last one closed). Changes go into a bounded log of recent answers, so a
// client that reconnects with the id of the last event it saw gets what it missed (when it is older than
// the log: a reset, and it re-reads); each stream gets the changes its scope allows. The running tasks a
// stream follows (`?id=`) are asked for in the same call; a new one restarts the call, so its live state
// comes at once. A judicator failing over loses nothing: the next one goes on from the same cursor.
import { describeError } from '../common/errors';
import type { Logger } from '../common/logging';
import { sleep } from '../common/processes';
import type { RpcResponses } from '../rpc/contract';
import { liveFromWire } from '../rpc/wire';
import type { LiveTask, TaskChange } from '../task/events';
import { ReturnCode } from '../task/types';
import type { JudicatorCalls } from './api/judicator';

/** How long one `events` call asks the judicator to hold it when nothing happens (ms). */
export const EVENTS_POLL_WAIT_MS = 25_000;
/** How long the follower keeps going after the last stream closed, so a reconnecting client misses nothing (ms). */
export const EVENTS_LINGER_MS = 15_000;
/** Changes the log keeps for clients that reconnect. */
export const DEFAULT_EVENTS_LOG_CHANGES = 10_000;
/** Pause after a failed `events` call, doubled up to EVENTS_RETRY_MAX_MS. */
const EVENTS_RETRY_FIRST_MS = 250;
const EVENTS_RETRY_MAX_MS = 5_000;
/** How long a new stream waits for the follower's first cursor before it starts without one (ms). */
const READY_WAIT_MS = 5_000;

/** Whose tasks a stream may see: every user's (an admin token, or no tokens), or one user's. */
export type EventScope = 'all' | number;

export interface LiveUpdate extends LiveTask {
  version: string;
}

/** One event stream as the follower sees it. */
export interface EventSubscriber {
  scope: EventScope;
  /** The one task it follows (its changes only, and its live state). */
  task?: string;
  changes(changes: TaskChange[], cursor: string): void;
  live?(update: LiveUpdate): void;
  /** What it missed cannot be told: it must re-read what it shows (its client gets a `reset`). */
  reset(cursor: string): void;
}

interface LoggedAnswer {
  cursor: string;
  changes: TaskChange[];
}

export function inScope(scope: EventScope, change: TaskChange): boolean {
  return scope === 'all' || change.user === scope;
}

export class TaskEventFollower {
  private readonly subscribers = new Set<EventSubscriber>();
  /** Where the next call goes on from; undefined: from now. */
  private cursor: string | undefined;
  /** The log holds every change after this cursor; undefined: nothing is logged yet. */
  private logStart: string | undefined;
  private log: LoggedAnswer[] = [];
  private logChanges = 0;
  /** The live record last seen of each followed task. */
  private readonly live = new Map<string, LiveUpdate | null>();
  /** The follower's loop runs (set and cleared synchronously, so a stream never joins a loop that ended). */
  private running = false;
  private poll: AbortController | undefined;
  private lastSubscriber = 0;
  private readyWaiters: (() => void)[] = [];
  private readonly closing = new AbortController();

  constructor(
    private readonly calls: JudicatorCalls,
    private readonly logger: Logger,
    private readonly settings: { rpcTimeoutMs: number; logChanges: number } = { rpcTimeoutMs: 10_000, logChanges: DEFAULT_EVENTS_LOG_CHANGES },
  ) {}

  get streams(): number {
    return this.subscribers.size;
  }

  /**
   * Adds a stream; with `after` (the id of the last event its client saw) what it missed is given to it
   * at once, or a reset when that is too old. Resolves with the cursor it starts at ('' when the
   * judicators cannot tell one yet) once the follower knows one (or after a few seconds).
   */
  async subscribe(subscriber: EventSubscriber, after?: string): Promise<string> {
    this.lastSubscriber = Date.now();
    if (subscriber.task && !this.live.has(subscriber.task)) {
      this.live.set(subscriber.task, null);
      this.poll?.abort(); // asked for at once, in a new call
    }
    if (!this.running) {
      // Nothing logged: the follower starts after the client's cursor, and the judicator replays.
      this.cursor = after;
      this.subscribers.add(subscriber);
      this.running = true;
      void this.run();
      await this.ready();
    } else {
      if (this.cursor === undefined) await this.ready();
      // From here to the end no answer can come in between: what is replayed and what follows do not cross.
      if (after !== undefined && after !== this.cursor) {
        if (this.logStart === undefined || after < this.logStart) subscriber.reset(this.cursor ?? '');
        else {
          for (const answer of this.log) {
            if (answer.cursor <= after) continue;
            const mine = answer.changes.filter((c) => inScope(subscriber.scope, c) && (!subscriber.task || c.id === subscriber.task));
            if (mine.length) subscriber.changes(mine, answer.cursor);
          }
        }
      }
      this.subscribers.add(subscriber);
    }
    const known = subscriber.task ? this.live.get(subscriber.task) : undefined;
    if (known) subscriber.live?.(known);
    return this.cursor ?? '';
  }

  unsubscribe(subscriber: EventSubscriber): void {
    if (!this.subscribers.delete(subscriber)) return;
    this.lastSubscriber = Date.now();
    const task = subscriber.task;
    if (task && ![...this.subscribers].some((s) => s.task === task)) this.live.delete(task);
  }

  /** The cursor once the follower has one (or after READY_WAIT_MS). */
  private async ready(): Promise<void> {
    if (this.cursor !== undefined) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, READY_WAIT_MS);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.readyWaiters.push(done);
    });
  }

  private settleReady(): void {
    const waiters = this.readyWaiters;
    this.readyWaiters = [];
    for (const resolve of waiters) resolve();
  }

  private async run(): Promise<void> {
    try {
      await this.follow();
    } finally {
      this.poll = undefined;
      this.running = false;
      // Stopped: the next stream starts from now, and what is logged no longer follows on.
      this.cursor = undefined;
      this.logStart = undefined;
      this.log = [];
      this.logChanges = 0;
      this.settleReady();
    }
  }

  private async follow(): Promise<void> {
    let pause = EVENTS_RETRY_FIRST_MS;
    while (!this.closing.signal.aborted) {
      if (this.subscribers.size === 0 && Date.now() - this.lastSubscriber >= EVENTS_LINGER_MS) break;
      const poll = new AbortController();
      this.poll = poll;
      const signal = AbortSignal.any([poll.signal, this.closing.signal]);
      const live = Object.fromEntries([...this.live].map(([id, update]) => [id, update?.version ?? '']));
      const waitMs = this.subscribers.size === 0 ? Math.min(EVENTS_POLL_WAIT_MS, EVENTS_LINGER_MS) : EVENTS_POLL_WAIT_MS;
      let answer: RpcResponses['events'];
      try {
        answer = await this.calls.answer(
          'events',
          { ...(this.cursor ? { after: this.cursor } : {}), wait_ms: waitMs, ...(this.live.size ? { live } : {}) },
          { timeoutMs: waitMs + this.settings.rpcTimeoutMs, signal },
        );
        if (answer.result !== ReturnCode.OK) throw new Error(`the judicator answered ${answer.result}: ${answer.message ?? ''}`);
      } catch (error) {
        if (this.closing.signal.aborted) break;
        if (poll.signal.aborted) continue; // a new task to follow: ask again at once
        this.logger.warn({ err: describeError(error), retryMs: pause }, 'cannot get task events from the judicators; trying again');
        await sleep(pause, this.closing.signal).catch(() => undefined);
        pause = Math.min(pause * 2, EVENTS_RETRY_MAX_MS);
        continue;
      }
      pause = EVENTS_RETRY_FIRST_MS;
      this.take(answer);
      // A judicator that cannot follow the changes yet answers without a cursor: not a busy loop.
      if (!answer.cursor) await sleep(EVENTS_RETRY_FIRST_MS * 4, this.closing.signal).catch(() => undefined);
    }
  }

  private take(answer: RpcResponses['events']): void {
    if (answer.reset) {
      this.logger.info({ cursor: answer.cursor }, 'the judicators cannot tell the task changes since the last cursor; event streams are told to re-read');
      this.log = [];
      this.logChanges = 0;
      this.logStart = answer.cursor || undefined;
      this.cursor = answer.cursor || undefined;
      for (const subscriber of [...this.subscribers]) subscriber.reset(answer.cursor);
    } else if (answer.cursor) {
      if (this.logStart === undefined) this.logStart = this.cursor ?? answer.cursor;
      if (answer.changes.length) this.append({ cursor: answer.cursor, changes: answer.changes });
      this.cursor = answer.cursor;
    }
    if (this.cursor !== undefined) this.settleReady();
    for (const wire of answer.live) {
      if (!this.live.has(wire.id)) continue;
      const update: LiveUpdate = { ...liveFromWire(wire), version: wire.version };
      this.live.set(wire.id, update);
      for (const subscriber of [...this.subscribers]) if (subscriber.task === wire.id) subscriber.live?.(update);
    }
    if (answer.changes.length && !answer.reset) {
      for (const subscriber of [...this.subscribers]) {
        const mine = answer.changes.filter((c) => inScope(subscriber.scope, c) && (!subscriber.task || c.id === subscriber.task));
        if (mine.length) subscriber.changes(mine, answer.cursor);
      }
    }
  }

  private append(answer: LoggedAnswer): void {
    this.log.push(answer);
    this.logChanges += answer.changes.length;
    while (this.logChanges > this.settings.logChanges && this.log.length > 1) {
      const dropped = this.log.shift()!;
      this.logChanges -= dropped.changes.length;
      this.logStart = dropped.cursor;
    }
  }

  /** Stops following (the gateway is closing); the streams are ended by their owners. */
  close(): void {
    this.closing.abort();
    this.settleReady();
  }
}
