// The TaskStore: everything the judicators keep about tasks and executors, behind one interface with two
// implementations (etcd/store.ts, mongo/store.ts). Nothing outside store/ knows which one runs.
//
// The transitions of a task's life are one list (TASK_TRANSITIONS), which each backend implements as one
// function each (etcd/transitions.ts, mongo/transitions.ts), deciding with the same rules
// (transition-rules.ts). Every transition is atomic per task: a task is held by at most one executor, a
// result is accepted only from the executor holding the task, and a task is `done` exactly once.
// Transitions never trust their caller about a task's state: they check it in the same atomic step.
import type { LiveTask, TaskChange } from '../task/events';
import type { CompletedTask, ExecutorInfo, ExecutorLanguage, ExecutorSandbox, Task, TaskBrief, TaskInput, TaskStatus } from '../task/types';

export type StoreKind = 'etcd' | 'mongodb';

export interface SearchQuery {
  /** Only this task (an invalid id is the caller's to refuse). */
  id?: string;
  user?: number;
  /** Inclusive bounds on add time, ms since the epoch. */
  startMs?: number;
  endMs?: number;
  /** Oldest first (default newest first); ties are broken by id, in the same direction. */
  oldToNew?: boolean;
  /** Page size; 0 means all (and `page` is ignored). */
  limit: number;
  page: number;
}

export interface SearchResult {
  /** ceil(matches / limit); 1 when limit is 0 and anything matched; 0 when nothing matched. */
  pages: number;
  /** Matching tasks before paging. */
  total: number;
  tasks: TaskBrief[];
}

/** A running task's state as its executor reports it. */
export interface ExecutingUpdate {
  id: string;
  status: TaskStatus;
}

/** Why tasks went back to Retrying, for the message of a task that gives up. */
export type RequeueReason = 'unreported' | 'executor-gone' | 'expired';

export interface RequeueOutcome {
  /** Back to Retrying, assignable again. */
  retried: string[];
  /** Past the retry limit: ended as Unknown error. */
  abandoned: string[];
}

/**
 * The leader's proof that it still leads, for its writes (SPEC §6: leader duties are fenced). The etcd3
 * client notices a lost lease only after two TTLs while etcd expires it after one, so a cut-off leader
 * may still believe it leads: every duty write is conditioned on its election key still existing.
 */
export interface WriteFence {
  /** The leader's election key in etcd: the etcd store adds "this key exists" to each transaction. */
  etcdKey: string;
  /** Whether the key still exists: stores that cannot join the check to their writes ask before each. */
  holds(): Promise<boolean>;
}

/**
 * What changed in the store, cluster-wide (any judicator's writes): wakes long-polling reports, and clients
 * waiting for a task's result (judicator/wait.ts). A feed that may have missed events (it reconnected)
 * sends 'pending'; it does not repeat 'done' events, so a waiter also looks again now and then.
 */
export type StoreEvent =
  | { type: 'pending' } // a task became assignable (added, or back to Retrying)
  | { type: 'released'; executor: string; id: string } // a task was taken from an executor (cancel, expiry)
  | { type: 'done'; id: string }; // a task became done (completed, cancelled, or given up)

/**
 * Task changes at one point of the store's history (issue 17's events): every task whose status, done,
 * verdict or executor changed there. `cursor` names the point: cursors order as strings, the same on
 * every judicator, so a client that saw a cursor can go on after it from any judicator.
 */
export interface TaskChangeBatch {
  cursor: string;
  changes: TaskChange[];
}

export interface TaskChangeHandlers {
  /** Batches in the store's order, each once. */
  batch(batch: TaskChangeBatch): void;
  /** The watch cannot go on from where it is (the history it needs is gone): it has stopped. */
  lost(reason: string): void;
}

/** A watch of the task changes (TaskStore.watchTaskChanges). */
export interface TaskChangeWatch {
  /** The cursor the watch goes on after, once it is live; rejects when it cannot start (history gone). */
  readonly started: Promise<string>;
  stop(): void;
}

/** A running task's live record as stored, with a version that differs whenever the record does. */
export interface LiveRecord {
  live: LiveTask;
  version: string;
}

/** The transitions of a task's life, in the order a task meets them: the one list every backend implements. */
export const TASK_TRANSITIONS = [
  'add',
  'assign',
  'updateExecuting',
  'complete',
  'release',
  'requeueUnreported',
  'requeueHeldBy',
  'cancel',
  'deleteFinishedBefore',
] as const satisfies readonly (keyof TaskTransitions)[];

export type TransitionName = (typeof TASK_TRANSITIONS)[number];

/** A backend's transitions: one function each, given the backend's own context first. */
export type TransitionFunctions<Context> = {
  [K in TransitionName]: (context: Context, ...args: Parameters<TaskTransitions[K]>) => ReturnType<TaskTransitions[K]>;
};

