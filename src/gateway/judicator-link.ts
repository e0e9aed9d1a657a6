// The gateway's link to the judicators: an etcd connection that follows the member list, the judicators
// registered in it (watched), an RPC client that picks one of them with a timeout and fails over to
// another, and who leads. Used by the server module, and by tests that run the server in-process.
import { UnavailableError, describeError } from '../common/errors';
import type { Logger } from '../common/logging';
import { ClusterConnection } from '../etcd/client';
import { JudicatorDirectory } from '../etcd/judicator-directory';
import { currentLeader } from '../etcd/leader';
import { JudicatorRpcClient, RpcUnavailableError } from '../rpc/client';

export interface JudicatorLinkOptions {
  endpoints: readonly string[];
  prefix: string;
  clusterToken?: string | null;
  rpc: { timeout_ms: number; attempts: number; avoid_ms: number; retry_for_ms?: number };
  /** Milliseconds between refreshes of the etcd endpoint list. */
  refreshMs?: number;
  /** Milliseconds an etcd read may take before the gateway answers that etcd is unreachable. */
  etcdTimeoutMs?: number;
}

export interface JudicatorListing {
  /** The registration's name (the part after judicator/service/). */
  name: string;
  address: string;
  leader: boolean;
}

export class JudicatorLink {
  readonly connection: ClusterConnection;
  readonly directory: JudicatorDirectory;
  readonly rpc: JudicatorRpcClient;
  /**
   * For `wait` calls, which a judicator holds until a task is done: a client with connections of its own,
   * so that waits never take the ones adds and gets go through.
   */
  readonly waitRpc: JudicatorRpcClient;

  constructor(
    private readonly options: JudicatorLinkOptions,
    private readonly logger: Logger,
  ) {
    const etcdTimeoutMs = options.etcdTimeoutMs ?? 5_000;
    this.connection = new ClusterConnection(options.endpoints, logger, {
      refreshMs: options.refreshMs ?? 10_000,
      callTimeoutMs: etcdTimeoutMs,
      dialTimeoutMs: Math.min(3_000, etcdTimeoutMs),
    });
    this.directory = new JudicatorDirectory(this.connection, options.prefix, logger);
    const rpcOptions = {
      source: { addresses: () => this.addresses() },
      ...(options.clusterToken ? { token: options.clusterToken } : {}),
      timeoutMs: options.rpc.timeout_ms,
      attempts: options.rpc.attempts,
      avoidMs: options.rpc.avoid_ms,
      ...(options.rpc.retry_for_ms !== undefined ? { retryForMs: options.rpc.retry_for_ms } : {}),
    };
    this.rpc = new JudicatorRpcClient(rpcOptions);
    this.waitRpc = new JudicatorRpcClient(rpcOptions);
  }

  private async addresses(): Promise<string[]> {
    try {
      return (await this.directory.ensure()).map((entry) => entry.address);
    } catch (error) {
      throw new RpcUnavailableError(`cannot read the judicator list from etcd (${this.options.endpoints.join(', ')}): ${describeError(error)}`);
    }
  }

  /**
   * The registered judicators, with the leader marked: the watched directory (what the RPC client picks
   * from, read again whenever its watch reconnects), and who leads read from etcd now. The original read
   * both each time; /api/judicators and every /metrics scrape ask.
   */
  async judicators(): Promise<JudicatorListing[]> {
    try {
      const [entries, leader] = await Promise.all([this.directory.ensure(), currentLeader(this.connection.current(), this.options.prefix)]);
      return entries.map(({ name, address }) => ({ name, address, leader: name === leader })).sort((a, b) => a.name.localeCompare(b.name));
    } catch (error) {
      throw new UnavailableError(`cannot read the judicator list from etcd (${this.options.endpoints.join(', ')}): ${describeError(error)}`);
    }
  }

  /** Follows the member list and the judicator registrations until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    await Promise.all([
      this.connection.refreshLoop(signal),
      this.directory.run(signal).catch((error) => this.logger.warn({ err: describeError(error) }, 'judicator watch ended')),
    ]);
  }

  close(): void {
    this.rpc.close();
    this.waitRpc.close();
    this.connection.close();
  }
}
