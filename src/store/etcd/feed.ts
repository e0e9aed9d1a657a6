// The etcd store's change feed: one watch per store on the feed/ and finished/ keys, whoever wrote them,
// fanned out to the store's listeners. A put under feed/pending/ means a task became assignable; a put
// under feed/released/ names the executor a task was taken from; a put under finished/<ms>/<id> (made by
// the transaction that ends a task, for retention) means the task is done, at no extra write. Whenever
// the watch may have missed events (it reconnected, was cancelled by a compaction, or the etcd client was
// replaced) listeners get a 'pending' event, so a long-polling report looks again instead of sleeping
// through work (a client waiting for a result looks again on a timer of its own: judicator/wait.ts).
import type { Etcd3, IWatchResponse, Watcher } from 'etcd3';
import { describeError } from '../../common/errors';
import type { Logger } from '../../common/logging';
import { StoreEventFanout } from '../event-fanout';
import type { StoreEvent } from '../task-store';
import { lastSegment, prefixEnd, type StoreKeys } from './keys';

/** How long to wait before watching again after etcd cancelled the watch. */
export const FEED_RETRY_MS = 1_000;
/** How long closing waits for etcd to confirm the watch's cancel (a store closing while etcd is gone). */
const FEED_CANCEL_WAIT_MS = 1_000;

export class StoreFeed extends StoreEventFanout {
  private watcher: Watcher | undefined;
  private watchedClient: Etcd3 | undefined;
  /** Set once a watch has been connected: later connections may have missed events. */
  private connectedBefore = false;

  constructor(
    private readonly client: () => Etcd3,
    private readonly keys: StoreKeys,
    logger: Logger,
    retryMs: number = FEED_RETRY_MS,
  ) {
    super(logger, retryMs);
  }

  /** Starts watching; resolves once the watch is live or after `timeoutMs` (it keeps trying after that). */
  async start(timeoutMs: number): Promise<boolean> {
    this.ensureWatching();
    const watcher = this.watcher;
    if (!watcher) return false;
    if (watcher.id !== null) return true;
    return new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => {
        watcher.off('connected', onConnected);
        resolve(false);
      }, timeoutMs);
      timer.unref();
      const onConnected = () => {
        clearTimeout(timer);
        resolve(true);
      };
      watcher.once('connected', onConnected);
    });
  }

  override subscribe(listener: (event: StoreEvent) => void): () => void {
    const unsubscribe = super.subscribe(listener);
    this.ensureWatching();
    return unsubscribe;
  }

  /** Watches with the current client; called on every store operation, so a replaced client is noticed. */
  ensureWatching(): void {
    if (this.closed) return;
    const client = this.client();
    if (this.watcher && this.watchedClient === client) return;
    const old = this.watcher;
    if (old) {
      this.logger.info('etcd client replaced: watching the store change feed through the new one');
      void old.cancel().catch(() => undefined);
    }
    this.watcher = this.attach(client);
    this.watchedClient = client;
  }

  private attach(client: Etcd3): Watcher {
    // One range from feed/ to the end of finished/: nothing else of the store's layout lies between the
    // two (keys.ts), and one watcher keeps one reconnection story.
    const range = { start: this.keys.feed, end: prefixEnd(this.keys.finisheds) };
    // only('put'): every event the feed announces is a write (a task queued, released or finished); a
    // delete (a queued task taken, a finished one past retention) tells nobody anything.
    // watcher(), not create(): it returns at once and connects in the background; start() waits for
    // 'connected' with its own timeout, and the handlers below are attached before any event.
    const watcher = client.watch().inRange(range).only('put').watcher();
    let disconnected = false;
    watcher.on('data', (response: IWatchResponse) => this.dispatch(response));
    watcher.on('connected', () => {
      // The first watch starts before any caller looks for work; any later one may have missed events.
      // (A reconnected watch resumes after its last revision, but a wakeup costs little.)
      if (this.connectedBefore) this.emit({ type: 'pending' });
      if (disconnected) this.logger.info('store change feed reconnected to etcd');
      this.connectedBefore = true;
      disconnected = false;
    });
    watcher.on('disconnected', (error) => {
      if (!disconnected) this.logger.warn({ err: describeError(error) }, 'store change feed disconnected from etcd; reconnecting');
      disconnected = true;
    });
    watcher.on('error', (error) => {
      // A cancelled watch (its revision was compacted away) does not come back by itself.
      this.logger.warn({ err: describeError(error) }, 'store change feed was cancelled by etcd; watching again');
      if (this.watcher !== watcher) return;
      this.watcher = undefined;
      this.watchedClient = undefined;
      this.retryLater(() => this.ensureWatching());
    });
    return watcher;
  }

  private dispatch(response: IWatchResponse): void {
    let pending = false;
    for (const event of response.events ?? []) {
      const key = event.kv.key.toString();
      if (key.startsWith(this.keys.pendings)) pending = true;
      else if (key.startsWith(this.keys.releaseds)) {
        this.emit({ type: 'released', executor: event.kv.value.toString(), id: lastSegment(key) });
      } else if (key.startsWith(this.keys.finisheds)) {
        this.emit({ type: 'done', id: lastSegment(key) });
      }
    }
    // One wakeup per watch response: a burst of adds wakes a waiting report once, not once per task.
    if (pending) this.emit({ type: 'pending' });
  }

  async close(): Promise<void> {
    this.stopFanout();
    const watcher = this.watcher;
    this.watcher = undefined;
    if (watcher) {
      // Cancelling waits for etcd's answer; a store closing while etcd is gone must not hang on it.
      await Promise.race([watcher.cancel().catch(() => undefined), new Promise((resolve) => setTimeout(resolve, FEED_CANCEL_WAIT_MS).unref())]);
    }
  }
}