// Checked when compiling: a method of TaskTransitions missing from the list fails here.
const everyTransitionListed: Record<Exclude<keyof TaskTransitions, TransitionName>, never> = {};
void everyTransitionListed;

/** What one executor report brings, for TaskStore.report. */
export interface ReportInput {
  /** Finished tasks (each accepted only from their holder). */
  complete: readonly CompletedTask[];
  /** Tasks handed back because the executor is stopping. */
  release: readonly string[];
  /** Running tasks and their statuses (one also in `complete` or `release` counts as that only). */
  executing: readonly ExecutingUpdate[];
  /** Tasks held but neither reported nor acknowledged are lost past this many retries. */
  maxRetries: number;
  /** Free slots: tasks to hand out (first the unacknowledged ones, then the oldest queued). */
  vacant: number;
}

export interface ReportOutcome {
  /** complete's accepted ids. */
  accepted: string[];
  /** release's ids given back. */
  released: string[];
  /** updateExecuting's ids the executor does not hold (any more). */
  notHeld: string[];
  /** requeueUnreported's outcome: tasks the executor lost. */
  lost: RequeueOutcome;
  /** unacknowledged's tasks, then assign's. */
  assigned: Task[];
}

/**
 * The transitions, one method each. Each is atomic per task and idempotent where it says so; each
 * backend writes each as read -> decide (transition-rules.ts) -> write conditioned on what was read.
 */
export interface TaskTransitions {
  /**
   * Adds a Pending task; returns its id. With `id` (chosen by the client, already checked by the caller),
   * adding the same id again adds nothing and returns it: a client may retry an add whose answer it lost.
   * Throws TooLargeError past the size limit.
   */
  add(task: TaskInput, id?: string): Promise<string>;

  /** Cancels a task that is not done. Returns the executor that held it, or NOT_EXIST if done or unknown. */
  cancel(id: string): Promise<{ found: true; executor: string | null } | { found: false }>;

  // ---- an executor's report, transition by transition (TaskStore.report makes them all in one call) ----

  /**
   * Finishes tasks: each atomically, and only if `executor` still holds it (done=true, its status and
   * result, executor=null). Returns the ids that were accepted; the others are silently dropped (the
   * task was cancelled or given to another executor). A result over the size limit ends the task as
   * Unknown error instead.
   */
  complete(executor: string, tasks: readonly CompletedTask[]): Promise<{ accepted: string[] }>;

  /**
   * Records running tasks' statuses (and that the executor acknowledged them); refreshes their report
   * time. Returns the ids `executor` does not hold (any more): the executor must drop those.
   */
  updateExecuting(executor: string, updates: readonly ExecutingUpdate[]): Promise<{ notHeld: string[] }>;

  /**
   * Tasks `executor` holds and had acknowledged (reported as executing before) but did not report now:
   * the executor lost them (it restarted). They go back to Retrying (or give up past `maxRetries`).
   */
  requeueUnreported(executor: string, reported: ReadonlySet<string>, maxRetries: number): Promise<RequeueOutcome>;

  /**
   * Tasks `executor` gives back on purpose (it is stopping): back to Retrying, held by nobody, without
   * counting a retry. Tasks it does not hold are ignored. Returns the ids given back.
   */
  release(executor: string, ids: readonly string[]): Promise<string[]>;

  /** Assigns up to `count` assignable tasks (oldest first) to `executor`, each atomically. */
  assign(executor: string, count: number): Promise<Task[]>;

  // ---- leader duties (idempotent: two leaders at once, or one changing mid-way, do no harm) ----

  /**
   * Sends back to Retrying every task of `executor` (gone), or only those whose report time is older
   * than `olderThanMs` (stopped reporting them). Past `maxRetries` a task ends as Unknown error.
   */
  requeueHeldBy(
    executor: string,
    options: { olderThanMs?: number; reason: RequeueReason; maxRetries: number; fence?: WriteFence },
  ): Promise<RequeueOutcome>;

  /** Deletes done tasks whose report (finish) time is before `beforeMs`; returns how many. */
  deleteFinishedBefore(beforeMs: number, batch?: number, fence?: WriteFence): Promise<number>;
}

export interface TaskStore extends TaskTransitions {
  readonly kind: StoreKind;

  /**
   * One executor report in one call: complete, release, updateExecuting and requeueUnreported (with
   * `reported` the ids the report names), and unacknowledged then assign for its free slots: the same
   * transitions with the same outcomes as calling them one by one, in fewer round trips. Its assignments
   * come from the queue as it was before the report: the tasks it gives back or loses are assignable
   * again, to any executor, normally from the next report on.
   */
  report(executor: string, input: ReportInput): Promise<ReportOutcome>;

