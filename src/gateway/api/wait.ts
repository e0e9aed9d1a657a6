// GET /api/task?wait=: a task once it is done, or as it is when the wait ends, from one `wait` call to a
// judicator (which waits on the store's change feed) instead of a client polling GET /api/task, each poll
// an HTTP request, an RPC and a store read. A judicator that does not know `wait` (older than this
// gateway, during a rolling update) is polled with `get` from here instead, so the route means the same
// whichever judicator answers.
//
// Each held `wait` call holds a connection to a judicator for up to a minute. They go through an RPC
// client of their own, so they never take the connections adds and gets need (the RPC client keeps at
// most 64 per judicator), and at most limits.wait_max_held are held at once: the waits beyond that are
// polled with `get` from here, the fallback above.
import { UnavailableError } from '../../common/errors';
import type { Logger } from '../../common/logging';
import { sleep } from '../../common/processes';
import { UNKNOWN_METHOD, type RpcResponse } from '../../rpc/contract';
import { ReturnCode } from '../../task/types';
import type { JudicatorCalls } from './judicator';

/** Longest wait a request may ask for, seconds (config limits.wait_max_s): under common proxy timeouts. */
export const DEFAULT_WAIT_MAX_S = 60;
/** Milliseconds between two `get`s while waiting on judicators that do not know `wait`. */
export const WAIT_FALLBACK_POLL_MS = 200;
/** After a judicator said it does not know `wait`, waits poll for this long before asking `wait` again (ms). */
export const WAIT_UNKNOWN_MEMORY_MS = 30_000;
/** `wait` calls held at once (config limits.wait_max_held): below the RPC client's 64 connections a judicator. */
export const DEFAULT_WAIT_MAX_HELD = 48;
/** Milliseconds between two warnings that waits are being polled because too many are held. */
const OVERFLOW_WARN_MS = 60_000;

export interface TaskWaitsOptions {
  /** Calls for `get` (the gateway's usual RPC client). */
  calls: JudicatorCalls;
  /** Calls for `wait`: an RPC client of their own (its own connections). */
  waitCalls: JudicatorCalls;
  /** What one RPC may take besides the wait (the gateway's rpc.timeout_ms). */
  rpcTimeoutMs: number;
  /** `wait` calls held at once; more waits are polled. */
  maxHeld: number;
  logger: Logger;
}

/** A judicator's answer saying it has no such method (see the RPC contract): an older judicator. */
export function isUnknownMethod(answer: { result: number; message?: string }, method: string): boolean {
  return answer.result === ReturnCode.INVALID_INPUT && answer.message === UNKNOWN_METHOD(method);
}

export class TaskWaits {
  /** Until when waits poll `get` rather than call `wait` (ms since the epoch). */
  private pollUntil = 0;
  /** Aborted when the server closes: a wait held for a minute must not hold up a gateway that stops. */
  private readonly closing = new AbortController();
  /** `wait` calls under way. */
  private held = 0;
  private lastOverflowWarning = 0;

  constructor(private readonly options: TaskWaitsOptions) {}

  /**
   * Task `id` as `get` answers it (any result code), once it is done or after `waitMs`; `signal` aborts
   * the wait (the client hung up).
   */
  async wait(id: string, waitMs: number, hungUp: AbortSignal): Promise<RpcResponse<'get'>> {
    try {
      return await this.waitOrPoll(id, waitMs, AbortSignal.any([hungUp, this.closing.signal]));
    } catch (error) {
      if (!this.closing.signal.aborted || hungUp.aborted) throw error;
      throw new UnavailableError('the gateway is stopping; ask again (another gateway, or this one once it is back)');
    }
  }

  /** Ends the waits under way (their clients are told to ask again). */
  close(): void {
    this.closing.abort();
  }

  private async waitOrPoll(id: string, waitMs: number, signal: AbortSignal): Promise<RpcResponse<'get'>> {
    const { calls, waitCalls, logger } = this.options;
    const deadline = Date.now() + waitMs;
    if (Date.now() >= this.pollUntil && this.held < this.options.maxHeld) {
      let answer: RpcResponse<'wait'>;
      this.held++;
      try {
        answer = await waitCalls.answer('wait', { id, timeout_ms: waitMs }, { timeoutMs: waitMs + this.options.rpcTimeoutMs, signal });
      } finally {
        this.held--;
      }
      if (!isUnknownMethod(answer, 'wait')) return answer;
      this.pollUntil = Date.now() + WAIT_UNKNOWN_MEMORY_MS;
      logger.warn(
        `a judicator does not know the wait call (it is older than this gateway): GET /api/task?wait= polls the judicators for ${WAIT_UNKNOWN_MEMORY_MS / 1000} s, then tries again`,
      );
    } else if (this.held >= this.options.maxHeld && Date.now() - this.lastOverflowWarning > OVERFLOW_WARN_MS) {
      this.lastOverflowWarning = Date.now();
      logger.warn(
        `${this.held} clients are waiting for results at once, the most this gateway holds calls for (limits.wait_max_held); the others are polled every ${WAIT_FALLBACK_POLL_MS} ms`,
      );
    }
    for (;;) {
      const answer = await calls.answer('get', { id }, { signal });
      if (answer.result !== ReturnCode.OK || answer.task?.done || Date.now() >= deadline) return answer;
      await sleep(Math.min(WAIT_FALLBACK_POLL_MS, deadline - Date.now()), signal);
      // A wait given up (hung up, or closing) ends as an abandoned call does.
      signal.throwIfAborted();
    }
  }
}
