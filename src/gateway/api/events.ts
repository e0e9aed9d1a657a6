// GET /api/task/events (issue 17): task changes as Server-Sent Events, for the web UI (instead of polling)
// and `kv2 task submit --wait` / `kv2 task wait --follow`. One `task` event per change, in order per task
// ({"id","user","status","done","verdict","executor"}), only of the tasks the request's token may see;
// with `?id=` one task: its state first, then its changes, and while it runs its `progress` (step, test i
// of N, elapsed time) and `output` (what it printed so far, as it comes); the stream ends after the task
// is done. A `ready` event (with the cursor) says the stream is live; `reset` that the changes since the
// client's Last-Event-ID cannot be told (re-read, then follow on); a comment every EVENTS_HEARTBEAT_MS
// keeps proxies from closing the connection and carries the cursor as the event id.
//
// Bounded: at most limits.events_max_streams streams at once (more: 503), and a client that lets more than
// limits.events_buffer_bytes wait unsent is dropped (its client reconnects with Last-Event-ID).
import type { ServerResponse } from 'node:http';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { UnavailableError } from '../../common/errors';
import { taskFromWire } from '../../rpc/wire';
import { sameChange, type TaskChange } from '../../task/events';
import { ReturnCode } from '../../task/types';
import { verdictOf } from '../../task/verdicts';
import type { EventScope, EventSubscriber, LiveUpdate } from '../task-events';
import type { ApiContext } from './context';
import { JudicatorAnswerError } from './errors';
import { answerSchema, outputEventSchema, progressEventSchema, taskEventSchema } from './answers';
import type { RouteDoc } from './openapi';
import { callerOf, checkOwner } from './ownership';
import { eventsQuery, parseQuery } from './queries';
import { checked } from './judicator';

/** Streams open at once (config limits.events_max_streams). */
export const DEFAULT_EVENTS_MAX_STREAMS = 256;
/** Bytes one stream may have unsent before its client is dropped (config limits.events_buffer_bytes). */
export const DEFAULT_EVENTS_BUFFER_BYTES = 1024 * 1024;
/** How often a quiet stream gets a comment (and the cursor), ms: under the 30-60 s proxies allow an idle connection. */
export const EVENTS_HEARTBEAT_MS = 15_000;
/** What a client waits before it reconnects after the stream broke (the SSE `retry` field), ms. */
export const EVENTS_CLIENT_RETRY_MS = 2_000;

/** The task change as the `task` event carries it. */
function taskData(change: TaskChange): TaskChange {
  return { id: change.id, user: change.user, status: change.status, done: change.done, verdict: change.verdict, executor: change.executor };
}

/** One SSE response: frames written in order, the client dropped when it lets too much wait. */
class EventStream {
  closed = false;

  constructor(
    private readonly raw: ServerResponse,
    private readonly maxBuffered: number,
    private readonly onDrop: () => void,
  ) {}

  private write(frame: string): void {
    if (this.closed) return;
    this.raw.write(frame);
    if (this.raw.writableLength > this.maxBuffered) {
      this.onDrop();
      this.end();
    }
  }

