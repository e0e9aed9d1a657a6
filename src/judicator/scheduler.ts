// The heart of scheduling: the `report` RPC. An executor reports what it finished and what it runs; the
// judicator records it, tells it what to drop, and hands it work. When there is nothing to say, the call
// is held (long polling) until a task is added anywhere in the cluster or one of the executor's tasks is
// taken away, so a task starts milliseconds after it is submitted.
import { describeError } from '../common/errors';
import type { Logger } from '../common/logging';
import type { LiveTask } from '../task/events';
import { EXECUTING_STATUSES, EXECUTOR_FINAL_STATUSES, type CompletedTask, type Task, type TaskStatus } from '../task/types';
import type { ExecutorReportInfo } from '../rpc/contract';
import type { StoreEvent, TaskStore } from '../store/task-store';

export interface ReportInput {
  executor: string;
  complete: CompletedTask[];
  executing: { id: string; status: TaskStatus }[];
  vacant: number;
  release: string[];
  waitMs: number;
  /** First report of a new executor process: everything its name held before is lost. */
  fresh: boolean;
  /** Live state of running tasks (issue 17): recorded for the event streams, best effort. */
  live?: LiveTask[];
  /** The executor process's key (its record keeps the newest one). */
  key?: string;
  /** What the executor says of itself (host name, slots, ...): kept in its record. */
  info?: ExecutorReportInfo;
}

export interface ReportOutput {
  cancel: string[];
  assign: Task[];
}

/** How often (at most) an executor's heartbeat is written, ms: a report every few ms must not cost a write each. */
export const DEFAULT_HEARTBEAT_EVERY_MS = 1_000;

export interface SchedulerSettings {
  maxRetries: number;
  /** Longest a report may be held, whatever the executor asks (ms). */
  maxWaitMs: number;
  /** Heartbeats are written at most this often per executor (ms): a report every few ms must not cost a write each. */
  heartbeatEveryMs: number;
}

/** A report waiting for something to happen. */
interface Waiter {
  executor: string;
  wantsWork: boolean;
  holding: ReadonlySet<string>;
  /** Set when something this waiter cares about happened. */
  woken: boolean;
  released: Set<string>;
  wake(): void;
}

export class Scheduler {
  private readonly waiters = new Set<Waiter>();
  private readonly unsubscribe: () => void;
  private readonly lastHeartbeat = new Map<string, number>();
  /** The newest report of each executor: an older one still waiting is answered at once. */
  private readonly generation = new Map<string, number>();
  private nextGeneration = 1;

  constructor(
    private readonly store: TaskStore,
    private readonly settings: SchedulerSettings,
    private readonly logger: Logger,
  ) {
    this.unsubscribe = store.subscribe((event) => this.onStoreEvent(event));
  }

  close(): void {
    this.unsubscribe();
    for (const waiter of this.waiters) waiter.wake();
  }

  /** Rejects statuses an executor may not report; returns the reason, or undefined. */
  static checkStatuses(input: Pick<ReportInput, 'complete' | 'executing'>): string | undefined {
    for (const task of input.complete) {
      if (!EXECUTOR_FINAL_STATUSES.includes(task.status)) return `complete task ${task.id} has status ${task.status}, which is not a final status`;
    }
    for (const task of input.executing) {
      if (!EXECUTING_STATUSES.includes(task.status)) return `executing task ${task.id} has status ${task.status}, which is not a running status`;
    }
    const ids = [...input.complete.map((t) => t.id), ...input.executing.map((t) => t.id)];
    if (new Set(ids).size !== ids.length) return 'a task appears twice in one report';
    return undefined;
  }

  async report(input: ReportInput, aborted: AbortSignal): Promise<ReportOutput> {
    const { executor } = input;
    const generation = this.nextGeneration++;
    this.generation.set(executor, generation);
    // An older report of this executor still held open is answered now: the executor moved on.
    for (const waiter of this.waiters) if (waiter.executor === executor) waiter.wake();

    // Registered first, so that a cancel of one of its tasks that lands while this report is being
    // processed is not missed (it is answered in this report's `cancel`).
    const waiter = this.makeWaiter(executor, input.vacant > 0, new Set(input.executing.map((t) => t.id)));
    try {
      return await this.process(input, generation, waiter, aborted);
    } finally {
      this.waiters.delete(waiter);
    }
  }

