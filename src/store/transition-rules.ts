// The rules of a task's transitions, written once for every store: given a task's small fields as a store
// read them, what a transition decides (a "no", nothing to write, or the task's next state, with the
// result it ends with and whether its executor must be told). A store backend does the I/O around a rule:
// it reads the state the rule needs, asks the rule, and writes the change conditioned on the state it read
// (etcd: the key's mod revision; MongoDB: a filter on the fields read), trying again when another writer
// got there first. Nothing here does I/O, so the conditioned writes of many transitions can later be
// gathered into one etcd transaction or one MongoDB transaction (group commit).
//
// A task's large fields (sources, data, input, commands) are written once, when it is added, and never
// again: no rule changes them. Its result is written once, by the transition that ends it.
import { packText, resultSize } from '../task/codec';
import { RUNNING_STATUSES, TaskStatus, isDoneStatus, type CompletedTask, type TaskResult } from '../task/types';
import type { RequeueOutcome, RequeueReason } from './task-store';

/**
 * What a rule reads of a task: the small fields every store keeps beside its large ones (the etcd store's
 * metadata has exactly these names; the MongoDB store maps its document's fields onto them).
 */
export interface TaskState {
  user: number;
  done: boolean;
  status: TaskStatus;
  executor: string | null;
  /** The task's last report time (add, assignment, running report, finish), ms since the epoch. */
  report_ms: number;
  /** How many times the task went back to Retrying. */
  retries: number;
  /** The holding executor has reported the task as executing since it was assigned. */
  acked: boolean;
  /** Bytes of the task's input, as the size limit counts them (codec.inputSize). */
  input_size: number;
}

/** A task's change: its next state, and (when it ends) the result it ends with. */
export interface Change {
  next: TaskState;
  /** The result a task that ends now keeps (none: cancelled). */
  result?: TaskResult;
  /** The result is the one the executor reported (a store may have staged it before deciding). */
  reported?: boolean;
  /** The executor the task is taken from must be told (the change feed's `released`). */
  announce: boolean;
}

/** What a rule decided for one task. */
export type Decision<T> =
  /** A "no": the task is missing, done, or not held as the caller said. Nothing is written. */
  | { kind: 'refuse'; outcome: T }
  /** Nothing to write: the task is as the transition wants it. */
  | { kind: 'keep'; outcome: T }
  | { kind: 'change'; outcome: T; change: Change };

const refuse = <T>(outcome: T): Decision<T> => ({ kind: 'refuse', outcome });

/** Whether `executor` holds the task (and it is not done). */
export function heldBy(state: TaskState | undefined, executor: string): state is TaskState {
  return state !== undefined && !state.done && state.executor === executor;
}

/** Whether the task waits in the queue (not done, held by nobody). */
export function isQueued(state: TaskState): boolean {
  return !state.done && state.executor === null;
}

/** The change that ends a task with `status` (and `result`), whoever held it. */
function finish(state: TaskState, status: TaskStatus, now: number, result: TaskResult | undefined, options: { announce: boolean; reported?: boolean }): Change {
  const change: Change = { next: { ...state, done: true, status, executor: null, report_ms: now, acked: false }, announce: options.announce };
  if (result) change.result = result;
  if (options.reported) change.reported = true;
  return change;
}

// ---- the transitions' rules ----

/**
 * assign: a queued task is handed to `executor`, keeping its status (Pending or Retrying). `assignment`
 * is what it changes, for a store that picks and changes the task in one step (its filter: isQueued).
 */
export function assignRule(state: TaskState | undefined, executor: string, now: number): Decision<boolean> {
  if (!state || !isQueued(state)) return refuse(false);
  return { kind: 'change', outcome: true, change: { next: { ...state, ...assignment(executor, now) }, announce: false } };
}

export function assignment(executor: string, now: number): Pick<TaskState, 'executor' | 'report_ms' | 'acked'> {
  return { executor, report_ms: now, acked: false };
}

