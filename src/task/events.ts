// What the events stream tells of tasks (issue 17): a task's state after each change (TaskChange), and a
// running task's live state (LiveTask: which test of how many, for how long, its output so far), with the
// bounds every part of kv2 keeps them within. The store announces both, the judicators pass them on, the
// gateway streams them as Server-Sent Events.
import type { TaskStatus, TaskVerdict } from './types';

/** A task's state after a change: what a `task` event carries. */
export interface TaskChange {
  id: string;
  user: number;
  status: TaskStatus;
  done: boolean;
  /** The task's verdict once it has one (issue 17's result.verdict); null before, or without one. */
  verdict: TaskVerdict | null;
  executor: string | null;
}

/**
 * A running task's live state, replaced as it runs (never appended to): the step it is in, the test it
 * runs (1-based; 0 while it compiles) of how many, how long it has run, and the first LIVE_OUTPUT_MAX_BYTES
 * of the current step's (or test's) stdout and stderr.
 */
export interface LiveTask {
  id: string;
  step: 'compile' | 'execute';
  test: number;
  of: number;
  elapsed_ms: number;
  stdout: Buffer;
  stderr: Buffer;
}

/** Bytes of each stream a live record keeps: the first 64 KiB of the step's output, as it comes. */
export const LIVE_OUTPUT_MAX_BYTES = 64 * 1024;

/**
 * How often, at most, an executor reports a running task's live state (ms), and only once the task has
 * run this long and only when something changed: a task shorter than this costs nothing extra.
 */
export const DEFAULT_LIVE_REPORT_EVERY_MS = 500;

/** The fields of a TaskChange that make it a change: a report that only refreshes a task's time is none. */
export function sameChange(a: TaskChange, b: TaskChange): boolean {
  return a.status === b.status && a.done === b.done && a.verdict === b.verdict && a.executor === b.executor;
}
