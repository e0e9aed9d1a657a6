// The UI's reader of GET /api/task/events: fetch() with the API token in its header (EventSource cannot
// send one), the stream parsed as it comes (../sse-parser.ts), reconnected with Last-Event-ID after a
// break (the server's `retry`, at most every few seconds), and stopped when the page is left. A page
// that cannot get a stream at all (an older gateway) is told so, and polls instead.
import type { TaskChange } from '../../task/events';
import { SseParser } from '../sse-parser';
import { authHeaders, requestToken, withQuery } from './api';

/** A `task` event: the task's state after a change. */
export type TaskEvent = TaskChange;

export interface ProgressEvent {
  id: string;
  step: 'compile' | 'execute';
  test: number;
  of: number;
  elapsed_ms: number;
}

export interface OutputEvent {
  id: string;
  stream: 'stdout' | 'stderr';
  step: 'compile' | 'execute';
  test?: number;
  text: string;
}

export interface EventHandlers {
  /** The stream is live (again): re-read what is shown once, then the events follow on from it. */
  ready(): void;
  task(event: TaskEvent): void;
  progress?(event: ProgressEvent): void;
  output?(event: OutputEvent): void;
  /** The stream broke (true) or is back (false). */
  offline(down: boolean): void;
  /** No stream can be had here (the route is missing, or refused): the page polls instead. */
  unavailable(reason: string): void;
  /** A followed task's stream ended with the task done. */
  ended?(): void;
}

/** Pause before reconnecting when the server said none, and the longest pause (ms). */
const RECONNECT_FIRST_MS = 1_000;
const RECONNECT_MAX_MS = 10_000;

/** Follows the task events (all the token may see, or one task with `id`); returns the function that stops. */
export function followEvents(query: { id?: string }, handlers: EventHandlers): () => void {
  const stop = new AbortController();
  let lastEventId = '';
  let pause = RECONNECT_FIRST_MS;
  let wasDown = false;

  const connect = async (): Promise<'again' | 'now' | 'stop'> => {
    const headers: Record<string, string> = { accept: 'text/event-stream', ...authHeaders() };
    if (lastEventId) headers['last-event-id'] = lastEventId;
    const response = await fetch(withQuery('api/task/events', query), { headers, cache: 'no-store', signal: stop.signal });
    const type = response.headers.get('content-type') ?? '';
    if (!type.includes('text/event-stream')) {
      let message = `HTTP ${response.status}`;
      try {
        message = ((await response.json()) as { message?: string }).message ?? message;
      } catch {
        // not JSON
      }
      // A missing route or a refusal will not pass by reconnecting; a gateway that is busy may.
      if (response.status === 503) throw new Error(message);
      if (response.status === 401 && (await requestToken(message))) return 'now';
      handlers.unavailable(message);
      return 'stop';
    }
    const parser = new SseParser();
    parser.lastEventId = lastEventId;
    const decoder = new TextDecoder();
    const reader = response.body!.getReader();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      for (const event of parser.push(decoder.decode(value, { stream: true }))) {
        let data: unknown;
        try {
          data = JSON.parse(event.data);
        } catch {
          continue;
        }
        if (event.event === 'ready' || event.event === 'reset') {
          if (wasDown) handlers.offline(false);
          wasDown = false;
          pause = RECONNECT_FIRST_MS;
          handlers.ready();
        } else if (event.event === 'task') handlers.task(data as TaskEvent);
        else if (event.event === 'progress') handlers.progress?.(data as ProgressEvent);
        else if (event.event === 'output') handlers.output?.(data as OutputEvent);
      }
      lastEventId = parser.lastEventId;
      if (parser.retryMs !== undefined) pause = Math.min(Math.max(parser.retryMs, 250), RECONNECT_MAX_MS);
    }
    // A followed task's stream ends when the task is done.
    if (query.id) {
      handlers.ended?.();
      return 'stop';
    }
    return 'again';
  };

  void (async () => {
    while (!stop.signal.aborted) {
      try {
        const next = await connect();
        if (next === 'stop') return;
        if (next === 'now') continue;
      } catch {
        if (stop.signal.aborted) return;
      }
      if (!wasDown) handlers.offline(true);
      wasDown = true;
      await new Promise((resolve) => setTimeout(resolve, pause));
      pause = Math.min(pause * 2, RECONNECT_MAX_MS);
    }
  })();
  return () => stop.abort();
}
