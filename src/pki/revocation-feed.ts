// The revocation list a judicator checks every request against, kept current from the store: read again
// every REVOCATION_REFRESH_MS (two small prefix reads; revocations are rare, and a poll has no
// reconnection story to get wrong), and at once when this judicator revoked something itself
// (refresh()). Listeners hear of each change: the judicator rewrites etcd's CRL from it.
import { describeError } from '../common/errors';
import type { Logger } from '../common/logging';
import { sleep } from '../common/processes';
import type { PkiStore } from './pki-store';
import { RevocationList } from './revocation';

/** How often the list is read again from the store, ms: the longest a revocation takes to reach every judicator. */
export const REVOCATION_REFRESH_MS = 5_000;

function signature(list: RevocationList): string {
  return JSON.stringify([list.certificates().map((e) => e.serial).sort(), list.names().map((e) => `${e.name}@${e.revokedAt}`).sort()]);
}

export class RevocationFeed {
  private list = new RevocationList();
  private seen = signature(this.list);
  private readonly listeners = new Set<(list: RevocationList) => void | Promise<void>>();

  constructor(
    private readonly store: Pick<PkiStore, 'revocations'>,
    private readonly logger: Logger,
    private readonly refreshMs: number = REVOCATION_REFRESH_MS,
  ) {}

  /** The list as last read (empty before the first read). */
  current(): RevocationList {
    return this.list;
  }

  onChange(listener: (list: RevocationList) => void | Promise<void>): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Reads the list now; tells the listeners if it changed. A store that cannot be read keeps the last list (logged). */
  async refresh(): Promise<RevocationList> {
    let list: RevocationList;
    try {
      list = await this.store.revocations();
    } catch (error) {
      this.logger.warn({ err: describeError(error) }, 'cannot read the revocation list; the last one read stays in force');
      return this.list;
    }
    const next = signature(list);
    this.list = list;
    if (next !== this.seen) {
      this.seen = next;
      this.logger.info({ certificates: list.certificates().length, names: list.names().length }, 'revocation list changed');
      for (const listener of this.listeners) {
        try {
          await listener(list);
        } catch (error) {
          this.logger.error({ err: describeError(error) }, 'a revocation listener failed');
        }
      }
    }
    return list;
  }

  /** Refreshes every refreshMs until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      await this.refresh();
      await sleep(this.refreshMs, signal);
    }
  }
}
