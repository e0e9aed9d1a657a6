// Results a store writes itself (not an executor): for a task whose result would not fit under the size
// limit, and for a task that kept coming back to the queue. Shared by both stores so the texts a user
// reads do not depend on the store.
import { packText } from '../task/codec';
import type { TaskResult } from '../task/types';
import type { RequeueReason } from './task-store';

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
