// The judicator RPC client used by executors, gateways, judicators and the CLI: picks a live judicator,
// calls it over mutual TLS with the node's certificate (the server must hold a judicator's certificate of
// the same CA), with a timeout, and on a network failure, a timeout or a judicator that cannot serve (503)
// tries another. A judicator that failed is avoided for a while. Answers with a result code are final,
// never retried (a refusal of this node's certificate, 401/403, too).
import https from 'node:https';
import net from 'node:net';
import type { TLSSocket } from 'node:tls';
import { UnavailableError, describeError } from '../common/errors';
import { sleep } from '../common/processes';
import { MIN_TLS_VERSION, type LiveIdentity } from '../pki/live-identity';
import { judicatorServerCheck } from '../pki/peer-identity';
import { RPC_PATH, type RpcMethod, type RpcRequest, type RpcResponse } from './contract';

export interface JudicatorSource {
  /** Current judicators, `host:port` of their RPC. */
  addresses(): Promise<string[]>;
}

/** What the client needs of the node's identity: its files now, and news of a renewal. */
export type RpcIdentity = Pick<LiveIdentity, 'current' | 'onChange'>;

export interface RpcClientOptions {
  source: JudicatorSource;
  /** This node's cluster certificate, presented to the judicators (renewals are followed). */
  identity: RpcIdentity;
  /** Milliseconds one call may take (long polls add their wait to it). */
  timeoutMs?: number;
  /** Judicators tried per call before giving up (at least two when there are two). */
  attempts?: number;
  /** Milliseconds a failed judicator is skipped for. */
  avoidMs?: number;
  /**
   * Milliseconds to keep trying (with a growing pause between rounds) while no judicator can answer:
   * a judicator dying or etcd electing a new leader makes every judicator refuse for a second or two.
   * Every method is safe to repeat (add carries a client-chosen id). 0 tries one round only.
   */
  retryForMs?: number;
}

/** Defaults of RpcClientOptions, and the client's own timings (ms). */
export const DEFAULT_CALL_TIMEOUT_MS = 10_000;
export const DEFAULT_ATTEMPTS = 3;
export const DEFAULT_AVOID_MS = 5_000;
export const DEFAULT_RETRY_FOR_MS = 8_000;
/** The first pause between rounds of attempts, doubled each round up to RETRY_PAUSE_MAX_MS. */
const RETRY_PAUSE_FIRST_MS = 100;
const RETRY_PAUSE_MAX_MS = 1_000;
/** TCP keep-alive probes of open connections, and how many connections a client keeps per judicator. */
const KEEP_ALIVE_MS = 10_000;
const MAX_SOCKETS = 64;
/**
 * After a renewal, connections made with the old certificate are closed this much later (ms): calls in
 * flight on them (a long poll, a held wait) end first; new calls use new connections.
 */
const OLD_CONNECTIONS_GRACE_MS = 5 * 60_000;

function newAgent(): https.Agent {
  return new https.Agent({ keepAlive: true, maxSockets: MAX_SOCKETS, keepAliveMsecs: KEEP_ALIVE_MS });
}

/** A call that reached no judicator able to answer. */
export class RpcUnavailableError extends UnavailableError {}

export class JudicatorRpcClient {
  private readonly avoidUntil = new Map<string, number>();
  private preferred: string | undefined;
  /**
   * node:https with kept-alive connections: a report or an add costs one round trip on an open connection
   * (a TLS handshake costs the judicator ~2.5 ms of CPU: bench/tls-cost.ts), and fetch's machinery cost
   * as much CPU as the call itself in profiles.
   */
  private agent = newAgent();
  private readonly unsubscribe: () => void;
  private readonly retiring = new Set<NodeJS.Timeout>();

  constructor(private readonly options: RpcClientOptions) {
    this.unsubscribe = options.identity.onChange(() => {
      const old = this.agent;
      this.agent = newAgent();
      const timer = setTimeout(() => {
        this.retiring.delete(timer);
        old.destroy();
      }, OLD_CONNECTIONS_GRACE_MS);
      timer.unref();
      this.retiring.add(timer);
    });
  }

  async call<M extends RpcMethod>(
    method: M,
    body: RpcRequest<M>,
    options: { timeoutMs?: number; signal?: AbortSignal; retryForMs?: number } = {},
  ): Promise<RpcResponse<M>> {
    const deadline = Date.now() + (options.retryForMs ?? this.options.retryForMs ?? DEFAULT_RETRY_FOR_MS);
    const failures: string[] = [];
    for (let round = 0; ; round++) {
      const answer = await this.tryRound(method, body, options, failures);
      if (answer) return answer;
      if (options.signal?.aborted || Date.now() >= deadline) break;
      await sleep(Math.min(RETRY_PAUSE_FIRST_MS * 2 ** round, RETRY_PAUSE_MAX_MS, Math.max(deadline - Date.now(), 0)), options.signal);
    }
    throw new RpcUnavailableError(`${method} failed on every judicator tried (${failures.slice(-3).join('; ') || 'aborted'})`);
  }

