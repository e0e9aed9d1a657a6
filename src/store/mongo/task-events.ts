// The MongoDB store's task events (issue 17): a change stream of the task collection, opened only while
// someone follows the events, that becomes the task changes; and the live records of running tasks, kept
// in the task document (`live`, cleared by the change that takes the task from its executor: documents.ts
// changeSet).
//
// Task changes: inserts, and updates that set status, done or executor (a running task's report time
// refreshed, or its live record written, is no change), with the task's fields looked up after the update
// and projected down to what a change says (never the task's input: a document can be 16 MB). The cursor
// is the change's resume token (`_data`, hex that orders as strings within a replica set): a watch can
// start after any change the oplog still holds, on any judicator.
//
// Live records are read by polling the one task followed (LIVE_POLL_MS): a change stream per followed task
// would hold a cursor on the server each.
import { randomBytes } from 'node:crypto';
import { MongoServerError, type ChangeStream, type ChangeStreamDocument, type Collection, type Document } from 'mongodb';
import { describeError } from '../../common/errors';
import type { Logger } from '../../common/logging';
import { LIVE_OUTPUT_MAX_BYTES, type LiveTask, type TaskChange } from '../../task/events';
import type { TaskVerdict } from '../../task/types';
import { verdictOf } from '../../task/verdicts';
import type { LiveRecord, TaskChangeHandlers, TaskChangeWatch } from '../task-store';
import { parseId, toBuffer, type LiveDoc, type TaskDoc } from './documents';
import { translate } from './errors';

/** How often a followed task's live record is read (ms). */
export const LIVE_POLL_MS = 500;
/** How long opening the change stream of task changes may take (ms). */
const CHANGE_WATCH_OPEN_TIMEOUT_MS = 30_000;

/** What a change stream event of the task collection carries here (see the $project). */
interface ProjectedChange {
  _id: { _data: string };
  fullDocument?: Pick<TaskDoc, '_id' | 'user' | 'status' | 'done' | 'executor'> & { result?: { verdict?: TaskVerdict | null; accepted?: boolean | null } | null };
}

const PIPELINE: Document[] = [
  {
    $match: {
      $or: [
        { operationType: { $in: ['insert', 'replace'] } },
        { operationType: 'update', 'updateDescription.updatedFields.status': { $exists: true } },
        { operationType: 'update', 'updateDescription.updatedFields.done': { $exists: true } },
        { operationType: 'update', 'updateDescription.updatedFields.executor': { $exists: true } },
      ],
    },
  },
  {
    $project: {
      'fullDocument._id': 1,
      'fullDocument.user': 1,
      'fullDocument.status': 1,
      'fullDocument.done': 1,
      'fullDocument.executor': 1,
      'fullDocument.result.verdict': 1,
      'fullDocument.result.accepted': 1,
    },
  },
];

function changeOf(doc: NonNullable<ProjectedChange['fullDocument']>): TaskChange {
  return {
    id: doc._id.toHexString(),
    user: doc.user,
    status: doc.status,
    done: doc.done,
    verdict: doc.done ? (doc.result?.verdict ?? verdictOf({ done: true, status: doc.status, result: { accepted: doc.result?.accepted } })) : null,
    executor: doc.executor ?? null,
  };
}

export class MongoChangeWatch implements TaskChangeWatch {
  readonly started: Promise<string>;
  private stream: ChangeStream<TaskDoc> | undefined;
  private stopped = false;

