// The judicator RPC contract (HTTP/JSON): `POST /rpc/<method>` with a JSON body, answered with JSON that
// always carries `result` (a ReturnCode) and, when it is not OK, `message` saying why. Binary fields travel
// as base64. The methods are the original's (ping, add, cancel, search, get, report, executors), and
// `wait` (addition). A judicator answers a method it does not know with HTTP 404, INVALID_INPUT and
// UNKNOWN_METHOD's message, so a newer client can tell an older judicator from a refused input.
// Requests are validated with these schemas on the judicator; clients use the inferred types.
import { z } from 'zod';
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
import type { ExecutorInfo, ReturnCode, TaskBrief } from '../task/types';

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
  retries: number;
  result: WireResult | null;
}

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
  }),
  executors: z.object({}).passthrough(),
  /**
   * Addition: the task once it is done, or as it is after `timeout_ms` (long polling; 0 answers at once,
   * as `get`). A client waiting for a result asks this instead of polling `get`.
   */
  wait: z.object({ id, timeout_ms: z.number().int().min(0).max(MAX_TASK_WAIT_MS) }),
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
}
export type RpcResponse<M extends RpcMethod> = RpcResponses[M];
