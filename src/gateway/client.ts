// A client of the gateway's HTTP API, for the command-line client (`kv2 task`, `kv2 status`): the
// gateway's URL and API token, a timeout per request, and answers whose result code is not OK thrown as
// typed errors carrying the server's message.
import { InvalidInputError, Kv2Error, NotFoundError, TooLargeError, UnavailableError, describeError } from '../common/errors';
import { ReturnCode, type ExecutorInfo } from '../task/types';
import type { PresentedBrief, PresentedTask } from './present';
import { SseParser, type SseEvent } from './sse-parser';

export const DEFAULT_GATEWAY = 'http://localhost:7000';

/** The gateway refused the API token (or wants one). */
export class UnauthorizedApiError extends Kv2Error {}

/** The gateway has no event stream to give (it is older than GET /api/task/events): wait another way. */
export class EventsUnavailableError extends Kv2Error {}

export interface GatewayClientOptions {
  /** Base URL (`http://host:7000`); a path prefix is kept. */
  url: string;
  token?: string | undefined;
  /** Milliseconds one request may take. */
  timeoutMs?: number;
}

/** An executor as GET /api/executors lists it. */
export type ExecutorAnswer = ExecutorInfo;

export interface JudicatorAnswer {
  name: string;
  address: string;
  leader: boolean;
}

/** A language as GET /api/languages lists it: a toolchain version and how many live executors have it. */
export interface LanguageAnswer {
  name: string;
  version: string;
  executors: number;
}

type Query = Record<string, string | number | boolean | undefined>;

export class GatewayClient {
  private readonly base: string;