  send(event: string, data: unknown, id?: string): void {
    // JSON has no raw newline, so the data is one `data:` line.
    this.write(`${id ? `id: ${id}\n` : ''}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  }

  /** A comment; with `id`, the client's last event id moves there too (no event is dispatched). */
  comment(text: string, id?: string): void {
    this.write(`: ${text}\n${id ? `id: ${id}\n\n` : '\n'}`);
  }

  retry(ms: number): void {
    this.write(`retry: ${ms}\n\n`);
  }

  end(): void {
    if (this.closed) return;
    this.closed = true;
    this.raw.end();
  }
}

/** What one followed task printed so far, per stream: how much of it was sent, decoded across chunk ends. */
class OutputCursor {
  private key = '';
  private sent = 0;
  private decoder = new TextDecoder('utf-8');

  /** The new text of `bytes`, the whole output so far of step/test `key`. */
  next(key: string, bytes: Buffer): string {
    if (key !== this.key) {
      this.key = key;
      this.sent = 0;
      this.decoder = new TextDecoder('utf-8');
    }
    if (bytes.length <= this.sent) return '';
    const text = this.decoder.decode(bytes.subarray(this.sent), { stream: true });
    this.sent = bytes.length;
    return text;
  }
}

const EVENTS_DOC: RouteDoc = {
  summary: 'Follow task changes (Server-Sent Events)',
  description:
    'A text/event-stream: `ready` {cursor} once it is live; one `task` event per change of a task the token may see (TaskEvent), in order per task; ' +
    'with id, that task only: its state first, then its changes, `progress` (ProgressEvent) and `output` (OutputEvent) while it runs, and the stream ends when it is done. ' +
    '`reset` {cursor}: what happened since Last-Event-ID cannot be told, re-read. A comment every 15 s keeps the connection open and carries the cursor as the event id. ' +
    'Reconnect with the Last-Event-ID header to go on where the stream broke.',
  tag: 'Tasks',
  api: true,
  query: eventsQuery,
  headers: [{ name: 'Last-Event-ID', description: 'The id of the last event seen: go on after it.' }],
  responses: {
    '200': {
      description: 'The event stream. Each event\'s data is one of the schemas below, by its type.',
      content: { 'text/event-stream': z.union([taskEventSchema, progressEventSchema, outputEventSchema, z.object({ cursor: z.string(), id: z.string().optional() })]) },
    },
    '503': { description: 'This gateway has as many streams open as it serves (limits.events_max_streams).', content: { 'application/json': answerSchema } },
  },
};

export function registerEventRoutes(app: FastifyInstance, context: ApiContext): void {
  const maxStreams = context.limits.events_max_streams ?? DEFAULT_EVENTS_MAX_STREAMS;
  const maxBuffered = context.limits.events_buffer_bytes ?? DEFAULT_EVENTS_BUFFER_BYTES;
  const open = new Set<EventStream>();
  app.addHook('preClose', async () => {
    for (const stream of open) stream.end();
  });

  app.get('/api/task/events', { config: { failure: {}, openapi: EVENTS_DOC } }, async (request: FastifyRequest, reply) => {
    const header = request.headers['last-event-id'];
    const query = parseQuery(eventsQuery, { ...(request.query as object), ...(header ? { last_event_id: Array.isArray(header) ? header[0] : header } : {}) });
    const id = query.id;
    const lastEventId = query.last_event_id;
    if (open.size >= maxStreams) {
      throw new UnavailableError(`this gateway serves at most ${maxStreams} event streams at once (limits.events_max_streams); try again later or another gateway`);
    }
    const scope: EventScope = context.scope(request);
    const follower = context.events;

    // Until the stream is open, what comes is kept and sent after the task's state.
    let pending: { changes: TaskChange[]; cursor: string }[] | undefined = [];
    let latestLive: LiveUpdate | undefined;
    let stream: EventStream | undefined;
    let lastCursor: string | undefined;
    const outputs = { stdout: new OutputCursor(), stderr: new OutputCursor() };
    let progressKey = '';
    let resetAt: string | undefined;
    const subscriber: EventSubscriber = {
      scope,
      ...(id ? { task: id } : {}),
      changes(changes, cursor) {
        if (pending) pending.push({ changes, cursor });
        else sendChanges(changes, cursor);
      },
      live(update) {
        latestLive = update;
        if (!pending) sendLive(update);
      },
      reset(cursor) {
        lastCursor = cursor || lastCursor;
        if (!pending) stream?.send('reset', { cursor }, cursor || undefined);
        else {
          // Told once the stream is open; what was kept before it no longer follows on.
          pending = [];
          resetAt = cursor;
        }
      },
    };
    const sendChanges = (changes: TaskChange[], cursor: string) => {
      if (!stream) return;
      changes.forEach((change, i) => stream!.send('task', taskData(change), i === changes.length - 1 ? cursor : undefined));
      lastCursor = cursor;
      // A followed task's stream ends with its last change.
      if (id && changes.some((c) => c.done)) stream.end();
    };
    const sendLive = (update: LiveUpdate) => {
      if (!stream) return;
      const test = update.step === 'execute' ? { test: update.test } : {};
      const key = `${update.step}/${update.test}/${update.of}/${update.elapsed_ms}`;
      if (key !== progressKey) {
        progressKey = key;
        stream.send('progress', { id: update.id, step: update.step, test: update.test, of: update.of, elapsed_ms: update.elapsed_ms });
      }
      for (const name of ['stdout', 'stderr'] as const) {
        const text = outputs[name].next(`${update.step}/${update.test}`, update[name]);
        if (text) stream.send('output', { id: update.id, stream: name, step: update.step, ...test, text });
      }
    };

    const cursor = await follower.subscribe(subscriber, lastEventId);
    let snapshot: TaskChange | undefined;
    try {
      if (id) {
        const askedAt = pending.length;
        const answer = checked(await context.calls.answer('get', { id }));
        if (!answer.task) throw new JudicatorAnswerError(ReturnCode.NOT_EXIST, `no task ${id}`);
        const task = taskFromWire(answer.task);
        // Another user's task: refused as reading it is (403).
        checkOwner(task.user, callerOf(request), id);
        snapshot = { id, user: task.user, status: task.status, done: task.done, verdict: verdictOf(task), executor: task.executor };
        // What came before the read is in the task as read.
        pending = pending.slice(askedAt);
      }
    } catch (error) {
      follower.unsubscribe(subscriber);
      throw error;
    }

    reply.hijack();
    const raw = reply.raw;
    raw.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      // nginx and the like must pass events on as they come, not buffer them.
      'x-accel-buffering': 'no',
      'x-content-type-options': 'nosniff',
    });
    raw.socket?.setNoDelay(true);
    stream = new EventStream(raw, maxBuffered, () =>
      context.logger.info({ buffered: raw.writableLength, id }, 'an event stream client reads too slowly; dropping it (it reconnects with its last event id)'),
    );
    open.add(stream);
    context.metrics.eventStreams.inc();
    const heartbeat = setInterval(() => stream!.comment(new Date().toISOString(), lastCursor), EVENTS_HEARTBEAT_MS);
    const closeDown = () => {
      clearInterval(heartbeat);
      follower.unsubscribe(subscriber);
      if (open.delete(stream!)) context.metrics.eventStreams.dec();
      stream!.end();
    };
    raw.once('close', closeDown);
    raw.once('finish', closeDown);

    stream.retry(EVENTS_CLIENT_RETRY_MS);
    lastCursor = cursor || undefined;
    stream.send('ready', { cursor, ...(id ? { id } : {}) }, cursor || undefined);
    if (resetAt !== undefined) stream.send('reset', { cursor: resetAt }, resetAt || undefined);
    const queued = pending;
    pending = undefined;
    if (snapshot) {
      stream.send('task', taskData(snapshot));
      if (snapshot.done) return stream.end();
    }
    for (const item of queued) {
      const changes = snapshot ? item.changes.filter((c) => !sameChange(c, snapshot!)) : item.changes;
      if (changes.length) sendChanges(changes, item.cursor);
      if (stream.closed) return;
    }
    if (latestLive) sendLive(latestLive);
  });
}