  constructor(tasks: Collection<TaskDoc>, after: string | undefined, handlers: TaskChangeHandlers, logger: Logger) {
    const options = { fullDocument: 'updateLookup' as const, ...(after !== undefined ? { startAfter: { _data: after } } : {}) };
    const stream = tasks.watch(PIPELINE, options);
    this.stream = stream;
    this.started = new Promise<string>((resolve, reject) => {
      let settled = false;
      const timer = setTimeout(() => fail(new Error(`the change stream of task changes did not open within ${CHANGE_WATCH_OPEN_TIMEOUT_MS} ms`)), CHANGE_WATCH_OPEN_TIMEOUT_MS);
      const fail = (error: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.stop();
        reject(error);
      };
      stream.once('init', () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        const token = (stream.resumeToken as { _data?: string } | undefined)?._data;
        resolve(after ?? token ?? '');
      });
      stream.on('change', (raw: ChangeStreamDocument<TaskDoc>) => {
        if (this.stopped) return;
        const change = raw as unknown as ProjectedChange;
        if (!change.fullDocument) return; // deleted since (retention): nothing to tell
        handlers.batch({ cursor: change._id._data, changes: [changeOf(change.fullDocument)] });
      });
      stream.on('error', (error: Error) => {
        if (this.stopped) return;
        const code = error instanceof MongoServerError ? error.code : undefined;
        const reason = `the task change stream ended (${code === 286 ? 'its history is gone from the oplog' : describeError(error)})`;
        logger.info({ err: describeError(error) }, 'a change stream of task changes ended');
        if (!settled) return fail(new Error(reason));
        this.stop();
        handlers.lost(reason);
      });
    });
    this.started.catch(() => undefined);
  }

  stop(): void {
    this.stopped = true;
    const stream = this.stream;
    this.stream = undefined;
    if (stream) void stream.close().catch(() => undefined);
  }
}

function liveDoc(live: LiveTask): LiveDoc {
  return {
    step: live.step,
    test: live.test,
    of: live.of,
    elapsed_ms: live.elapsed_ms,
    stdout: live.stdout.subarray(0, LIVE_OUTPUT_MAX_BYTES),
    stderr: live.stderr.subarray(0, LIVE_OUTPUT_MAX_BYTES),
    version: randomBytes(8).toString('hex'),
  };
}

/** Writes live records of tasks `executor` holds: each update's filter is "held by it, not done". */
export async function writeLive(tasks: Collection<TaskDoc>, executor: string, records: readonly LiveTask[]): Promise<string[]> {
  try {
    const written = await Promise.all(
      records.map(async (live) => {
        const oid = parseId(live.id);
        if (!oid) return false;
        const result = await tasks.updateOne({ _id: oid, executor, done: false }, { $set: { live: liveDoc(live) } });
        return result.matchedCount === 1;
      }),
    );
    return records.filter((_, i) => written[i]).map((live) => live.id);
  } catch (error) {
    throw translate(error, 'recording the live state of running tasks');
  }
}

export async function readLive(tasks: Collection<TaskDoc>, id: string): Promise<LiveRecord | undefined> {
  const oid = parseId(id);
  if (!oid) return undefined;
  try {
    const doc = await tasks.findOne({ _id: oid }, { projection: { live: 1 } });
    const live = doc?.live;
    if (!live) return undefined;
    return {
      version: live.version,
      live: { id, step: live.step, test: live.test, of: live.of, elapsed_ms: live.elapsed_ms, stdout: toBuffer(live.stdout), stderr: toBuffer(live.stderr) },
    };
  } catch (error) {
    throw translate(error, 'reading the live state of a task');
  }
}

/** Polls one task's live record, calling `listener` when its version changes (null once it is gone). */
export function watchLive(tasks: Collection<TaskDoc>, id: string, listener: (record: LiveRecord | null) => void, logger: Logger): () => void {
  let version: string | undefined;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const poll = async () => {
    try {
      const record = await readLive(tasks, id);
      if (stopped) return;
      if (record && record.version !== version) listener(record);
      else if (!record && version !== undefined) listener(null);
      version = record?.version;
    } catch (error) {
      logger.debug({ err: describeError(error), task: id }, 'could not read a live record; trying again');
    }
    if (!stopped) timer = setTimeout(() => void poll(), LIVE_POLL_MS);
  };
  timer = setTimeout(() => void poll(), LIVE_POLL_MS);
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