  // ---- reads ----

  search(query: SearchQuery): Promise<SearchResult>;

  /** The full task (input and result), or undefined. */
  get(id: string): Promise<Task | undefined>;

  /**
   * Tasks assigned to `executor` that it never acknowledged and did not report now (the answer carrying
   * them was lost): to hand to it again, unchanged (no retry counted).
   */
  unacknowledged(executor: string, reported: ReadonlySet<string>, limit: number): Promise<Task[]>;

  /** Executors currently holding tasks, with the oldest report time among their tasks. */
  holders(): Promise<{ executor: string; oldestReportMs: number; tasks: number }[]>;

  /** Counts of tasks by status (metrics, `kv2 status`). */
  countByStatus(): Promise<Partial<Record<TaskStatus, number>>>;

  // ---- executors ----

  /**
   * Records that `executor` reported now (for `executors` and executor expiry), with what it says of
   * itself; rewritten at once when any of that changed (a new process: a new key), else at most every
   * heartbeat refresh.
   */
  recordHeartbeat(executor: string, info: ExecutorHeartbeat): Promise<void>;

  /** Executors that reported (with their last report time), for the `executors` RPC. Keys stay inside. */
  listExecutors(): Promise<ExecutorInfo[]>;

  /** The key of the executor process that last registered under this name (undefined: none recorded). */
  executorKey(name: string): Promise<string | undefined>;

  /** Forgets an executor record (the leader removes executors that are gone). */
  removeExecutor(name: string, fence?: WriteFence): Promise<void>;

  // ---- the callback outbox (issue 17) ----
  // The transition that ends a task with a callback_url puts its callback in the outbox in the same
  // atomic write (so a crash cannot lose it); the leader delivers it and settles it here.

  /** Callbacks due at `nowMs` (soonest first), at most `limit`. */
  dueCallbacks(nowMs: number, limit: number): Promise<PendingCallback[]>;

  /**
   * After a delivery attempt: `done` (delivered, or given up) takes the callback out of the outbox; a retry
   * time keeps it, one attempt more. A callback no longer in the outbox is left alone.
   */
  settleCallback(id: string, outcome: { done: true } | { retryAtMs: number }, fence?: WriteFence): Promise<void>;

  // ---- change feed ----

  /** Calls `listener` on every store event, cluster-wide; returns the unsubscribe function. */
  subscribe(listener: (event: StoreEvent) => void): () => void;

  /**
   * Follows the task changes, cluster-wide, from just after `after` (a cursor an earlier watch gave, while
   * the store still has that history) or from now. Costs nothing until called: short tasks pay for it
   * only while someone watches.
   */
  watchTaskChanges(after: string | undefined, handlers: TaskChangeHandlers): TaskChangeWatch;

  // ---- live state of running tasks (one small record per task, replaced, gone when the task leaves its executor) ----

  /**
   * Records the live state of tasks `executor` holds (one record per task, replacing the last); a task it
   * does not hold (any more) is skipped. Returns the ids recorded.
   */
  writeLive(executor: string, records: readonly LiveTask[]): Promise<string[]>;

  /** The live record of task `id`, or undefined when it has none (not running, or not long enough). */
  readLive(id: string): Promise<LiveRecord | undefined>;

  /**
   * Calls `listener` with task `id`'s live record whenever it changes (null once it is gone); returns the
   * function that stops it. The record as it is now need not be sent: readLive it after subscribing.
   */
  watchLive(id: string, listener: (record: LiveRecord | null) => void): () => void;

  close(): Promise<void>;
}

/** A finished task's callback waiting in the outbox. */
export interface PendingCallback {
  id: string;
  url: string;
  /** Deliveries tried and failed so far. */
  attempts: number;
  dueMs: number;
}

/** What an executor's report says of it, as its record keeps it. */
export interface ExecutorHeartbeat {
  vacant: number;
  slots?: number;
  /** The executor's host name. */
  host?: string;
  /** When its process started (ISO time). */
  started?: string;
  /** The random key of its process: a report with another key comes from another process of that name. */
  key?: string;
  /** The languages whose toolchains it found. */
  languages?: ExecutorLanguage[];
  /** How it confines tasks. */
  sandbox?: ExecutorSandbox;
}

/** The fields of a heartbeat that, changed, make the record be written at once. */
export function heartbeatSignature(info: ExecutorHeartbeat): string {
  return JSON.stringify([info.slots, info.host, info.started, info.key, info.languages ?? null, info.sandbox ?? null]);
}

/** Limits and clocks a store is created with. */
export interface StoreOptions {
  /** Largest stored task (input plus result), bytes. */
  maxTaskSize: number;
  /** Now, in ms: judicators use the wall clock; tests may pin it. */
  now?: () => number;
}
