// Where the judicators are: the judicator/service/ keys in etcd, read once and then followed with a
// watch, so RPC clients (executors, gateways, the CLI) always pick from the live set.
import type { Etcd3, Watcher } from 'etcd3';
import { describeError } from '../common/errors';
import type { Logger } from '../common/logging';
import { sleep } from '../common/processes';
import type { ClusterConnection } from './client';
import { clusterKeys } from './keys';

export interface JudicatorEntry {
  name: string;
  /** `host:port` of its RPC. */
  address: string;
}

export class JudicatorDirectory {
  private readonly entries = new Map<string, string>();
  private readonly prefix: string;
  private loaded = false;
  private watcher: Watcher | undefined;

  constructor(
    private readonly connection: ClusterConnection,
    prefix: string,
    private readonly logger: Logger,
  ) {
    this.prefix = clusterKeys(prefix).judicatorServices;
  }

  list(): JudicatorEntry[] {
    return [...this.entries].map(([name, address]) => ({ name, address }));
  }

  /** Reads the current set (also the first time, before the watch delivers anything). */
  async refresh(): Promise<JudicatorEntry[]> {
    const all = await this.connection.current().getAll().prefix(this.prefix).strings();
    this.entries.clear();
    for (const [key, value] of Object.entries(all)) this.entries.set(key.slice(this.prefix.length), value);
    this.loaded = true;
    return this.list();
  }

  /** The set, loading it first if it was never loaded. */
  async ensure(): Promise<JudicatorEntry[]> {
    if (!this.loaded || this.entries.size === 0) return this.refresh();
    return this.list();
  }

  /** Follows changes until `signal` aborts (re-reading the set whenever the watch is re-established). */
  async run(signal: AbortSignal): Promise<void> {
    this.connection.onChange((client) => void this.watch(client, signal));
    await this.watch(this.connection.current(), signal);
    await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
    await this.watcher?.cancel().catch(() => undefined);
  }

  private async watch(client: Etcd3, signal: AbortSignal): Promise<void> {
    await this.watcher?.cancel().catch(() => undefined);
    while (!signal.aborted) {
      try {
        const watcher = await client.watch().prefix(this.prefix).create();
        this.watcher = watcher;
        watcher.on('put', (kv) => this.entries.set(kv.key.toString().slice(this.prefix.length), kv.value.toString()));
        watcher.on('delete', (kv) => this.entries.delete(kv.key.toString().slice(this.prefix.length)));
        watcher.on('connected', () => void this.refresh().catch(() => undefined));
        await this.refresh();
        return;
      } catch (error) {
        this.logger.debug({ err: describeError(error) }, 'cannot watch the judicator list yet');
        await sleep(1_000, signal);
      }
    }
  }
}
