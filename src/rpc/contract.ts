// The judicator RPC contract (HTTP/JSON): `POST /rpc/<method>` with a JSON body, answered with JSON that
// always carries `result` (a ReturnCode) and, when it is not OK, `message` saying why. Binary fields travel
// as base64. The methods are the original's (ping, add, cancel, search, get, report, executors), `wait`
// (addition) and `events` (issue 17: task changes and live state, long-polled with a cursor). A judicator answers a method it does not know with HTTP 404, INVALID_INPUT and
// UNKNOWN_METHOD's message, so a newer client can tell an older judicator from a refused input.
// Requests are validated with these schemas on the judicator; clients use the inferred types.
import { z } from 'zod';
import { LIVE_OUTPUT_MAX_BYTES, type TaskChange } from '../task/events';
import {
  countSchema,
  floatErrorSchema,
  stepLimitsSchema,
  stepReportSchema,
  taskIdSchema,
  taskStatusSchema,
  taskVerdictSchema,
  testModeSchema,
  testReportSchema,
} from '../task/schema';
import { MAX_CALLBACK_URL_LENGTH, MAX_JUDGE_TESTS } from '../task/limits';
import type { ExecutorInfo, ReturnCode, TaskBrief, TaskVerdict } from '../task/types';

export const RPC_PATH = '/rpc';
/** Header carrying the cluster token (`--cluster-token`), when the cluster has one. */
export const TOKEN_HEADER = 'authorization';

/** Longest a `wait` call may ask to be held, ms. */
export const MAX_TASK_WAIT_MS = 120_000;
/** Longest a `report` may ask to be held when there is nothing to say, ms. */
export const MAX_REPORT_WAIT_MS = 120_000;
/** Most tasks one report may list as complete, executing or released, and most slots it may offer. */
export const MAX_REPORT_TASKS = 10_000;
/** Longest executor name and registration key. */
export const MAX_NAME_LENGTH = 128;
/** Longest an `events` call may ask to be held when there is nothing new, ms. */
export const MAX_EVENTS_WAIT_MS = 60_000;
/** Most running tasks one `events` call may follow the live state of. */
export const MAX_EVENTS_LIVE = 256;
/** Longest events cursor (an etcd revision is 16 hex digits; a MongoDB resume token a few hundred). */
export const MAX_CURSOR_LENGTH = 1024;
/** Characters of each stream a live record carries on the wire: task/events.ts's bound, in base64. */
const MAX_LIVE_WIRE_CHARS = Math.ceil(LIVE_OUTPUT_MAX_BYTES / 3) * 4;
/** The message of a judicator's answer to a method it does not know (judicators before `wait` too). */
export const UNKNOWN_METHOD = (method: string) => `no RPC method "${method}"`;
const int = countSchema;
const id = taskIdSchema;
const status = taskStatusSchema;
/** base64 text; an empty string is empty bytes. */
const base64 = z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/, 'must be base64');
const name = z.string().min(1).max(MAX_NAME_LENGTH).regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'letters, digits, "_", "." and "-" only');

/** A task's judge on the wire (issue 17): tests and the checker's source as base64 of their zlib text. */
export const wireJudgeSchema = z
  .object({
    tests: z.array(z.object({ name: z.string().max(64), input: base64, output: base64 }).strict()).max(MAX_JUDGE_TESTS),
    mode: testModeSchema,
    checker: z.discriminatedUnion('kind', [
      z.object({ kind: z.literal('exact') }).strict(),
      z.object({ kind: z.literal('tokens') }).strict(),
      z.object({ kind: z.literal('float'), error: floatErrorSchema }).strict(),
      z.object({ kind: z.literal('program'), source_name: z.string().min(1).max(255), source: base64 }).strict(),
    ]),
  })
  .strict();
export type WireJudge = z.infer<typeof wireJudgeSchema>;

export const wireTaskInputSchema = z
  .object({
    user: int,
    compile: z.object({ source: base64, command: base64, timeout: int, limits: stepLimitsSchema.optional() }).strict(),
    execute: z
      .object({ input: base64, data: base64, command: base64, timeout: int, standard: base64, limits: stepLimitsSchema.optional() })
      .strict(),
    network: z.boolean().optional(),
    judge: wireJudgeSchema.optional(),
    callback_url: z.string().min(1).max(MAX_CALLBACK_URL_LENGTH).optional(),
  })
  // The original's clients send the whole Task struct; what the judicator decides itself is ignored.
  .passthrough();
export type WireTaskInput = z.infer<typeof wireTaskInputSchema>;

export const wireResultSchema = z.object({
  compile_output: base64,
  compile_error: base64,
  execute_output: base64,
  execute_error: base64,
  accepted: z.boolean().nullable().optional(),
  compile: stepReportSchema.nullable().optional(),
  execute: stepReportSchema.nullable().optional(),
  verdict: taskVerdictSchema.nullable().optional(),
  tests: z.array(testReportSchema).max(MAX_JUDGE_TESTS).optional(),
});
export type WireResult = z.infer<typeof wireResultSchema>;

/** A full task on the wire (get, and report's assignments). */
export interface WireTask extends WireTaskInput {
  id: string;
  add_time: string;
  done: boolean;
  status: number;
  executor: string | null;
  report_time: string;
  /** Issue 17: the task's verdict once it is done (its result's), as its brief has it. */
  verdict?: TaskVerdict | null;
  retries: number;
  result: WireResult | null;
}

