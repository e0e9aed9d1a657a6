// The MongoDB store's change feed: one change stream per store on the task collection, open from the
// store's opening to its close (so that a change made right after a subscribe is never missed), turned
// into store events and fanned out to the store's listeners. A broken stream is opened again from its
// resume token, and the listeners get a 'pending' event (they may have missed some).
import { MongoServerError, ObjectId, type ChangeStream, type ChangeStreamDocument, type Collection, type Document, type ResumeToken } from 'mongodb';
import { UnavailableError, describeError } from '../../common/errors';
import type { Logger } from '../../common/logging';
import { StoreEventFanout } from '../event-fanout';
import type { StoreEvent } from '../task-store';
import type { TaskDoc } from './documents';

/** How long opening the change stream may take before the store's opening tries again (ms). */
export const CHANGE_STREAM_OPEN_TIMEOUT_MS = 30_000;
/** How long after a broken change stream it is opened again (ms). */
export const CHANGE_STREAM_RETRY_MS = 1_000;

export class TaskChangeStream extends StoreEventFanout {
  private stream: ChangeStream<TaskDoc> | undefined;
  private resumeToken: ResumeToken | undefined;

  constructor(
    private readonly tasks: Collection<TaskDoc>,
    logger: Logger,
    retryMs: number = CHANGE_STREAM_RETRY_MS,
  ) {
    super(logger, retryMs);
  }

  /** The events a change means; only the fields below are sent by the server (see the $project). */
  static eventsOf(change: ChangeStreamDocument<TaskDoc>): StoreEvent[] {
    if (change.operationType === 'insert') return [{ type: 'pending' }];
    if (change.operationType === 'replace') return [{ type: 'pending' }];
    if (change.operationType !== 'update') return [];
    const fields = (change.updateDescription?.updatedFields ?? {}) as Partial<TaskDoc>;
    const events: StoreEvent[] = [];
    const id = change.documentKey._id;
    if (typeof fields.released === 'string' && id instanceof ObjectId) {
      // "<executor>/<random>": the random part has no "/", so the last one splits them.
      const slash = fields.released.lastIndexOf('/');
      events.push({ type: 'released', executor: slash > 0 ? fields.released.slice(0, slash) : fields.released, id: id.toHexString() });
    }
    if ('executor' in fields && fields.executor === null && fields.done !== true) events.push({ type: 'pending' });
    // Only the update that ends a task sets done (complete, cancel, give-up); nothing sets it back.
    if (fields.done === true && id instanceof ObjectId) events.push({ type: 'done', id: id.toHexString() });
    return events;
  }

  /**
   * Opens the change stream; resolves once the server has it (its first batch), so that every change
   * from then on is seen. Rejects when it cannot be opened within `timeoutMs`.
   */
  start(timeoutMs: number = CHANGE_STREAM_OPEN_TIMEOUT_MS): Promise<void> {
    return new Promise((resolve, reject) => {
      const stream = this.openStream();
      const timer = setTimeout(() => done(new UnavailableError(`the task change stream did not open within ${timeoutMs} ms`)), timeoutMs);
      const done = (error?: unknown) => {
        clearTimeout(timer);
        stream.off('init', onInit);
        stream.off('error', onError);
        if (error) {
          // The caller decides whether to try again: no reopen behind its back.
          this.closeStream();
          reject(error);
        } else resolve();
      };
      const onInit = () => done();
      const onError = (error: Error) => done(error);
      stream.once('init', onInit);
      stream.once('error', onError);
    });
  }

  private openStream(): ChangeStream<TaskDoc> {
    const pipeline: Document[] = [
      { $match: { operationType: { $in: ['insert', 'update', 'replace'] } } },
      // Never ship task documents (up to 16 MB) through the stream: only what the events need.
      {
        $project: {
          operationType: 1,
          documentKey: 1,
          'updateDescription.updatedFields.released': 1,
          'updateDescription.updatedFields.executor': 1,
          'updateDescription.updatedFields.done': 1,
        },
      },
    ];
    const stream = this.tasks.watch(pipeline, this.resumeToken ? { resumeAfter: this.resumeToken } : {});
    this.stream = stream;
    stream.on('change', (change) => {
      this.resumeToken = change._id;
      for (const event of TaskChangeStream.eventsOf(change)) this.emit(event);
    });
    stream.on('error', (error) => {
      // The driver already resumed once on a resumable error; this one needs a new stream.
      const code = error instanceof MongoServerError ? error.code : undefined;
      // 286 ChangeStreamHistoryLost, 280 ChangeStreamFatalError: the token is useless, start from now.
      if (code === 286 || code === 280) this.resumeToken = undefined;
      else this.resumeToken = stream.resumeToken ?? this.resumeToken;
      if (!this.closed) {
        this.logger.warn({ err: describeError(error), resume: Boolean(this.resumeToken) }, 'the task change stream failed; opening it again');
      }
      void stream.close().catch(() => undefined);
      if (this.stream === stream) this.stream = undefined;
      this.retryLater(() => {
        this.openStream();
        // Events may have been missed while the stream was down: let waiting reports look again.
        this.emit({ type: 'pending' });
      });
    });
    return stream;
  }

  /** Closes the stream (a caller that may start it again); listeners stay. */
  closeStream(): void {
    this.cancelRetry();
    const stream = this.stream;
    this.stream = undefined;
    if (stream) void stream.close().catch(() => undefined);
  }

  close(): void {
    this.stopFanout();
    this.closeStream();
  }
}
