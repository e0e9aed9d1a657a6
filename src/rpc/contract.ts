// The judicator RPC contract (HTTPS/JSON with client certificates): `POST /rpc/<method>` with a JSON body,
// answered with JSON that always carries `result` (a ReturnCode) and, when it is not OK, `message` saying
// why. Binary fields travel as base64. The methods are the original's (ping, add, cancel, search, get,
// report, executors), and additions: `wait`, `events` (task changes and live state, long-polled with a
// cursor), `judicators` (where the judicators are: executors and gateways follow the cluster with it),
// `join_token_create` and `revoke` (operators). The certificate's role decides what its holder may call
// (METHOD_ROLES). A judicator answers a method it does not know with HTTP 404, INVALID_INPUT and
// UNKNOWN_METHOD's message, so a newer client can tell an older judicator from a refused input. Requests
// are validated with these schemas on the judicator; clients use the inferred types.
import { z } from 'zod';
import { ROLES, type Role } from '../pki/identity';
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
/** The judicator RPC's port when an address gives none (`--join host`). */
export const DEFAULT_RPC_PORT = 4000;

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
/** The longest text of an executor's `info`. */
export const MAX_INFO_TEXT = 256;
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

const cursor = z.string().min(1).max(MAX_CURSOR_LENGTH).regex(/^[0-9A-Fa-f]+$/, 'must be a cursor an earlier events answer gave');

/** Most languages an executor's `info` lists, and the longest name or version (an executor's own words). */
const MAX_LANGUAGES = 64;
const MAX_LANGUAGE_TEXT = 64;
/** Longest text of the sandbox's description (an executor's own words), and most limits it lists. */
const MAX_SANDBOX_TEXT = 1024;
const MAX_SANDBOX_LIMITS = 16;

/**
 * What an executor says of itself in every report (what its etcd registration said before executors
 * stopped talking to etcd): its host name, slots and start time, the languages whose toolchains it found
 * and how it confines tasks; kept in its executor record and shown by `executors`.
 */
export const executorInfoSchema = z.object({
  hostname: z.string().min(1).max(MAX_INFO_TEXT),
  slots: z.number().int().min(0).max(100_000),
  started: z.string().min(1).max(64),
  languages: z
    .array(z.object({ name: z.string().min(1).max(MAX_LANGUAGE_TEXT), version: z.string().min(1).max(MAX_LANGUAGE_TEXT) }))
    .max(MAX_LANGUAGES)
    .optional()
    // A list the judicators cannot take (a toolchain's odd version text) is left out, never the report.
    .catch(undefined),
  sandbox: z
    .object({
      kind: z.enum(['bwrap', 'none']),
      how: z.string().max(MAX_SANDBOX_TEXT),
      network: z.string().max(MAX_SANDBOX_TEXT),
      limits: z.record(z.string().max(64), z.string().max(MAX_SANDBOX_TEXT)).refine((limits) => Object.keys(limits).length <= MAX_SANDBOX_LIMITS, 'too many limits'),
    })
    .optional()
    // A description the judicators cannot take is left out, never the report with it.
    .catch(undefined),
});
export type ExecutorReportInfo = z.infer<typeof executorInfoSchema>;

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
     * Addition: a random key of the executor process, kept in its executor record; a report carrying
     * another key comes from a second process using the same name (the newest, `fresh`, one wins), and is
     * refused.
     */
    key: z.string().min(1).max(MAX_NAME_LENGTH).optional(),
    /** Addition: what the executor says of itself (host name, slots, start time, languages, sandbox). */
    info: executorInfoSchema.optional(),
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
  /** Addition: the judicators registered now (executors and gateways keep their list fresh with it). */
  judicators: z.object({}).passthrough(),
  /** Addition (operators): a new join token for nodes of `roles`, valid `ttl_ms`. */
  join_token_create: z.object({
    roles: z.array(z.enum(ROLES)).min(1).max(ROLES.length),
    ttl_ms: z.number().int().min(1),
    description: z.string().max(1024).optional(),
  }),
  /** Addition (operators): revokes a node's certificates (all of `role`'s of that name, or every role's). */
  revoke: z.object({ name, role: z.enum(ROLES).optional(), reason: z.string().max(1024).optional() }),
} as const;

export type RpcMethod = keyof typeof requestSchemas;

/**
 * Who may call each method, by the role in the caller's certificate. Executors only report (under the
 * name in their certificate); gateways do what the API needs; an operator's CLI (admin, a certificate made
 * from the CA key on a judicator's machine) also makes join tokens and revokes; judicators may call
 * anything (they hold the CA key). `ping` and `judicators` are for every member.
 */
export const METHOD_ROLES: Readonly<Record<RpcMethod, readonly Role[]>> = {
  ping: ['judicator', 'executor', 'gateway', 'admin'],
  judicators: ['judicator', 'executor', 'gateway', 'admin'],
  report: ['judicator', 'executor'],
  add: ['judicator', 'gateway', 'admin'],
  cancel: ['judicator', 'gateway', 'admin'],
  search: ['judicator', 'gateway', 'admin'],
  get: ['judicator', 'gateway', 'admin'],
  wait: ['judicator', 'gateway', 'admin'],
  executors: ['judicator', 'gateway', 'admin'],
  events: ['judicator', 'gateway', 'admin'],
  join_token_create: ['judicator', 'admin'],
  revoke: ['judicator', 'admin'],
};

/** A judicator as `judicators` lists it. */
export interface JudicatorEntry {
  /** Its name (`--main-name`). */
  name: string;
  /** `host:port` of its RPC. */
  address: string;
  leader: boolean;
  /** Registered now, and (for the one answering) reaching its etcd quorum. */
  healthy: boolean;
  /** Its etcd member's client URL (judicators joining the cluster use it). */
  etcd?: string;
}
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
  judicators: Answer & { judicators: JudicatorEntry[] };
  join_token_create: Answer & { token: string | null; id?: string; roles?: Role[]; expires_at?: string };
  revoke: Answer & { serials: string[] };
}
export type RpcResponse<M extends RpcMethod> = RpcResponses[M];