  /** One pass over the judicators; undefined if none answered. */
  private async tryRound<M extends RpcMethod>(
    method: M,
    body: RpcRequest<M>,
    options: { timeoutMs?: number; signal?: AbortSignal },
    failures: string[],
  ): Promise<RpcResponse<M> | undefined> {
    const addresses = await this.options.source.addresses().catch((error: unknown) => {
      failures.push(`cannot list judicators: ${describeError(error)}`);
      return [] as string[];
    });
    if (addresses.length === 0) {
      failures.push('no judicator address is known; is any judicator running and reachable?');
      return undefined;
    }
    const order = this.order(addresses);
    const attempts = Math.min(order.length, Math.max(this.options.attempts ?? DEFAULT_ATTEMPTS, 1));
    const timeoutMs = options.timeoutMs ?? this.options.timeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
    for (const address of order.slice(0, attempts)) {
      if (options.signal?.aborted) return undefined;
      try {
        const answer = await this.post<M>(address, method, body, timeoutMs, options.signal);
        this.preferred = address;
        return answer;
      } catch (error) {
        if (options.signal?.aborted) throw error;
        failures.push(`${address}: ${describeError(error)}`);
        this.avoidUntil.set(address, Date.now() + (this.options.avoidMs ?? DEFAULT_AVOID_MS));
        if (this.preferred === address) this.preferred = undefined;
      }
    }
    return undefined;
  }

  /** The preferred judicator first (connection reuse), then the others at random, avoided ones last. */
  private order(addresses: string[]): string[] {
    const now = Date.now();
    const shuffled = [...addresses].sort(() => Math.random() - 0.5);
    const good = shuffled.filter((a) => (this.avoidUntil.get(a) ?? 0) <= now);
    const avoided = shuffled.filter((a) => (this.avoidUntil.get(a) ?? 0) > now);
    if (this.preferred && good.includes(this.preferred)) good.splice(good.indexOf(this.preferred), 1), good.unshift(this.preferred);
    return [...good, ...avoided];
  }

  private async post<M extends RpcMethod>(
    address: string,
    method: M,
    body: RpcRequest<M>,
    timeoutMs: number,
    signal: AbortSignal | undefined,
  ): Promise<RpcResponse<M>> {
    const files = this.options.identity.current;
    const { status, text } = await postJson(this.agent, address, `${RPC_PATH}/${method}`, JSON.stringify(body), {
      tls: { ca: files.caPem, cert: files.certPem, key: files.keyPem },
      timeoutMs,
      signal,
    });
    // 503: that judicator cannot serve now (lost its etcd quorum, starting): another one may.
    if (status >= 500) throw new Error(`HTTP ${status}: ${text.slice(0, 200)}`);
    try {
      return JSON.parse(text) as RpcResponse<M>;
    } catch {
      throw new Error(`HTTP ${status} with a body that is not JSON: ${text.slice(0, 200)}`);
    }
  }

  /** Closes the kept-alive connections (on shutdown). */
  close(): void {
    this.unsubscribe();
    for (const timer of this.retiring) clearTimeout(timer);
    this.retiring.clear();
    this.agent.destroy();
  }
}

/**
 * Milliseconds a new connection to a judicator may take (TCP and the TLS handshake), apart from the call's
 * timeout: a judicator whose machine is gone drops the packets instead of refusing them, and waiting the
 * whole call timeout on it would spend the time the other judicators could have answered in.
 */
export const CONNECT_TIMEOUT_MS = 3_000;

/** One POST of a JSON body over mutual TLS; resolves with the status and the whole answer as text. */
function postJson(
  agent: https.Agent,
  address: string,
  path: string,
  body: string,
  options: { tls: { ca: string; cert: string; key: string }; timeoutMs: number; signal?: AbortSignal },
): Promise<{ status: number; text: string }> {
  const [host, port] = splitAddress(address);
  return new Promise((resolve, reject) => {
    const request = https.request(
      {
        agent,
        host,
        port,
        path,
        method: 'POST',
        ...options.tls,
        minVersion: MIN_TLS_VERSION,
        rejectUnauthorized: true,
        // Any judicator of this CA, whatever address it was reached at (peer-identity.ts says why).
        checkServerIdentity: judicatorServerCheck,
        // SNI only for DNS names: RFC 6066 forbids IP addresses there.
        ...(net.isIP(host) ? {} : { servername: host }),
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
        },
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => {
          cleanup();
          resolve({ status: response.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') });
        });
        response.on('error', fail);
      },
    );
    const timer = setTimeout(() => request.destroy(new Error(`no answer within ${options.timeoutMs} ms`)), options.timeoutMs);
    // A kept-alive connection is ready; a new one gets CONNECT_TIMEOUT_MS to be.
    request.on('socket', (socket: TLSSocket) => {
      if (!socket.connecting) return;
      const connectTimer = setTimeout(() => request.destroy(new Error(`no connection within ${CONNECT_TIMEOUT_MS} ms`)), Math.min(CONNECT_TIMEOUT_MS, options.timeoutMs));
      const done = () => clearTimeout(connectTimer);
      socket.once('secureConnect', done);
      socket.once('close', done);
    });
    const onAbort = () => request.destroy(new Error('aborted'));
    options.signal?.addEventListener('abort', onAbort, { once: true });
    function cleanup() {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
    }
    function fail(error: Error) {
      cleanup();
      reject(error);
    }
    request.on('error', fail);
    if (options.signal?.aborted) onAbort();
    request.end(body);
  });
}

/** `host:port` (IPv6 hosts in brackets) into its parts. */
export function splitAddress(address: string): [string, number] {
  const match = /^\[?([^\]]+?)\]?:(\d+)$/.exec(address);
  if (!match) throw new Error(`judicator address "${address}" is not host:port`);
  return [match[1]!, Number(match[2])];
}
