// A pause that ends early when something happens: the callback outbox and a client's wait for a task
// sleep until their next look, and the store's change feed wakes them at once.

export class Wakeup {
  private wakeSleeper: (() => void) | undefined;

  /** Waits `ms`, or until `signal` aborts, or until wake() is called, whichever comes first. */
  sleep(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        this.wakeSleeper = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener('abort', done, { once: true });
      this.wakeSleeper = done;
    });
  }

  /** Ends the sleep under way; with none under way it does nothing (callers keep a flag of what happened). */
  wake(): void {
    this.wakeSleeper?.();
  }
}
