// etcd clients for every kv2 process: gRPC message limits raised so a 15.5 MiB task fits (SPEC §5), and
// for nodes that are not members (executors, gateways, the CLI) an endpoint list that follows the
// cluster's member list, so losing the judicator a node was started against does not matter.
import { noop } from 'cockatiel';
import { Etcd3, type IOptions } from 'etcd3';
import type { Logger } from '../common/logging';
import { sleep } from '../common/processes';

/** gRPC's default 4 MiB receive limit refuses a 15 MiB value; 32 MiB round-trips one (verified on 3.4). */
export const GRPC_MESSAGE_LIMIT = 32 * 1024 * 1024;

export interface EtcdClientOptions {
  /** Milliseconds to wait for a connection before a call fails. */
  dialTimeoutMs?: number;
  /** Default deadline of every call, in milliseconds. */
  callTimeoutMs?: number;
  /**
   * etcd3's own retries and per-host circuit breaker (on by default). A client of one member that retries
   * by itself (probing, joining, leaving) turns them off: an open breaker refuses calls for seconds.
   */
  faultHandling?: boolean;
  /**
   * Mutual TLS (the cluster PKI, src/pki): the cluster CA to trust and this node's certificate and key (PEM;
   * node.pem holds both). Endpoints written without a scheme are then https.
   */
  tls?: { ca: string | Buffer; cert: string | Buffer; key: string | Buffer };
}

/** Normalises `host:port` and `http://host:port` spellings to what the etcd3 client wants. */
export function normaliseEndpoint(endpoint: string): string {
  const trimmed = endpoint.trim().replace(/\/+$/, '');
  return /^https?:\/\//.test(trimmed) ? trimmed : `http://${trimmed}`;
}

export function createEtcdClient(endpoints: readonly string[], options: EtcdClientOptions = {}): Etcd3 {
  const callTimeoutMs = options.callTimeoutMs ?? 10_000;
  const config: IOptions = {
    hosts: endpoints.map((e) => (options.tls && !/^https?:\/\//.test(e.trim()) ? normaliseEndpoint(`https://${e.trim()}`) : normaliseEndpoint(e))),
    ...(options.tls
      ? { credentials: { rootCertificate: Buffer.from(options.tls.ca), certChain: Buffer.from(options.tls.cert), privateKey: Buffer.from(options.tls.key) } }
      : {}),
    dialTimeout: options.dialTimeoutMs ?? 3_000,
    grpcOptions: {
      'grpc.max_receive_message_length': GRPC_MESSAGE_LIMIT,
      'grpc.max_send_message_length': GRPC_MESSAGE_LIMIT,
      'grpc.keepalive_time_ms': 10_000,
      'grpc.keepalive_timeout_ms': 5_000,
    },
    // A deadline per call: without one a call to a partitioned member hangs forever. Watches and lease
    // keep-alives are streams and must not get one (etcd3 asks with isStream).
    defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + callTimeoutMs }),
    ...(options.faultHandling === false ? { faultHandling: { host: () => noop, global: noop } } : {}),
  };
  return new Etcd3(config);
}

/**
 * Client URLs of the cluster's started members, read through `client`. Unstarted members (no client URLs
 * yet) and learners are left out: they cannot serve requests.
 */
export async function memberClientUrls(client: Etcd3): Promise<string[]> {
  const { members } = await client.cluster.memberList({});
  return members.filter((m) => !m.isLearner).flatMap((m) => m.clientURLs);
}

/**
 * A long-lived etcd connection for a node that is not a member: bootstrapped from the endpoints given on
 * the command line and refreshed from the member list every `refreshMs`. When the set changes a new
 * client is made; users ask `current()` for each operation (leases and watches re-create themselves).
 */
export class ClusterConnection {
  private client: Etcd3;
  private endpoints: string[];
  private readonly listeners = new Set<(client: Etcd3) => void>();

  constructor(
    bootstrap: readonly string[],
    private readonly logger: Logger,
    private readonly options: EtcdClientOptions & { refreshMs?: number } = {},
  ) {
    this.endpoints = [...new Set(bootstrap.map(normaliseEndpoint))];
    this.client = createEtcdClient(this.endpoints, options);
  }

  current(): Etcd3 {
    return this.client;
  }

  /** Called with the new client whenever the endpoint list changes. */
  onChange(listener: (client: Etcd3) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Keeps the endpoint list fresh until `signal` aborts. */
  async refreshLoop(signal: AbortSignal): Promise<void> {
    const refreshMs = this.options.refreshMs ?? 10_000;
    while (!signal.aborted) {
      await sleep(refreshMs, signal);
      if (signal.aborted) break;
      await this.refresh();
    }
  }

  async refresh(): Promise<void> {
    let urls: string[];
    try {
      urls = (await memberClientUrls(this.client)).map(normaliseEndpoint);
    } catch (error) {
      this.logger.debug({ err: String(error), endpoints: this.endpoints }, 'could not refresh the etcd member list');
      return;
    }
    // Keep the bootstrap endpoints that still answer: advertised URLs may name addresses we cannot reach.
    const next = [...new Set(urls)].sort();
    if (next.length === 0 || next.join(',') === [...this.endpoints].sort().join(',')) return;
    this.logger.info({ from: this.endpoints, to: next }, 'etcd member list changed; using the new endpoints');
    const old = this.client;
    this.endpoints = next;
    this.client = createEtcdClient(next, this.options);
    for (const listener of this.listeners) listener(this.client);
    // Let calls in flight on the old client finish before closing it.
    setTimeout(() => old.close(), 30_000).unref();
  }

  close(): void {
    this.client.close();
  }
}
