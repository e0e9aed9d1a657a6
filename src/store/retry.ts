// The one loop that waits for what a task store needs before it can be opened: etcd while the cluster's
// store is chosen (the etcd module may still be starting), the MongoDB replica set while it is initiated
// or has no primary. It tries again after every error `retryable` accepts, says now and then what it
// waits for, and gives up only when `signal` aborts.
import { describeError } from '../common/errors';
import type { Logger } from '../common/logging';
import { sleep } from '../common/processes';

/** How often the loop says what it still waits for (ms). */
export const WAIT_LOG_EVERY_MS = 15_000;

export interface RetryOptions {
  /** What is waited for, for the log: "waiting for <what>". */
  what: string;
  logger: Logger;
  /** Pause between attempts, ms. */
  retryMs: number;
  /** Whether an attempt's error means "not ready yet" (else it is thrown). */
  retryable(error: unknown): boolean;
  signal?: AbortSignal;
  /** Fields logged with the wait. */
  fields?: Record<string, unknown>;
}

/** `attempt`'s answer once it gives one, or undefined when `signal` aborts first. */
export async function retryUntilReady<T>(attempt: () => Promise<T>, options: RetryOptions): Promise<T | undefined> {
  let lastLog = 0;
  while (!options.signal?.aborted) {
    try {
      return await attempt();
    } catch (error) {
      if (options.signal?.aborted) return undefined;
      if (!options.retryable(error)) throw error;
      if (Date.now() - lastLog > WAIT_LOG_EVERY_MS) {
        lastLog = Date.now();
        options.logger.info({ ...options.fields, err: describeError(error) }, `waiting for ${options.what}`);
      }
      await sleep(options.retryMs, options.signal);
    }
  }
  return undefined;
}
