// The executor's conversation with the judicators: one `report` call at a time carrying finished tasks
// (complete), running ones (executing) and free slots (vacant), answered with tasks to drop (cancel) and
// tasks to run (assign). Every call is a long poll for work. A finished task, a task handed back or a
// slot freed is reported at once (aborting a poll that is only waiting); a running task's status change
// (Compiling, Running) only once it has lasted `statusDelayMs`, so a short task costs no report but its
// completion, which is also the next poll for work. (The judicator hands again any assignment whose answer
// was lost, so aborting is safe, and assignments are deduplicated by id.) Failures keep every result and
// retry with a backoff. A task that has run `liveEveryMs` has its live state (test, output so far: issue
// 17's event streams) in the next report whenever it changed, at most every `liveEveryMs`; a shorter task
// never does.
import { describeError } from '../common/errors';
import type { Logger } from '../common/logging';
import { sleep } from '../common/processes';
import type { ExecutorReportInfo, RpcRequest, RpcResponse } from '../rpc/contract';
import { completedToWire, liveToWire, taskFromWire } from '../rpc/wire';
import { ReturnCode, type Task } from '../task/types';
import type { TaskRun } from './runner';

export interface ReportLoopOptions {
  name: string;
  /** A random key of this process, kept in the executor's record: proves reports come from this process. */
  key: string;
  /** What this executor says of itself in every report (its registration: host name, slots, start time). */
  info: ExecutorReportInfo;
  slots: number;
  /** Long-poll wait and heartbeat, ms. */
  reportIntervalMs: number;
  /** A running task's status change is reported once it has lasted this long, ms (completions at once). */
  statusDelayMs: number;
  /** Backoff after a failed report: first wait and longest wait, ms. */
  retryInitialMs: number;
  retryMaxMs: number;
  /** How long the last report (handing tasks back on shutdown) may try, ms. */
  finalReportMs: number;
  /** A running task's live state is reported once it has run this long, then at most this often (ms; 0: never). */
  liveEveryMs: number;
}

/** Sends one report (the RPC client in production). */
export type ReportCall = (body: RpcRequest<'report'>, options: { waitMs: number; signal: AbortSignal }) => Promise<RpcResponse<'report'>>;

/** Starts a task in a slot; `onChange` must be called on every status change and when it finishes. */
export type StartRun = (task: Task, slot: number, onChange: (run: TaskRun) => void) => TaskRun;

/** What the next report would say (ReportLoop.state). */
interface ReportState {
  finished: TaskRun[];
  executing: { id: string; status: number }[];
  release: string[];
  vacant: number;
  urgent: boolean;
  statusNews: boolean;
  /** Running tasks whose live state is due (run long enough, changed, not sent within liveEveryMs). */
  live: TaskRun[];
}

