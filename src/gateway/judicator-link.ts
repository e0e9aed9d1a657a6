// The gateway's link to the judicators, through their RPC only (gateways hold no etcd credentials): the
// judicator list it started from and keeps fresh (RPC `judicators`), an RPC client that picks one of them
// with a timeout and fails over to another, and the gateway's cluster certificate, renewed as it goes.
// Used by the server module, and by tests that run the server in-process.
import { UnavailableError, describeError } from '../common/errors';
import type { Logger } from '../common/logging';
import { LiveIdentity } from '../pki/live-identity';
import { CertificateRenewer, renewalCheckInterval, renewFromJudicators } from '../pki/renewal';
import { JudicatorRpcClient } from '../rpc/client';
import { JudicatorList } from '../rpc/judicator-list';

export interface JudicatorLinkOptions {
  /** Judicator RPC addresses to start from (host[:port]). */
  join: readonly string[];
  /** The gateway's cluster identity directory. */
  identityDir: string;
  rpc: { timeout_ms: number; attempts: number; avoid_ms: number; retry_for_ms?: number };
  /** Milliseconds between refreshes of the judicator list. */
  refreshMs?: number;
}

export interface JudicatorListing {
  /** The judicator's name. */
  name: string;
  address: string;
  leader: boolean;
}

/** Milliseconds the judicator list may take to answer /api/judicators. */
const LIST_TIMEOUT_MS = 5_000;

export class JudicatorLink {
  readonly identity: LiveIdentity;
  readonly list: JudicatorList;
  readonly rpc: JudicatorRpcClient;
  /**
   * For `wait` calls, which a judicator holds until a task is done: a client with connections of its own,
   * so that waits never take the ones adds and gets go through.
   */
  readonly waitRpc: JudicatorRpcClient;
  private readonly renewer: CertificateRenewer;

  constructor(
    private readonly options: JudicatorLinkOptions,
    private readonly logger: Logger,
  ) {
    this.identity = LiveIdentity.load(options.identityDir, logger);
    this.list = new JudicatorList(options.join, logger, options.refreshMs);
    const rpcOptions = {
      source: this.list,
      identity: this.identity,
      timeoutMs: options.rpc.timeout_ms,
      attempts: options.rpc.attempts,
      avoidMs: options.rpc.avoid_ms,
      ...(options.rpc.retry_for_ms !== undefined ? { retryForMs: options.rpc.retry_for_ms } : {}),
    };
    this.rpc = new JudicatorRpcClient(rpcOptions);
    this.waitRpc = new JudicatorRpcClient(rpcOptions);
    this.renewer = new CertificateRenewer({
      identity: this.identity,
      renew: renewFromJudicators(() => this.list.addresses(), { timeoutMs: options.rpc.timeout_ms }),
      logger,
      checkEveryMs: renewalCheckInterval(this.identity.identity),
    });
  }

  /** The registered judicators, with the leader marked, as a judicator says now (the original read etcd). */
  async judicators(): Promise<JudicatorListing[]> {
    try {
      const answer = await this.rpc.call('judicators', {}, { timeoutMs: LIST_TIMEOUT_MS, retryForMs: 0 });
      if (answer.result !== 0) throw new Error(answer.message ?? `result ${answer.result}`);
      return answer.judicators.map(({ name, address, leader }) => ({ name, address, leader })).sort((a, b) => a.name.localeCompare(b.name));
    } catch (error) {
      throw new UnavailableError(`cannot read the judicator list from the judicators (${this.options.join.join(', ')}): ${describeError(error)}`);
    }
  }

  /** Follows the judicator list and renews the certificate until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    await Promise.all([
      this.list.run(this.rpc, signal),
      this.renewer.run(signal).catch((error) => this.logger.error({ err: describeError(error) }, 'certificate renewal stopped')),
    ]);
  }

  close(): void {
    this.rpc.close();
    this.waitRpc.close();
  }
}
