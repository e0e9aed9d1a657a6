// Judicator RPC calls as the API routes make them: timed into the metrics, an OK answer returned, any
// other answer thrown as a JudicatorAnswerError that the error handler turns into the route's JSON.
import { UnavailableError } from '../../common/errors';
import type { RpcMethod, RpcRequest, RpcResponse } from '../../rpc/contract';
import { ReturnCode, returnCodeName } from '../../task/types';
import type { GatewayMetrics } from '../metrics';
import { JudicatorAnswerError } from './errors';

export interface CallOptions {
  timeoutMs?: number;
  /** Milliseconds to keep retrying while no judicator can answer (0: one round). */
  retryForMs?: number;
  /** Abandons the call (the HTTP client hung up). */
  signal?: AbortSignal;
}

export interface RpcCaller {
  call<M extends RpcMethod>(method: M, body: RpcRequest<M>, options?: CallOptions): Promise<RpcResponse<M>>;
}

const DEFAULT_MESSAGES: Record<number, string> = {
  [ReturnCode.ERROR]: 'the judicator could not do it',
  [ReturnCode.NOT_EXIST]: 'no such task (or it is already done)',
  [ReturnCode.TOO_LARGE]: 'the task is too large',
  [ReturnCode.INVALID_INPUT]: 'the judicator refused the input',
};

export class JudicatorCalls {
  constructor(
    private readonly rpc: RpcCaller,
    private readonly metrics: GatewayMetrics,
  ) {}

  /** The judicator's answer to `method`, whatever its result code. */
  async answer<M extends RpcMethod>(method: M, body: RpcRequest<M>, options: CallOptions = {}): Promise<RpcResponse<M>> {
    const started = process.hrtime.bigint();
    let outcome = 'unavailable';
    try {
      const response = await this.rpc.call(method, body, options);
      if (!response || typeof response.result !== 'number') {
        throw new UnavailableError(`the judicator's answer to ${method} has no result code`);
      }
      outcome = returnCodeName(response.result);
      if (response.result === ReturnCode.UNAUTHORIZED) {
        // The judicators refused this gateway's certificate (revoked, say): an operator's problem, not the client's.
        throw new JudicatorAnswerError(
          ReturnCode.ERROR,
          `the judicators refused this gateway's cluster certificate (${response.message ?? 'unauthorized'}); it may have been revoked: join the gateway again with a new join token`,
        );
      }
      return response;
    } finally {
      this.metrics.rpcDuration.observe({ method, outcome }, Number(process.hrtime.bigint() - started) / 1e9);
    }
  }

  /** The judicator's answer to `method` when it is OK; otherwise its code and message, thrown. */
  async ok<M extends RpcMethod>(method: M, body: RpcRequest<M>, options: CallOptions = {}): Promise<RpcResponse<M>> {
    return checked(await this.answer(method, body, options));
  }
}

/** `response` when it is OK; otherwise its code and message, thrown as a JudicatorAnswerError. */
export function checked<R extends { result: ReturnCode; message?: string }>(response: R): R {
  if (response.result !== ReturnCode.OK) {
    throw new JudicatorAnswerError(response.result, response.message ?? DEFAULT_MESSAGES[response.result] ?? `result ${response.result}`);
  }
  return response;
}