export class ReportLoop {
  private readonly runs = new Map<string, TaskRun>();
  /** Status of each running task as last reported successfully: a difference is news. */
  private reported = new Map<string, number>();
  /** Tasks to hand back at the next report (assigned while draining, or no slot free). */
  private readonly toRelease = new Set<string>();
  /** Tasks stopped by our shutdown (not by the judicator): handed back in the final report. */
  private readonly stoppedByUs = new Set<string>();
  private accepting = true;
  /** Until a report succeeds: this process is new, whatever its name held before is lost. */
  private fresh = true;
  /** Free slots as last reported successfully: a slot freed since is news. */
  private reportedVacant = -1;
  /** Since when the running tasks' statuses differ from what was reported (undefined: they do not). */
  private statusSince: number | undefined;
  /**
   * statusDelayMs, but never more than the report interval: no report goes out while a status change
   * waits, so a longer delay would stop the heartbeat and let the judicator take running tasks away.
   * (For the same reason a task added during that wait reaches a free slot of this executor up to the
   * delay late: the price of not reporting every short task's statuses.)
   */
  private readonly statusDelayMs: number;
  /** Wakes the loop when a status change has lasted statusDelayMs. */
  private statusTimer: NodeJS.Timeout | undefined;
  /** Something must be reported now whatever the rest says (the drain started). */
  private forced = false;
  /** The report call in flight, and whether it only waits (news may abort it; results in flight are not aborted). */
  private inflight: AbortController | undefined;
  private polling = false;
  private idleWait: AbortController | undefined;
  private idleWaiters: (() => void)[] = [];
  /** The live state last reported of each running task: its version and when (performance.now()). */
  private readonly liveSent = new Map<string, { version: number; at: number }>();
  /** Looks for live state due every liveEveryMs while tasks run. */
  private liveTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly options: ReportLoopOptions,
    private readonly call: ReportCall,
    private readonly startRun: StartRun,
    private readonly logger: Logger,
  ) {
    this.statusDelayMs = Math.min(options.statusDelayMs, options.reportIntervalMs);
  }

  /** Tasks held now (running, or finished and not yet acknowledged). */
  get held(): readonly TaskRun[] {
    return [...this.runs.values()];
  }

  /** Reports until `stop` aborts. */
  async run(stop: AbortSignal): Promise<void> {
    let backoff = this.options.retryInitialMs;
    let failures = 0;
    const onStop = () => {
      this.inflight?.abort();
      this.idleWait?.abort();
    };
    stop.addEventListener('abort', onStop, { once: true });
    try {
      while (!stop.aborted) {
        const state = this.state();
        const { urgent, statusNews } = state;
        // Status changes that have not lasted yet: wait for them (or for something urgent) before reporting.
        const statusDueIn = statusNews && this.statusSince !== undefined ? this.statusSince + this.statusDelayMs - performance.now() : 0;
        if (!urgent && statusDueIn > 0) {
          await this.pause(Math.min(statusDueIn, this.statusDelayMs));
          continue;
        }
        const body = this.build(state);
        const sentLive = state.live.map((run) => [run.id, run.live.version] as const);
        this.forced = false;
        // This report carries every status as it is now: changes from here on start a new clock.
        this.statusSince = undefined;
        clearTimeout(this.statusTimer);
        const waitMs = this.options.reportIntervalMs;
        const poll = new AbortController();
        this.inflight = poll;
        // A call carrying results is answered at once (the judicator acknowledges them): let it finish.
        this.polling = body.complete.length === 0 && (body.release?.length ?? 0) === 0;
        const started = performance.now();
        let answer: RpcResponse<'report'>;
        try {
          answer = await this.call({ ...body, wait_ms: waitMs }, { waitMs, signal: poll.signal });
          if (answer.result !== ReturnCode.OK) throw new Error(`the judicator answered ${answer.result}${answer.message ? `: ${answer.message}` : ''}`);
        } catch (error) {
          this.inflight = undefined;
          if (stop.aborted) break;
          if (poll.signal.aborted) continue; // woken: something changed, report it now
          failures++;
          const log = failures === 1 || failures % 20 === 0 ? 'warn' : 'debug';
          this.logger[log]({ err: describeError(error), failures, retryMs: backoff }, `report failed; keeping ${body.complete.length} result(s) and retrying`);
          await sleep(backoff, stop);
          backoff = Math.min(backoff * 2, this.options.retryMaxMs);
          continue;
        }
        this.inflight = undefined;
        if (failures > 0) this.logger.info({ failures }, 'reporting to the judicators again');
        failures = 0;
        backoff = this.options.retryInitialMs;
        this.fresh = false;
        this.reported = new Map(body.executing.map((e) => [e.id, e.status]));
        this.reportedVacant = body.vacant;
        for (const [id, version] of sentLive) this.liveSent.set(id, { version, at: performance.now() });
        for (const id of body.release ?? []) this.toRelease.delete(id);
        this.apply(answer);
        // Tasks just assigned are news too: reported with their status once it has lasted, or with their result.
        if (this.state().statusNews) this.noteStatusChange();
        // Results the judicator did not acknowledge are sent again; a judicator that never does must
        // not get them in a tight loop.
        if (body.complete.length > 0 && !body.complete.some((c) => answer.cancel.includes(c.id))) {
          this.logger.warn({ complete: body.complete.map((c) => c.id) }, 'the judicator did not acknowledge any reported result; retrying after a pause');
          await sleep(this.options.retryInitialMs, stop);
        }
        // A judicator that answers a long poll at once with nothing (it may not hold polls without free
        // slots) must not make us spin: wait out the interval, unless something changes.
        const elapsed = performance.now() - started;
        if (answer.cancel.length === 0 && answer.assign.length === 0 && elapsed < waitMs && !this.state().urgent && this.statusSince === undefined) {
          await this.pause(waitMs - elapsed);
        }
      }
    } finally {
      stop.removeEventListener('abort', onStop);
      clearTimeout(this.statusTimer);
      clearInterval(this.liveTimer);
      this.liveTimer = undefined;
    }
  }

  /** While tasks run, looks every liveEveryMs for live state to report, and reports it (waking the loop). */
  private watchLive(): void {
    if (this.options.liveEveryMs <= 0 || this.liveTimer) return;
    this.liveTimer = setInterval(() => {
      if (![...this.runs.values()].some((run) => !run.finished)) {
        clearInterval(this.liveTimer);
        this.liveTimer = undefined;
        return;
      }
      if (this.liveDue().length > 0) this.wake();
    }, this.options.liveEveryMs);
    this.liveTimer.unref();
  }

  /** Running tasks whose live state should go in the next report. */
  private liveDue(): TaskRun[] {
    const every = this.options.liveEveryMs;
    if (every <= 0) return [];
    const now = performance.now();
    const due: TaskRun[] = [];
    for (const run of this.runs.values()) {
      if (run.finished || run.cancelled || run.result !== null || run.live.elapsedMs(now) < every) continue;
      const sent = this.liveSent.get(run.id);
      if (!sent || (sent.version !== run.live.version && now - sent.at >= every)) due.push(run);
    }
    return due;
  }

  /** Waits `ms`, or until woken. */
  private async pause(ms: number): Promise<void> {
    this.idleWait = new AbortController();
    await sleep(ms, this.idleWait.signal);
    this.idleWait = undefined;
  }

  /** A running task's status changed: report it once it has lasted statusDelayMs. */
  private noteStatusChange(): void {
    if (this.statusSince !== undefined) return;
    // Monotonic: a wall clock stepped back must not hold the statuses (and the heartbeat) back.
    this.statusSince = performance.now();
    this.statusTimer = setTimeout(() => {
      this.statusTimer = undefined;
      this.wake();
    }, this.statusDelayMs);
  }

  /** Something changed: report it now (aborting a long poll in flight). */
  wake(): void {
    if (this.polling) this.inflight?.abort();
    this.idleWait?.abort();
  }

  /** Stops taking tasks (SIGTERM): reports no free slot from now on. */
  startDrain(): void {
    if (!this.accepting) return;
    this.accepting = false;
    this.forced = true;
    this.wake();
  }

  /** Resolves when no task is held any more (all finished and acknowledged). */
  idle(): Promise<void> {
    if (this.runs.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * The end (SIGINT, or a drain that ran out of time): kills every task, waits for them, and sends a
   * last report with the results that are ready and every other task handed back (`release`).
   */
  async shutdown(): Promise<void> {
    this.accepting = false;
    for (const run of this.runs.values()) {
      if (!run.finished && !run.cancelled && run.result === null) {
        this.stoppedByUs.add(run.id);
        run.cancel();
      }
    }
    await Promise.all([...this.runs.values()].map((run) => run.done));
    const body = this.build(this.state());
    const release = [...new Set([...(body.release ?? []), ...this.stoppedByUs])];
    if (body.complete.length === 0 && release.length === 0) return;
    const deadline = Date.now() + this.options.finalReportMs;
    const final: RpcRequest<'report'> = { ...body, executing: [], vacant: 0, release, wait_ms: 0 };
    let backoff = this.options.retryInitialMs;
    for (;;) {
      try {
        const answer = await this.call(final, { waitMs: 0, signal: AbortSignal.timeout(Math.max(deadline - Date.now(), 1)) });
        if (answer.result !== ReturnCode.OK) throw new Error(`the judicator answered ${answer.result}${answer.message ? `: ${answer.message}` : ''}`);
        this.logger.info({ complete: final.complete.length, released: release }, `handed back ${release.length} task(s) to the judicators`);
        return;
      } catch (error) {
        if (Date.now() + backoff >= deadline) {
          this.logger.warn(
            { err: describeError(error), complete: final.complete.map((c) => c.id), released: release },
            'could not tell the judicators about the tasks this executor stopped; they go back to Retrying when the judicators see this executor gone',
          );
          return;
        }
        await sleep(backoff);
        backoff = Math.min(backoff * 2, this.options.retryMaxMs);
      }
    }
  }

  /**
   * What the next report would say; `urgent`: something the judicator must hear now (results, tasks
   * handed back, a slot freed, the drain); `statusNews`: running tasks differ from what it last heard.
   */
  private state(): ReportState {
    const finished: TaskRun[] = [];
    const executing: { id: string; status: number }[] = [];
    let busy = 0;
    for (const run of this.runs.values()) {
      if (!run.finished) busy++;
      if (run.cancelled) continue;
      if (run.finished && run.result) finished.push(run);
      else if (!run.finished) executing.push({ id: run.id, status: run.status });
    }
    const release = [...this.toRelease];
    const vacant = this.accepting ? Math.max(0, this.options.slots - busy) : 0;
    const urgent = finished.length > 0 || release.length > 0 || vacant > this.reportedVacant || this.forced;
    const statusNews = executing.length !== this.reported.size || executing.some((e) => this.reported.get(e.id) !== e.status);
    return { finished, executing, release, vacant, urgent, statusNews, live: this.liveDue() };
  }

  /** The report's body for `state` (results encoded for the wire: only when it is sent). */
  private build({ finished, executing, release, vacant, live }: ReportState): Omit<RpcRequest<'report'>, 'wait_ms'> {
    return {
      executor: this.options.name,
      key: this.options.key,
      info: this.options.info,
      complete: finished.map((run) => completedToWire({ id: run.id, status: run.status, result: run.result! })),
      executing,
      vacant,
      ...(release.length ? { release } : {}),
      ...(this.fresh ? { fresh: true } : {}),
      ...(live.length ? { live: live.map((run) => liveToWire(run.live.snapshot(run.id))) } : {}),
    };
  }

  private apply(answer: RpcResponse<'report'>): void {
    for (const id of answer.cancel) {
      const run = this.runs.get(id);
      if (!run) continue;
      if (run.finished) {
        // A finished task in `cancel` is the judicator's acknowledgement (or a task it took back): forget it.
        this.runs.delete(id);
        this.liveSent.delete(id);
      } else {
        this.logger.info({ task: id, status: run.status }, `judicator cancelled task ${id}; stopping it`);
        run.cancel();
      }
    }
    for (const wire of answer.assign) {
      if (this.runs.has(wire.id)) continue; // handed again because an answer was lost: already ours
      const slot = this.freeSlot();
      if (!this.accepting || slot === undefined) {
        this.logger.info({ task: wire.id, accepting: this.accepting }, `handing task ${wire.id} back: ${this.accepting ? 'no free slot' : 'this executor is stopping'}`);
        this.toRelease.add(wire.id);
        continue;
      }
      let task: Task;
      try {
        task = taskFromWire(wire);
      } catch (error) {
        this.logger.error({ task: wire.id, err: describeError(error) }, `task ${wire.id} arrived malformed; handing it back`);
        this.toRelease.add(wire.id);
        continue;
      }
      this.logger.info({ task: task.id, slot, retries: task.retries }, `running task ${task.id} in slot ${slot}`);
      const run = this.startRun(task, slot, (changed) => this.changed(changed));
      this.runs.set(task.id, run);
      this.watchLive();
    }
    this.checkIdle();
  }

  private changed(run: TaskRun): void {
    // A task the judicator took away is forgotten as soon as its processes are gone.
    if (run.finished && run.cancelled && !this.stoppedByUs.has(run.id)) {
      this.runs.delete(run.id);
      this.liveSent.delete(run.id);
    }
    this.checkIdle();
    // A result, or a slot freed, goes out at once; a status change once it has lasted.
    if (run.finished) this.wake();
    else this.noteStatusChange();
  }

  private freeSlot(): number | undefined {
    const used = new Set([...this.runs.values()].filter((r) => !r.finished).map((r) => r.slot));
    for (let slot = 0; slot < this.options.slots; slot++) if (!used.has(slot)) return slot;
    return undefined;
  }

  private checkIdle(): void {
    if (this.runs.size > 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }
}
