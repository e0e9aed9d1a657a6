// Where the judicators are: the judicator/service/ keys in etcd, read once and then followed with a watch,
// as a judicator sees them (it answers the `judicators` RPC from this; executors and gateways ask that).
// A registration's value is JSON: the judicator's RPC address and its etcd member's client URL.
import type { Etcd3, Watcher } from 'etcd3';
import { describeError } from '../common/errors';
import type { Logger } from '../common/logging';
import { sleep } from '../common/processes';
import { clusterKeys } from './keys';

export interface JudicatorRegistration {
  name: string;
  /** `host:port` of its RPC. */
  address: string;
  /** Its etcd member's client URL, when it said (`https://host:2001`). */
  etcd?: string;
}

/** What a judicator registers under judicator/service/<name>. */
export function registrationValue(registration: Omit<JudicatorRegistration, 'name'>): string {
  return JSON.stringify(registration);
}

/** A registration's value: JSON, or the plain `host:port` judicators wrote before they said more. */
export function parseRegistration(name: string, value: string): JudicatorRegistration | undefined {
  if (!value.startsWith('{')) return value ? { name, address: value } : undefined;
  try {
    const parsed = JSON.parse(value) as { address?: unknown; etcd?: unknown };
    if (typeof parsed.address !== 'string' || parsed.address === '') return undefined;
    return { name, address: parsed.address, ...(typeof parsed.etcd === 'string' ? { etcd: parsed.etcd } : {}) };
  } catch {
    return undefined;
  }
}

/** Milliseconds between attempts to set up the watch while etcd does not answer. */
const WATCH_RETRY_MS = 1_000;

export class JudicatorDirectory {
  private readonly entries = new Map<string, JudicatorRegistration>();
  private readonly prefix: string;
  private loaded = false;
  private watcher: Watcher | undefined;

  constructor(
    private readonly client: () => Etcd3,
    prefix: string,
    private readonly logger: Logger,
  ) {
    this.prefix = clusterKeys(prefix).judicatorServices;
  }

  list(): JudicatorRegistration[] {
    return [...this.entries.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  private set(key: string, value: string): void {
    const name = key.slice(this.prefix.length);
    const entry = parseRegistration(name, value);
    if (entry) this.entries.set(name, entry);
    else this.entries.delete(name);
  }

  /** Reads the current set (also the first time, before the watch delivers anything). */
  async refresh(): Promise<JudicatorRegistration[]> {
    const all = await this.client().getAll().prefix(this.prefix).strings();
    this.entries.clear();
    for (const [key, value] of Object.entries(all)) this.set(key, value);
    this.loaded = true;
    return this.list();
  }

  /** The set, loading it first if it was never loaded. */
  async ensure(): Promise<JudicatorRegistration[]> {
    if (!this.loaded || this.entries.size === 0) return this.refresh();
    return this.list();
  }

  /** Follows changes until `signal` aborts (re-reading the set whenever the watch is re-established). */
  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        const watcher = await this.client().watch().prefix(this.prefix).create();
        this.watcher = watcher;
        watcher.on('put', (kv) => this.set(kv.key.toString(), kv.value.toString()));
        watcher.on('delete', (kv) => this.entries.delete(kv.key.toString().slice(this.prefix.length)));
        watcher.on('connected', () => void this.refresh().catch(() => undefined));
        await this.refresh();
        break;
      } catch (error) {
        this.logger.debug({ err: describeError(error) }, 'cannot watch the judicator list yet');
        await sleep(WATCH_RETRY_MS, signal);
      }
    }
    await new Promise<void>((resolve) => (signal.aborted ? resolve() : signal.addEventListener('abort', () => resolve(), { once: true })));
    await this.watcher?.cancel().catch(() => undefined);
  }
}
