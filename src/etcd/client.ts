// etcd clients for the judicators and the commands run on their machines: gRPC message limits raised so a
// 15.5 MiB task fits (SPEC §5), and mutual TLS with the node's cluster certificate, which follows the
// node's renewals without a new client (so no watch, lease or election has to be made again).
// Only judicators talk to etcd (executors and gateways reach the cluster through the judicator RPC).
import https from 'node:https';
import tls from 'node:tls';
import { noop } from 'cockatiel';
import { Etcd3, type IOptions } from 'etcd3';
import { ETCD_CLIENT_HOSTNAME } from '../pki/etcd-tls';

/** gRPC's default 4 MiB receive limit refuses a 15 MiB value; 32 MiB round-trips one (verified on 3.4). */
export const GRPC_MESSAGE_LIMIT = 32 * 1024 * 1024;

/** The TLS material of a node: the cluster CA to trust, its certificate and its key (PEM). */
export interface EtcdTlsFiles {
  caPem: string;
  certPem: string;
  keyPem: string;
}

/** A node identity that can change (src/pki/live-identity.ts LiveIdentity): its files now, and news of renewals. */
export interface EtcdIdentity {
  readonly current: EtcdTlsFiles;
  onChange(listener: (files: EtcdTlsFiles) => void): () => void;
}

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
  /** Mutual TLS with a node identity that renews itself: new connections use the current certificate. */
  identity?: EtcdIdentity;
}

/** Normalises `host:port` and `http(s)://host:port` spellings to what the etcd3 client wants (http by default). */
export function normaliseEndpoint(endpoint: string, scheme: 'http' | 'https' = 'http'): string {
  const trimmed = endpoint.trim().replace(/\/+$/, '');
  return /^https?:\/\//.test(trimmed) ? trimmed : `${scheme}://${trimmed}`;
}

function tlsOf(options: EtcdClientOptions): { ca: string | Buffer; cert: string | Buffer; key: string | Buffer } | undefined {
  if (options.identity) {
    const files = options.identity.current;
    return { ca: files.caPem, cert: files.certPem, key: files.keyPem };
  }
  return options.tls;
}

export function createEtcdClient(endpoints: readonly string[], options: EtcdClientOptions = {}): Etcd3 {
  const callTimeoutMs = options.callTimeoutMs ?? 10_000;
  const material = tlsOf(options);
  const config: IOptions = {
    hosts: endpoints.map((e) => normaliseEndpoint(e, material ? 'https' : 'http')),
    ...(material ? { credentials: { rootCertificate: Buffer.from(material.ca), certChain: Buffer.from(material.cert), privateKey: Buffer.from(material.key) } } : {}),
    dialTimeout: options.dialTimeoutMs ?? 3_000,
    grpcOptions: {
      'grpc.max_receive_message_length': GRPC_MESSAGE_LIMIT,
      'grpc.max_send_message_length': GRPC_MESSAGE_LIMIT,
      'grpc.keepalive_time_ms': 10_000,
      'grpc.keepalive_timeout_ms': 5_000,
      // Any etcd member of the cluster, whatever address it is reached at: every judicator's certificate
      // carries this name (and only theirs can). It also keeps IP addresses out of TLS's SNI, which RFC
      // 6066 forbids (Node warns, DEP0123, for each process that tries).
      ...(material ? { 'grpc.ssl_target_name_override': ETCD_CLIENT_HOSTNAME } : {}),
    },
    // A deadline per call: without one a call to a partitioned member hangs forever. Watches and lease
    // keep-alives are streams and must not get one (etcd3 asks with isStream).
    defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + callTimeoutMs }),
    ...(options.faultHandling === false ? { faultHandling: { host: () => noop, global: noop } } : {}),
  };
  const client = new Etcd3(config);
  if (options.identity) followIdentity(client, options.identity);
  return client;
}

/**
 * Makes `client`'s new TLS connections present the identity's current certificate. etcd3 builds its gRPC
 * credentials once, from the certificate it was given; gRPC keeps the Node SecureContext it made and
 * hands it to tls.connect at every (re)connection, and Node reads the native context off that object at
 * each handshake. Replacing that native context in place renews every channel of the client at once;
 * connections already open carry on (their handshake is done). The path to it is etcd3's and grpc-js's
 * inner fields: if a new version moves them this throws at once, and test/integration/cluster-pki.test.ts
 * renews a judicator's certificate under a running etcd client.
 */
function followIdentity(client: Etcd3, identity: EtcdIdentity): void {
  const pool = (client as unknown as { pool?: { hosts?: { channelCredentials?: { secureContext?: tls.SecureContext } }[] } }).pool;
  const contexts = new Set((pool?.hosts ?? []).map((h) => h.channelCredentials?.secureContext));
  const context = [...contexts][0];
  if (contexts.size !== 1 || !context || !('context' in context)) {
    throw new Error('this etcd3/grpc-js version keeps its TLS credentials elsewhere: kv2 cannot renew its etcd certificate in place (src/etcd/client.ts)');
  }
  const unsubscribe = identity.onChange((files) => {
    const renewed = tls.createSecureContext({ ca: files.caPem, cert: files.certPem, key: files.keyPem });
    (context as { context: unknown }).context = (renewed as { context: unknown }).context;
  });
  const close = client.close.bind(client);
  client.close = () => {
    unsubscribe();
    close();
  };
}

/**
 * GET `path` of an etcd member's client URL (`/version`, `/health`) over mutual TLS with `files` (or
 * plain HTTP when none): the status and the body, or an error. What liveness checks and the leader's
 * dead-member check ask.
 */
export function getFromMember(url: string, path: string, files: EtcdTlsFiles | undefined, timeoutMs: number): Promise<{ status: number; body: string }> {
  const target = new URL(path, `${url.replace(/\/+$/, '')}/`);
  if (!files) {
    return fetch(target, { signal: AbortSignal.timeout(timeoutMs) }).then(async (response) => ({ status: response.status, body: await response.text() }));
  }
  return new Promise((resolve, reject) => {
    const request = https.get(target, { ca: files.caPem, cert: files.certPem, key: files.keyPem, agent: false, timeout: timeoutMs }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
      response.on('error', reject);
    });
    request.on('timeout', () => request.destroy(new Error(`no answer from ${url} within ${timeoutMs} ms`)));
    request.on('error', reject);
  });
}
