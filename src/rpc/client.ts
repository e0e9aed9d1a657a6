// The judicator RPC client used by executors, gateways and the CLI: picks a live judicator, calls it with
// a timeout, and on a network failure, a timeout or a judicator that cannot serve (503) tries another.
// A judicator that failed is avoided for a while. Answers with a result code are final, never retried.
import http from 'node:http';
import { UnavailableError, describeError } from '../common/errors';
import { sleep } from '../common/processes';
import { RPC_PATH, type RpcMethod, type RpcRequest, type RpcResponse } from './contract';

export interface JudicatorSource {
  /** Current judicators, `host:port` of their RPC. */
  addresses(): Promise<string[]>;
}

export interface RpcClientOptions {
  source: JudicatorSource;
  /** Cluster token (`--cluster-token`), sent as a bearer token. */
  token?: string;
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
/** How long an idle kept-alive socket stays open, and how many a client keeps per judicator. */
const KEEP_ALIVE_MS = 10_000;
const MAX_SOCKETS = 64;

/** A call that reached no judicator able to answer. */
export class RpcUnavailableError extends UnavailableError {}

export class JudicatorRpcClient {
  private readonly avoidUntil = new Map<string, number>();
  private preferred: string | undefined;
  /**
   * node:http with kept-alive connections: a report or an add costs one round trip on an open socket
   * (fetch's machinery cost as much CPU as the call itself in profiles).
   */
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: MAX_SOCKETS, keepAliveMsecs: KEEP_ALIVE_MS });

  constructor(private readonly options: RpcClientOptions) {}

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
      failures.push('no judicator is registered in etcd; is any judicator running (and its etcd reachable)?');
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
    const { status, text } = await postJson(this.agent, address, `${RPC_PATH}/${method}`, JSON.stringify(body), {
      token: this.options.token,
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
    this.agent.destroy();
  }

}

/** One POST of a JSON body; resolves with the status and the whole answer as text. */
function postJson(
  agent: http.Agent,
  address: string,
  path: string,
  body: string,
  options: { token?: string; timeoutMs: number; signal?: AbortSignal },
): Promise<{ status: number; text: string }> {
  const [host, port] = splitAddress(address);
  return new Promise((resolve, reject) => {
    const request = http.request(
      {
        agent,
        host,
        port,
        path,
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
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
function splitAddress(address: string): [string, number] {
  const match = /^\[?([^\]]+?)\]?:(\d+)$/.exec(address);
  if (!match) throw new Error(`judicator address "${address}" is not host:port`);
  return [match[1]!, Number(match[2])];
}
