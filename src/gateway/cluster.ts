// The gateway's view of the cluster: an etcd connection that follows the member list, the judicators
// registered in it (watched), an RPC client that picks one of them with a timeout and fails over to
// another, and who leads. Used by the server module, and by tests that run the server in-process.
import { UnavailableError, describeError } from '../common/errors';
import type { Logger } from '../common/logging';
import { ClusterConnection } from '../cluster/etcd-client';
import { JudicatorDirectory } from '../cluster/judicator-directory';
import { clusterKeys } from '../cluster/keys';
import { currentLeader } from '../cluster/leader';
import { JudicatorRpcClient, RpcUnavailableError } from '../rpc/client';

export interface GatewayClusterOptions {
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

export class GatewayCluster {
  readonly connection: ClusterConnection;
  readonly directory: JudicatorDirectory;
  readonly rpc: JudicatorRpcClient;

  constructor(
    private readonly options: GatewayClusterOptions,
    private readonly logger: Logger,
  ) {
    const etcdTimeoutMs = options.etcdTimeoutMs ?? 5_000;
    this.connection = new ClusterConnection(options.endpoints, logger, {
      refreshMs: options.refreshMs ?? 10_000,
      callTimeoutMs: etcdTimeoutMs,
      dialTimeoutMs: Math.min(3_000, etcdTimeoutMs),
    });
    this.directory = new JudicatorDirectory(this.connection, options.prefix, logger);
    this.rpc = new JudicatorRpcClient({
      source: { addresses: () => this.addresses() },
      ...(options.clusterToken ? { token: options.clusterToken } : {}),
      timeoutMs: options.rpc.timeout_ms,
      attempts: options.rpc.attempts,
      avoidMs: options.rpc.avoid_ms,
      ...(options.rpc.retry_for_ms !== undefined ? { retryForMs: options.rpc.retry_for_ms } : {}),
    });
  }

  private async addresses(): Promise<string[]> {
    try {
      return (await this.directory.ensure()).map((entry) => entry.address);
    } catch (error) {
      throw new RpcUnavailableError(`cannot read the judicator list from etcd (${this.options.endpoints.join(', ')}): ${describeError(error)}`);
    }
  }

  /** The registered judicators, read from etcd now (as the original did), with the leader marked. */
  async judicators(): Promise<JudicatorListing[]> {
    const prefix = clusterKeys(this.options.prefix).judicatorServices;
    try {
      const client = this.connection.current();
      const [all, leader] = await Promise.all([client.getAll().prefix(prefix).strings(), currentLeader(client, this.options.prefix)]);
      return Object.entries(all)
        .map(([key, address]) => {
          const name = key.slice(prefix.length);
          return { name, address, leader: name === leader };
        })
        .sort((a, b) => a.name.localeCompare(b.name));
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
    this.connection.close();
  }
}