  private async process(input: ReportInput, generation: number, waiter: Waiter, aborted: AbortSignal): Promise<ReportOutput> {
    const { executor } = input;
    await this.heartbeat(input);
    const cancel = new Set<string>();

    // 0. A new executor process holds nothing, whatever its name held before.
    if (input.fresh) {
      const lost = await this.store.requeueHeldBy(executor, { reason: 'unreported', maxRetries: this.settings.maxRetries });
      if (lost.retried.length || lost.abandoned.length) {
        this.logger.warn({ executor, retried: lost.retried, abandoned: lost.abandoned }, `executor ${executor} restarted; the tasks it held go back to Retrying`);
      }
    }

    // 1-5 in one store call (TaskStore.report): results (listing a completed task in `cancel` tells the
    // executor it may forget it); tasks handed back by an executor that is stopping; running tasks,
    // refreshed (the executor must drop those it no longer holds: cancelled, expired); tasks it had
    // acknowledged but no longer reports (it lost them: back to Retrying); then work for its free slots
    // (the waiter registered at the start catches a task added meanwhile).
    const reported = new Set([...input.complete.map((t) => t.id), ...input.executing.map((t) => t.id), ...input.release]);
    const outcome = await this.store.report(executor, {
      complete: input.complete,
      release: input.release,
      executing: input.executing,
      maxRetries: this.settings.maxRetries,
      vacant: input.vacant,
    });
    for (const id of [...input.complete.map((t) => t.id), ...input.release, ...outcome.notHeld]) cancel.add(id);
    await this.recordLive(executor, input.live ?? []);
    if (outcome.lost.retried.length || outcome.lost.abandoned.length) {
      this.logger.warn({ executor, retried: outcome.lost.retried, abandoned: outcome.lost.abandoned }, `executor ${executor} lost tasks it was running; they go back to Retrying`);
    }
    let assign = outcome.assigned;
    const deadline = Date.now() + Math.min(input.waitMs, this.settings.maxWaitMs);
    // 6. Nothing to say: hold the call until something happens, the wait ends, or the executor hangs up.
    while (assign.length === 0 && cancel.size === 0 && waiter.released.size === 0 && Date.now() < deadline && !aborted.aborted) {
      if (!waiter.woken) await this.waitFor(waiter, deadline - Date.now(), aborted);
      if (aborted.aborted || this.generation.get(executor) !== generation) break;
      const wantedWork = waiter.woken && waiter.wantsWork;
      waiter.woken = false;
      if (wantedWork) assign = await this.assign(executor, input.vacant, reported);
    }
    for (const id of waiter.released) cancel.add(id);
    if (aborted.aborted && assign.length) {
      // The executor hung up before hearing about these: they stay unacknowledged and are handed to it
      // again on its next report (or requeued by the leader if it never comes back).
      this.logger.debug({ executor, tasks: assign.map((t) => t.id) }, 'report abandoned after assignment; tasks will be redelivered');
    }
    return { cancel: [...cancel], assign };
  }

  /**
   * Records what the executor says of its running tasks as it runs them: for the event streams, so a
   * failure costs them a moment of output, never the report (the next one carries newer state).
   */
  private async recordLive(executor: string, live: readonly LiveTask[]): Promise<void> {
    if (live.length === 0) return;
    try {
      await this.store.writeLive(executor, live);
    } catch (error) {
      this.logger.warn({ executor, tasks: live.map((l) => l.id), err: describeError(error) }, 'could not record the live state of running tasks');
    }
  }

  /**
   * The executor's record: its report time (what the leader's executor TTL measures), free slots, key and
   * what it says of itself. At most every heartbeatEveryMs, but at once for a new process (`fresh`), whose
   * key takes the name over.
   */
  private async heartbeat(input: ReportInput): Promise<void> {
    const now = Date.now();
    const last = this.lastHeartbeat.get(input.executor) ?? 0;
    if (now - last < this.settings.heartbeatEveryMs && !input.fresh) return;
    this.lastHeartbeat.set(input.executor, now);
    const info = input.info;
    try {
      await this.store.recordHeartbeat(input.executor, {
        vacant: input.vacant,
        ...(input.key !== undefined ? { key: input.key } : {}),
        ...(info ? { host: info.hostname, slots: info.slots, started: info.started } : {}),
        ...(info?.languages ? { languages: info.languages } : {}),
        ...(info?.sandbox ? { sandbox: info.sandbox } : {}),
      });
    } catch (error) {
      this.lastHeartbeat.delete(input.executor);
      throw error;
    }
  }

  /** Assignments: first tasks already given to this executor whose answer it never got, then new ones. */
  private async assign(executor: string, vacant: number, reported: ReadonlySet<string>): Promise<Task[]> {
    const redelivered = await this.store.unacknowledged(executor, reported, vacant);
    const fresh = vacant > redelivered.length ? await this.store.assign(executor, vacant - redelivered.length) : [];
    return [...redelivered, ...fresh];
  }

  private makeWaiter(executor: string, wantsWork: boolean, holding: ReadonlySet<string>): Waiter {
    const waiter: Waiter = {
      executor,
      wantsWork,
      holding,
      woken: false,
      released: new Set(),
      wake: () => undefined,
    };
    // Until it actually waits, a wake-up is remembered (and the wait skipped).
    waiter.wake = () => {
      waiter.woken = true;
    };
    this.waiters.add(waiter);
    return waiter;
  }

  private waitFor(waiter: Waiter, ms: number, aborted: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        aborted.removeEventListener('abort', done);
        waiter.wake = () => {
          waiter.woken = true;
        };
        resolve();
      };
      const timer = setTimeout(done, Math.max(ms, 0));
      aborted.addEventListener('abort', done, { once: true });
      waiter.wake = () => {
        waiter.woken = true;
        done();
      };
    });
  }

  private onStoreEvent(event: StoreEvent): void {
    if (event.type !== 'pending' && event.type !== 'released') return; // 'done' is for waits on results
    try {
      for (const waiter of this.waiters) {
        if (event.type === 'pending' && waiter.wantsWork) waiter.wake();
        else if (event.type === 'released' && event.executor === waiter.executor && waiter.holding.has(event.id)) {
          waiter.released.add(event.id);
          waiter.wake();
        }
      }
    } catch (error) {
      this.logger.error({ err: describeError(error) }, 'could not dispatch a store event');
    }
  }
}