/** How often (at most) a running task's report time is rewritten when nothing else changed (runningRule), ms. */
export const DEFAULT_REPORT_REFRESH_MS = 5_000;

/**
 * updateExecuting: the holder reports a task as running. Only a running status fits a task that is not
 * done; anything else keeps the stored status. The task's report time is refreshed once it is older than
 * `refreshMs` (rewriting an unchanged task on every report would be most of a store's work under load;
 * the refresh is far below the leader's task expiry).
 */
export function runningRule(state: TaskState | undefined, executor: string, reported: TaskStatus, now: number, refreshMs: number): Decision<boolean> {
  if (!heldBy(state, executor)) return refuse(false);
  const status = RUNNING_STATUSES.includes(reported) ? reported : state.status;
  if (status === state.status && state.acked && now - state.report_ms < refreshMs) return { kind: 'keep', outcome: true };
  return { kind: 'change', outcome: true, change: { next: { ...state, status, acked: true, report_ms: now }, announce: false } };
}

/**
 * complete: the holder finishes a task. A result that would take the task past the size limit, or a
 * status that is not final (the judicator refuses such a report; should one get here), ends it as
 * Unknown error saying why, so that the task still ends consistent.
 */
export function completeRule(state: TaskState | undefined, executor: string, reported: CompletedTask, maxTaskSize: number, now: number): Decision<boolean> {
  if (!heldBy(state, executor)) return refuse(false);
  const size = state.input_size + resultSize(reported.result);
  if (size > maxTaskSize) return { kind: 'change', outcome: true, change: finish(state, TaskStatus.UNKNOWN_ERROR, now, tooLargeResult(size, maxTaskSize), { announce: false }) };
  if (!isDoneStatus(reported.status)) {
    return { kind: 'change', outcome: true, change: finish(state, TaskStatus.UNKNOWN_ERROR, now, notFinalResult(reported.result, reported.status), { announce: false }) };
  }
  return { kind: 'change', outcome: true, change: finish(state, reported.status, now, reported.result, { announce: false, reported: true }) };
}

/** cancel: a task that is not done ends as Cancelled, without a result; its holder (if any) is told. */
export function cancelRule(state: TaskState | undefined, now: number): Decision<{ found: true; executor: string | null } | { found: false }> {
  if (!state || state.done) return refuse({ found: false });
  return { kind: 'change', outcome: { found: true, executor: state.executor }, change: finish(state, TaskStatus.CANCELLED, now, undefined, { announce: true }) };
}

/** How a task goes back to the queue: the three transitions that do it differ only in these. */
export interface SendBack {
  /** Whether this counts as a retry (a release by a stopping executor does not). */
  countRetry: boolean;
  /** Past this many retries the task ends as Unknown error instead. */
  maxRetries: number;
  reason: RequeueReason;
  /** Whether the executor must be told through the change feed (not when its own report is answered). */
  announce: boolean;
  /** Which of the executor's tasks this applies to. */
  due(state: TaskState): boolean;
}

/** release: tasks an executor gives back on purpose (it is stopping), without counting a retry. */
export const RELEASE: SendBack = { countRetry: false, maxRetries: Number.POSITIVE_INFINITY, reason: 'unreported', announce: false, due: () => true };

/**
 * requeueUnreported: tasks the executor acknowledged but no longer reports: it lost them (it restarted).
 * Its own report is answered with the cancels, so nobody else needs telling.
 */
export function unreported(maxRetries: number): SendBack {
  return { countRetry: true, maxRetries, reason: 'unreported', announce: false, due: (state) => state.acked };
}

/** requeueHeldBy: all of a gone executor's tasks, or those it stopped reporting (older than the cutoff). */
export function heldTooLong(options: { olderThanMs?: number; reason: RequeueReason; maxRetries: number }): SendBack {
  const cutoff = options.olderThanMs;
  // The executor may still be alive (it only stopped reporting these): the change feed tells it.
  return { countRetry: true, maxRetries: options.maxRetries, reason: options.reason, announce: true, due: (state) => cutoff === undefined || state.report_ms < cutoff };
}

