// The web UI's client of the gateway API: relative URLs (so the UI works behind a path prefix, as the
// original's did), the API token kept in the browser session and sent as a bearer token, and answers
// whose result code is not OK turned into errors with the server's message.
import { returnCodeText, type ExecutorInfo, type StepReport } from '../../task/types';
import type { JudicatorAnswer } from '../client';
import type { PresentedBrief, PresentedTask } from '../present';

export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly result?: number,
    /** Every bad field of a refused submission (HTTP 400), each with what is wrong with it. */
    readonly errors: { field: string; message: string }[] = [],
  ) {
    super(message);
  }
}

const TOKEN_KEY = 'kv2.api-token';

export function storedToken(): string | null {
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

export function storeToken(token: string | null): void {
  try {
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    else sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    // private mode without storage: the token lasts until the page is left
  }
}

/** Asks the user for a token (the app shows a dialog); resolves false when they give up. */
let askForToken: ((reason: string) => Promise<boolean>) | undefined;
export function onTokenNeeded(handler: (reason: string) => Promise<boolean>): void {
  askForToken = handler;
}

/** Asks the user for a token (a 401 outside api(): the event stream); false when there is no way to. */
export async function requestToken(reason: string): Promise<boolean> {
  return askForToken ? askForToken(reason) : false;
}

export function authHeaders(): Record<string, string> {
  const token = storedToken();
  return token ? { authorization: `Bearer ${token}` } : {};
}

export type Query = Record<string, string | number | boolean | undefined | null>;

export function withQuery(path: string, query: Query = {}): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) if (value !== undefined && value !== null && value !== '') params.set(key, String(value));
  const text = params.toString();
  return text ? `${path}?${text}` : path;
}

/** Sends a request and returns the JSON answer of an OK result; throws ApiError otherwise. */
export async function api<T>(method: string, path: string, options: { query?: Query; body?: FormData | object } = {}): Promise<T> {
  for (;;) {
    const headers: Record<string, string> = { accept: 'application/json', ...authHeaders() };
    let body: BodyInit | undefined;
    if (options.body instanceof FormData) body = options.body;
    else if (options.body !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(options.body);
    }
    let response: Response;
    try {
      response = await fetch(withQuery(path, options.query), { method, headers, body, cache: 'no-store' });
    } catch (error) {
      throw new ApiError(`Cannot reach the gateway (${(error as Error).message}).`, 0);
    }
    let answer: { result?: number; message?: string; errors?: { field: string; message: string }[] } | undefined;
    try {
      answer = (await response.json()) as typeof answer;
    } catch {
      throw new ApiError(`Server returned error code: ${response.status}!`, response.status);
    }
    if (response.status === 401 && askForToken) {
      if (await askForToken(answer?.message ?? 'This gateway needs an API token.')) continue;
      throw new ApiError(answer?.message ?? 'An API token is needed.', 401, answer?.result);
    }
    if (answer?.result !== 0) {
      const code = answer?.result;
      const title = code === undefined ? `Server returned error code: ${response.status}!` : returnCodeText(code);
      throw new ApiError(answer?.message ? `${title}: ${answer.message}` : title, response.status, code, Array.isArray(answer?.errors) ? answer.errors : []);
    }
    return answer as T;
  }
}

/** Downloads one field of a task (with the token, when there is one) as a file. */
export async function download(url: string, filename: string): Promise<void> {
  let response = await fetch(url, { headers: authHeaders(), cache: 'no-store' });
  // A token refused meanwhile (the tokens file changed): ask again, as every other call does.
  while (response.status === 401 && askForToken && (await askForToken('This gateway needs an API token for the download.'))) {
    response = await fetch(url, { headers: authHeaders(), cache: 'no-store' });
  }
  if (!response.ok) {
    let message = `Server returned error code: ${response.status}!`;
    try {
      const answer = (await response.json()) as { message?: string };
      if (answer.message) message = answer.message;
    } catch {
      // not JSON
    }
    throw new ApiError(message, response.status);
  }
  const blob = await response.blob();
  const link = document.createElement('a');
  link.href = URL.createObjectURL(blob);
  link.download = filename;
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
}

/** The API's shapes, as the pages use them (type-only imports: nothing of the server is bundled). */
export type Brief = PresentedBrief;
export type TaskView = PresentedTask;
export type { StepReport };
export type ExecutorView = ExecutorInfo;
export type JudicatorView = JudicatorAnswer;
