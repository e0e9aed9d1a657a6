// Where the judicators are, for a node that reaches the cluster only through their RPC (executors,
// gateways): the addresses it was started with (`--join host[:port],...`, a DNS name standing for every
// address it resolves to, as docker swarm's `tasks.<service>` does), and the judicators the cluster says
// are registered, asked again every refresh (RPC `judicators`). Both are offered to the RPC client, which
// fails over between them: a node whose bootstrap judicator is gone follows the cluster, and one whose
// learned judicators all moved goes back to its bootstrap addresses.
import dns from 'node:dns/promises';
import net from 'node:net';
import { describeError, UsageError } from '../common/errors';
import type { Logger } from '../common/logging';
import { sleep } from '../common/processes';
import { DEFAULT_RPC_PORT, type JudicatorEntry } from './contract';
import type { JudicatorRpcClient, JudicatorSource } from './client';

/** How often the list of judicators is asked again, ms. */
export const DEFAULT_JUDICATORS_REFRESH_MS = 10_000;
/** How long the addresses a bootstrap DNS name resolved to are used before it is resolved again, ms. */
const RESOLVE_CACHE_MS = 5_000;

/** `host[:port]` (IPv6 in brackets) as host and port, the port DEFAULT_RPC_PORT when none is given. */
export function parseJudicatorAddress(text: string): { host: string; port: number } {
  const trimmed = text.trim().replace(/^https?:\/\//i, '').replace(/\/+$/, '');
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(trimmed);
  const plain = /^([^:[\]]+)(?::(\d+))?$/.exec(trimmed);
  const match = bracketed ?? plain ?? (net.isIP(trimmed) === 6 ? [trimmed, trimmed, undefined] : null);
  const port = match?.[2] === undefined ? DEFAULT_RPC_PORT : Number(match[2]);
  if (!match || !match[1] || !(port >= 1 && port <= 65535)) {
    throw new UsageError(`judicator address ${JSON.stringify(text)} is not host[:port] (the judicator RPC, port ${DEFAULT_RPC_PORT} by default)`);
  }
  return { host: match[1], port };
}

/** `host:port` as the RPC client takes it (IPv6 hosts in brackets). */
export function formatAddress(host: string, port: number): string {
  return net.isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}

export class JudicatorList implements JudicatorSource {
  private readonly bootstrap: { host: string; port: number }[];
  private learned: JudicatorEntry[] = [];
  private resolved: { at: number; addresses: string[] } | undefined;

  constructor(
    bootstrap: readonly string[],
    private readonly logger: Logger,
    private readonly refreshMs: number = DEFAULT_JUDICATORS_REFRESH_MS,
  ) {
    this.bootstrap = bootstrap.map(parseJudicatorAddress);
    if (this.bootstrap.length === 0) throw new UsageError('no judicator address given: a node joins the cluster through a judicator (--join host[:port])');
  }

  /** The judicators the cluster listed last (empty until the first answer). */
  get judicators(): readonly JudicatorEntry[] {
    return this.learned;
  }

  /** Learned judicators first, then the bootstrap addresses (DNS names resolved to every address). */
  async addresses(): Promise<string[]> {
    return [...new Set([...this.learned.map((j) => j.address), ...(await this.bootstrapAddresses())])];
  }

  private async bootstrapAddresses(): Promise<string[]> {
    if (this.resolved && Date.now() - this.resolved.at < RESOLVE_CACHE_MS) return this.resolved.addresses;
    const addresses: string[] = [];
    for (const { host, port } of this.bootstrap) {
      if (net.isIP(host)) {
        addresses.push(formatAddress(host, port));
        continue;
      }
      try {
        const found = await dns.lookup(host, { all: true });
        addresses.push(...found.map((a) => formatAddress(a.address, port)));
      } catch (error) {
        // Kept as a name: the RPC client reports why it cannot be reached, with the rest of its failures.
        this.logger.debug({ host, err: describeError(error) }, 'cannot resolve a judicator address');
        addresses.push(formatAddress(host, port));
      }
    }
    this.resolved = { at: Date.now(), addresses };
    return addresses;
  }

  /** Asks the cluster for its judicators now; a failure keeps the list as it was (logged at debug level). */
  async refresh(rpc: Pick<JudicatorRpcClient, 'call'>): Promise<void> {
    try {
      const answer = await rpc.call('judicators', {}, { retryForMs: 0 });
      if (answer.result !== 0) throw new Error(answer.message ?? `result ${answer.result}`);
      const before = this.learned.map((j) => j.address).sort().join(',');
      this.learned = answer.judicators.filter((j) => typeof j.address === 'string' && j.address !== '');
      const after = this.learned.map((j) => j.address).sort().join(',');
      if (before !== after) this.logger.info({ judicators: this.learned.map((j) => `${j.name}@${j.address}`) }, 'judicator list changed');
    } catch (error) {
      this.logger.debug({ err: describeError(error) }, 'could not refresh the judicator list; keeping the last one');
    }
  }

  /** Refreshes at once and then every refreshMs until `signal` aborts. */
  async run(rpc: Pick<JudicatorRpcClient, 'call'>, signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      await this.refresh(rpc);
      await sleep(this.refreshMs, signal);
    }
  }
}