/**
 * A task goes back to Retrying (assignable again, at its place in the queue: ids are time-ordered), or
 * past the retry limit ends as Unknown error with a message saying why.
 */
export function sendBackRule(state: TaskState | undefined, executor: string, how: SendBack, now: number): Decision<'retried' | 'abandoned' | 'skipped'> {
  if (!heldBy(state, executor) || !how.due(state)) return refuse('skipped');
  const retries = state.retries + (how.countRetry ? 1 : 0);
  if (retries > how.maxRetries) {
    return { kind: 'change', outcome: 'abandoned', change: finish(state, TaskStatus.UNKNOWN_ERROR, now, errorResult(giveUpMessage(state.retries, how.reason)), { announce: how.announce }) };
  }
  return {
    kind: 'change',
    outcome: 'retried',
    change: { next: { ...state, status: TaskStatus.RETRYING, executor: null, retries, acked: false, report_ms: now }, announce: how.announce },
  };
}

/** The outcome of a send-back over `ids`, from each task's. */
export function requeueOutcome(ids: readonly string[], outcomeOf: (id: string) => 'retried' | 'abandoned' | 'skipped' | undefined): RequeueOutcome {
  const outcome: RequeueOutcome = { retried: [], abandoned: [] };
  for (const id of ids) {
    const result = outcomeOf(id);
    if (result === 'retried') outcome.retried.push(id);
    else if (result === 'abandoned') outcome.abandoned.push(id);
  }
  return outcome;
}

/** What the log says of a send-back that took tasks back (undefined when it took none). */
export function sendBackMessage(executor: string, how: SendBack, outcome: RequeueOutcome): string | undefined {
  const count = outcome.retried.length + outcome.abandoned.length;
  if (count === 0) return undefined;
  return `took ${count} tasks back from executor ${executor} (${how.reason}): ${outcome.retried.length} to Retrying, ${outcome.abandoned.length} given up`;
}

/** Tasks an executor was handed but never acknowledged (the answer carrying them was lost): given again. */
export function isUnacknowledged(state: TaskState, executor: string, reported: ReadonlySet<string>, id: string): boolean {
  return heldBy(state, executor) && !state.acked && !reported.has(id);
}

// ---- results a store writes itself ----
// For a task whose result would not fit under the size limit, and for a task that kept coming back to
// the queue: the same texts whatever the store.

/** A result with only an execute_error. */
export function errorResult(message: string): TaskResult {
  const empty = packText('');
  return { compile_output: empty, compile_error: empty, execute_output: empty, execute_error: packText(message) };
}

/** Stored instead of a result that would push the task over the size limit (the task ends as Unknown error). */
export function tooLargeResult(size: number, limit: number): TaskResult {
  return errorResult(
    `The result is too large to store: the task with its result would take ${size} bytes, more than the limit of ${limit} bytes (--task-max-size).`,
  );
}

/** Stored when an executor finishes a task with a status that is not a final one (it ends as Unknown error). */
export function notFinalResult(result: TaskResult, status: number): TaskResult {
  return { ...result, execute_error: packText(`The executor finished the task with status ${status}, which is not a final status.`) };
}

/** Why a task that kept going back to the queue was given up (it ends as Unknown error). */
export function giveUpMessage(retries: number, reason: RequeueReason): string {
  const times = `${retries} ${retries === 1 ? 'retry' : 'retries'}`;
  switch (reason) {
    case 'unreported':
      return `Gave up after ${times}: its executor lost it each time (the task may crash its executor).`;
    case 'executor-gone':
      return `Gave up after ${times}: its executor went away each time (the task may crash its executor).`;
    case 'expired':
      return `Gave up after ${times}: its executor stopped reporting it each time (the task may hang its executor).`;
  }
}
