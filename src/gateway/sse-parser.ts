// Reading a Server-Sent Events stream (the WHATWG parsing rules) from text chunks as they arrive: what the
// web UI and the CLI read GET /api/task/events with. Not the browser's EventSource, because that cannot
// send the API token in a header; the same rules otherwise: `event`, `data` (lines joined), `id` (kept
// across events, also when a block has no data), `retry`, comments ignored. No Node or DOM dependency.

export interface SseEvent {
  /** The event type ('message' when the block named none). */
  event: string;
  data: string;
  /** The last event id seen so far (what a reconnect sends as Last-Event-ID). */
  lastEventId: string;
}

export class SseParser {
  /** The id a reconnecting client sends as Last-Event-ID. */
  lastEventId = '';
  /** The reconnection delay the server asked for, ms (undefined: none said). */
  retryMs: number | undefined;
  private buffer = '';
  private eventType = '';
  private data: string[] = [];
  private pendingId: string | undefined;

  /** Parses a chunk of the stream; returns the events it completed. */
  push(chunk: string): SseEvent[] {
    this.buffer += chunk;
    const events: SseEvent[] = [];
    for (;;) {
      const match = /\r\n|\r|\n/.exec(this.buffer);
      // A lone \r at the end may be the first half of \r\n: wait for the next chunk.
      if (!match || (match[0] === '\r' && match.index === this.buffer.length - 1)) break;
      const line = this.buffer.slice(0, match.index);
      this.buffer = this.buffer.slice(match.index + match[0].length);
      const event = this.line(line);
      if (event) events.push(event);
    }
    return events;
  }

  private line(line: string): SseEvent | undefined {
    if (line === '') return this.dispatch();
    if (line.startsWith(':')) return undefined;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') this.eventType = value;
    else if (field === 'data') this.data.push(value);
    else if (field === 'id' && !value.includes('\0')) this.pendingId = value;
    else if (field === 'retry' && /^\d+$/.test(value)) this.retryMs = Number(value);
    return undefined;
  }

  private dispatch(): SseEvent | undefined {
    if (this.pendingId !== undefined) this.lastEventId = this.pendingId;
    this.pendingId = undefined;
    const type = this.eventType || 'message';
    this.eventType = '';
    if (this.data.length === 0) return undefined;
    const data = this.data.join('\n');
    this.data = [];
    return { event: type, data, lastEventId: this.lastEventId };
  }
}
