// What both stores' change feeds share: the store's listeners and the fan-out of each event to them, and
// the one timer that goes back to the feed's source (an etcd watch, a change stream) after it broke.
import { describeError } from '../common/errors';
import type { Logger } from '../common/logging';
import type { StoreEvent } from './task-store';

export abstract class StoreEventFanout {
  private readonly listeners = new Set<(event: StoreEvent) => void>();
  private retryTimer: NodeJS.Timeout | undefined;
  /** Set by stopFanout: no listener is called and no retry runs after it. */
  protected closed = false;

  constructor(
    protected readonly logger: Logger,
    private readonly retryMs: number,
  ) {}

  subscribe(listener: (event: StoreEvent) => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  /** Calls every listener; one that throws is logged and the others are still called. */
  protected emit(event: StoreEvent): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(event);
      } catch (error) {
        this.logger.error({ err: describeError(error), event }, 'a store event listener threw');
      }
    }
  }

  /** Runs `again` after the feed's retry pause: once, however often it is asked for meanwhile. */
  protected retryLater(again: () => void): void {
    if (this.closed || this.retryTimer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (!this.closed) again();
    }, this.retryMs);
    this.retryTimer.unref();
  }

  protected cancelRetry(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }

  protected stopFanout(): void {
    this.closed = true;
    this.listeners.clear();
    this.cancelRetry();
  }
}