  constructor(private readonly options: GatewayClientOptions) {
    let url: URL;
    try {
      url = new URL(/^https?:\/\//.test(options.url) ? options.url : `http://${options.url}`);
    } catch {
      throw new InvalidInputError(`--gateway must be a URL such as ${DEFAULT_GATEWAY}, not ${JSON.stringify(options.url)}`);
    }
    this.base = url.href.replace(/\/+$/, '');
  }

  get url(): string {
    return this.base;
  }

  /** `extraMs`: on top of the request timeout (a request the gateway holds on purpose). */
  private async request(method: string, path: string, query: Query = {}, body?: unknown, extraMs = 0): Promise<Response> {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(query)) if (value !== undefined && value !== '') params.set(key, String(value));
    const url = `${this.base}${path}${params.size ? `?${params}` : ''}`;
    const timeoutMs = (this.options.timeoutMs ?? 30_000) + extraMs;
    try {
      return await fetch(url, {
        method,
        headers: {
          accept: 'application/json',
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...(this.options.token ? { authorization: `Bearer ${this.options.token}` } : {}),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (error) {
      const reason = (error as Error).name === 'TimeoutError' ? `no answer within ${timeoutMs / 1000} s` : describeError((error as { cause?: unknown }).cause ?? error);
      throw new UnavailableError(`cannot reach the gateway at ${this.base} (${reason}); is it running? (--gateway or KV2_GATEWAY)`);
    }
  }

  /** The JSON answer of an OK result; anything else thrown with the server's message. */
  private async json<T>(method: string, path: string, query: Query = {}, body?: unknown, extraMs = 0): Promise<T> {
    const response = await this.request(method, path, query, body, extraMs);
    const text = await response.text();
    let answer: { result?: number; message?: string };
    try {
      answer = JSON.parse(text) as { result?: number; message?: string };
    } catch {
      throw new UnavailableError(`the gateway at ${this.base} answered HTTP ${response.status} with something that is not JSON: ${text.slice(0, 120)}`);
    }
    if (answer.result === ReturnCode.OK) return answer as T;
    throw answerError(answer.result, answer.message ?? `HTTP ${response.status}`);
  }

  async submit(fields: Record<string, unknown>): Promise<string> {
    return (await this.json<{ id: string }>('POST', '/api/task', {}, fields)).id;
  }

  async submitBatch(tasks: Record<string, unknown>[]): Promise<{ result: number; id: string | null; message?: string }[]> {
    return (await this.json<{ results: { result: number; id: string | null; message?: string }[] }>('POST', '/api/task/batch', {}, { tasks })).results;
  }

  async get(id: string, options: { noTruncate?: boolean } = {}): Promise<PresentedTask> {
    return (await this.json<{ task: PresentedTask }>('GET', '/api/task', { id, no_truncate: options.noTruncate ? 1 : undefined })).task;
  }

  /**
   * The task once it is done, or as it is after `seconds` (GET /api/task?wait=, whole text). A gateway
   * older than `wait` answers at once: the caller sees a task not done long before the wait was up.
   */
  async wait(id: string, seconds: number): Promise<PresentedTask> {
    const query = { id, no_truncate: 1, wait: seconds > 0 ? Number(seconds.toFixed(3)) : undefined };
    return (await this.json<{ task: PresentedTask }>('GET', '/api/task', query, undefined, seconds * 1000)).task;
  }

  /** The raw bytes of one field of a task (`compile_output`, `compile_source`, ...). */
  async file(id: string, file: string): Promise<Buffer> {
    const response = await this.request('GET', '/api/task', { id, file });
    const bytes = Buffer.from(await response.arrayBuffer());
    if (response.ok) return bytes;
    let answer: { result?: number; message?: string } = {};
    try {
      answer = JSON.parse(bytes.toString('utf8')) as typeof answer;
    } catch {
      // not JSON
    }
    throw answerError(answer.result ?? (response.status === 404 ? ReturnCode.NOT_EXIST : ReturnCode.ERROR), answer.message ?? `HTTP ${response.status}`);
  }

  async list(query: { id?: string; user?: number; start_time?: string; end_time?: string; old_to_new?: boolean; limit?: number; page?: number }): Promise<{ pages: number; tasks: PresentedBrief[] }> {
    return this.json('GET', '/api/task/list', { ...query, old_to_new: query.old_to_new ? 'true' : undefined });
  }

  async cancel(id: string): Promise<void> {
    await this.json('DELETE', '/api/task', { id });
  }

  /**
   * The events of GET /api/task/events (all the token may see, or one task with `id`) as they come,
   * parsed; ends when the server ends the stream (a followed task is done). Throws
   * EventsUnavailableError when the gateway has no event stream to give (older than events, or the route
   * refused), UnavailableError when it cannot be reached (the caller may reconnect with `lastEventId`).
   */
  async *events(query: { id?: string }, options: { signal?: AbortSignal; lastEventId?: string } = {}): AsyncGenerator<SseEvent> {
    const url = `${this.base}/api/task/events${query.id ? `?id=${encodeURIComponent(query.id)}` : ''}`;
    let response: Response;
    try {
      response = await fetch(url, {
        headers: {
          accept: 'text/event-stream',
          ...(options.lastEventId ? { 'last-event-id': options.lastEventId } : {}),
          ...(this.options.token ? { authorization: `Bearer ${this.options.token}` } : {}),
        },
        signal: options.signal,
      });
    } catch (error) {
      if (options.signal?.aborted) return;
      throw new UnavailableError(`cannot reach the gateway at ${this.base} (${describeError((error as { cause?: unknown }).cause ?? error)})`);
    }
    if (!(response.headers.get('content-type') ?? '').includes('text/event-stream')) {
      const text = await response.text().catch(() => '');
      let answer: { result?: number; message?: string } = {};
      try {
        answer = JSON.parse(text) as typeof answer;
      } catch {
        // not JSON: a gateway that does not know the route answers its own 404
      }
      // HTTP 404 is a gateway without the route (older than events); NOT_EXIST with 200, a task that is not there.
      if (response.status !== 404 && (answer.result === ReturnCode.UNAUTHORIZED || answer.result === ReturnCode.NOT_EXIST || answer.result === ReturnCode.INVALID_INPUT)) {
        throw answerError(answer.result, answer.message ?? `HTTP ${response.status}`);
      }
      throw new EventsUnavailableError(`the gateway at ${this.base} gives no event stream (HTTP ${response.status}${answer.message ? `: ${answer.message}` : ''})`);
    }
    const parser = new SseParser();
    if (options.lastEventId) parser.lastEventId = options.lastEventId;
    const decoder = new TextDecoder();
    try {
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) yield* parser.push(decoder.decode(chunk, { stream: true }));
    } catch (error) {
      if (options.signal?.aborted) return;
      throw new UnavailableError(`the event stream from ${this.base} broke (${describeError((error as { cause?: unknown }).cause ?? error)})`);
    }
  }

  async executors(): Promise<ExecutorAnswer[]> {
    return (await this.json<{ executors: ExecutorAnswer[] }>('GET', '/api/executors')).executors;
  }

  async languages(): Promise<LanguageAnswer[]> {
    return (await this.json<{ languages: LanguageAnswer[] }>('GET', '/api/languages')).languages;
  }

  async judicators(): Promise<JudicatorAnswer[]> {
    return (await this.json<{ judicators: JudicatorAnswer[] }>('GET', '/api/judicators')).judicators;
  }
}

function answerError(result: number | undefined, message: string): Error {
  switch (result) {
    case ReturnCode.INVALID_INPUT:
      return new InvalidInputError(message);
    case ReturnCode.NOT_EXIST:
      return new NotFoundError(message);
    case ReturnCode.TOO_LARGE:
      return new TooLargeError(message);
    case ReturnCode.UNAUTHORIZED:
      return new UnauthorizedApiError(`${message} (give it with --token or KV2_API_TOKEN)`);
    default:
      return new UnavailableError(message);
  }
}
