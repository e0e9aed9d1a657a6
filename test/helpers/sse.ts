// An event stream as a test reads it: GET /api/task/events over real HTTP, its events collected as they
// come (parsed with the parser the UI and the CLI use), with waits for an event that matches.
import { SseParser, type SseEvent } from '../../src/gateway/sse-parser';
import { waitFor } from './wait';

type Hooks = { after: (fn: () => unknown) => void };

export interface ParsedEvent extends SseEvent {
  json: any;
  /** ms since the epoch it arrived. */
  at: number;
}

export class EventStreamReader {
  readonly events: ParsedEvent[] = [];
  /** The stream ended (the server closed it). */
  ended = false;
  status = 0;
  /** The body when the answer was not a stream (an error as JSON). */
  body: any;
  readonly parser = new SseParser();
  private readonly controller = new AbortController();
  readonly done: Promise<void>;

  constructor(hooks: Hooks, url: string, headers: Record<string, string> = {}) {
    hooks.after(() => this.close());
    this.done = this.read(url, headers);
  }

  private async read(url: string, headers: Record<string, string>): Promise<void> {
    try {
      const response = await fetch(url, { headers: { accept: 'text/event-stream', ...headers }, signal: this.controller.signal });
      this.status = response.status;
      if (!/event-stream/.test(response.headers.get('content-type') ?? '')) {
        this.body = await response.json();
        this.ended = true;
        return;
      }
      const decoder = new TextDecoder();
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        for (const event of this.parser.push(decoder.decode(chunk, { stream: true }))) {
          this.events.push({ ...event, json: safeJson(event.data), at: Date.now() });
        }
      }
    } catch (error) {
      if (!this.controller.signal.aborted) throw error;
    }
    this.ended = true;
  }

  /** The events of one type, their data parsed. */
  of(type: string): any[] {
    return this.events.filter((e) => e.event === type).map((e) => e.json);
  }

  async waitFor(what: string, test: (events: ParsedEvent[]) => boolean, timeoutMs = 30_000): Promise<void> {
    await waitFor(
      () => {
        if (test(this.events)) return true;
        if (this.ended) throw new Error(`the stream ended before ${what}; events: ${JSON.stringify(this.events.map((e) => [e.event, e.data]))}`);
        return false;
      },
      { what, timeoutMs, intervalMs: 20 },
    );
  }

  close(): void {
    this.controller.abort();
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