/** A running task's live state on the wire (task/events.ts LiveTask, the output base64). */
export const wireLiveSchema = z.object({
  id,
  step: z.enum(['compile', 'execute']),
  test: int,
  of: int,
  elapsed_ms: z.number().min(0).max(Number.MAX_SAFE_INTEGER),
  stdout: base64.max(MAX_LIVE_WIRE_CHARS),
  stderr: base64.max(MAX_LIVE_WIRE_CHARS),
});
export type WireLive = z.infer<typeof wireLiveSchema>;

/** What an executor says of itself in its reports (issue 17: the executors page's slots, host, start). */
export const executorSelfSchema = z.object({
  host: z.string().min(1).max(255),
  slots: z.number().int().min(0).max(MAX_REPORT_TASKS),
  started: z.string().max(64),
});

const cursor = z.string().min(1).max(MAX_CURSOR_LENGTH).regex(/^[0-9A-Fa-f]+$/, 'must be a cursor an earlier events answer gave');

export const requestSchemas = {
  ping: z.object({}).passthrough(),
  add: z.object({
    task: wireTaskInputSchema,
    /**
     * Addition: the id the client wants the task to have (a fresh id from the client's clock). Adding the
     * same id twice adds one task, so a client may retry an add whose answer it lost.
     */
    id: id.optional(),
  }),
  cancel: z.object({ id }),
  search: z.object({
    id: z.union([id, z.literal('')]).nullish(),
    user: int.nullish(),
    start_time: z.string().max(64).nullish(),
    end_time: z.string().max(64).nullish(),
    old_to_new: z.boolean().nullish(),
    limit: int.nullish(),
    page: int.nullish(),
  }),
  get: z.object({ id }),
  report: z.object({
    executor: name,
    complete: z.array(z.object({ id, status, result: wireResultSchema })).max(MAX_REPORT_TASKS),
    executing: z.array(z.object({ id, status })).max(MAX_REPORT_TASKS),
    vacant: z.number().int().min(0).max(MAX_REPORT_TASKS),
    /**
     * Addition: the random key the executor process registered under executor/service/<name>; a report
     * carrying another key comes from a second process using the same name, and is refused.
     */
    key: z.string().min(1).max(MAX_NAME_LENGTH).optional(),
    /**
     * Addition: set on the first report of a new executor process. Whatever its name held before is
     * lost (the process restarted), acknowledged or not: it all goes back to Retrying, counting a retry,
     * so that a task that crashes its executor cannot cycle forever.
     */
    fresh: z.boolean().optional(),
    /** Addition: tasks the executor hands back because it is stopping (Retrying, no retry counted). */
    release: z.array(id).max(MAX_REPORT_TASKS).optional(),
    /** Addition: how long to hold the call when there is nothing to say (long polling), in ms. */
    wait_ms: z.number().int().min(0).max(MAX_REPORT_WAIT_MS).optional(),
    /** Issue 17: the live state of running tasks that have run a while and changed since the last report. */
    live: z.array(wireLiveSchema).max(MAX_REPORT_TASKS).optional(),
    /** Issue 17: the executor's host, slots and start time, for the executors list. */
    self: executorSelfSchema.optional(),
  }),
  executors: z.object({}).passthrough(),
  /**
   * Addition: the task once it is done, or as it is after `timeout_ms` (long polling; 0 answers at once,
   * as `get`). A client waiting for a result asks this instead of polling `get`.
   */
  wait: z.object({ id, timeout_ms: z.number().int().min(0).max(MAX_TASK_WAIT_MS) }),
  /**
   * Issue 17: the task changes after `after` (a cursor an earlier answer gave; absent: none, only the
   * cursor of now), held up to `wait_ms` while there are none; and the live state of the running tasks in
   * `live` (task id -> the version of its record the caller has, '' for none) whose record differs.
   */
  events: z.object({
    after: cursor.optional(),
    wait_ms: z.number().int().min(0).max(MAX_EVENTS_WAIT_MS),
    live: z
      .record(id, z.string().max(MAX_CURSOR_LENGTH))
      .refine((map) => Object.keys(map).length <= MAX_EVENTS_LIVE, `at most ${MAX_EVENTS_LIVE} tasks`)
      .optional(),
  }),
} as const;

export type RpcMethod = keyof typeof requestSchemas;
export type RpcRequest<M extends RpcMethod> = z.input<(typeof requestSchemas)[M]>;

/** A task's brief on the wire: the brief itself (no binary field to encode). */
export type WireBrief = TaskBrief;

interface Answer {
  result: ReturnCode;
  message?: string;
}

export interface RpcResponses {
  ping: Answer;
  add: Answer & { id: string | null };
  cancel: Answer;
  search: Answer & { pages: number; tasks: WireBrief[] };
  get: Answer & { task: WireTask | null };
  wait: Answer & { task: WireTask | null };
  report: Answer & { cancel: string[]; assign: WireTask[] };
  executors: Answer & { executors: ExecutorInfo[] };
  events: Answer & {
    /** Where the next call goes on from (`after`); '' while the judicator cannot follow the changes yet. */
    cursor: string;
    /** The changes since `after` cannot be told (too old for this judicator): re-read what you show. */
    reset: boolean;
    changes: TaskChange[];
    /** Live records of the followed tasks, with the version to send next time. */
    live: (WireLive & { version: string })[];
  };
}
export type RpcResponse<M extends RpcMethod> = RpcResponses[M];
