// The judicator RPC contract (HTTPS/JSON with client certificates): `POST /rpc/<method>` with a JSON body,
// answered with JSON that always carries `result` (a ReturnCode) and, when it is not OK, `message` saying
// why. Binary fields travel as base64. The methods are the original's (ping, add, cancel, search, get,
// report, executors), and additions: `wait`, `judicators` (where the judicators are: executors and
// gateways follow the cluster with it), `join_token_create` and `revoke` (operators). The certificate's
// role decides what its holder may call (METHOD_ROLES). A judicator answers a method it does not know with
// HTTP 404, INVALID_INPUT and UNKNOWN_METHOD's message, so a newer client can tell an older judicator from
// a refused input. Requests are validated with these schemas on the judicator; clients use the inferred types.
import { z } from 'zod';
import { ROLES, type Role } from '../pki/identity';
import { countSchema, stepLimitsSchema, stepReportSchema, taskIdSchema, taskStatusSchema } from '../task/schema';
import type { ExecutorInfo, ReturnCode, TaskBrief } from '../task/types';

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
/** Most fields an executor's `info` may carry, and the longest text of one. */
export const MAX_INFO_FIELDS = 32;
export const MAX_INFO_TEXT = 256;
/** The message of a judicator's answer to a method it does not know (judicators before `wait` too). */
export const UNKNOWN_METHOD = (method: string) => `no RPC method "${method}"`;
const int = countSchema;
const id = taskIdSchema;
const status = taskStatusSchema;
/** base64 text; an empty string is empty bytes. */
const base64 = z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/, 'must be base64');
const name = z.string().min(1).max(MAX_NAME_LENGTH).regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'letters, digits, "_", "." and "-" only');

export const wireTaskInputSchema = z
  .object({
    user: int,
    compile: z.object({ source: base64, command: base64, timeout: int, limits: stepLimitsSchema.optional() }).strict(),
    execute: z
      .object({ input: base64, data: base64, command: base64, timeout: int, standard: base64, limits: stepLimitsSchema.optional() })
      .strict(),
    network: z.boolean().optional(),
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

/**
 * What an executor says of itself in every report (what its etcd registration said before executors
 * stopped talking to etcd): its host name, slots and start time, and any further plain fields (the
 * sandbox it runs, say), kept in its executor record and shown by `executors`.
 */
export const executorInfoSchema = z
  .object({
    hostname: z.string().min(1).max(MAX_INFO_TEXT),
    slots: z.number().int().min(0).max(100_000),
    started: z.string().min(1).max(64),
  })
  .catchall(z.union([z.string().max(MAX_INFO_TEXT), z.number(), z.boolean(), z.null()]))
  .refine((info) => Object.keys(info).length <= MAX_INFO_FIELDS, `at most ${MAX_INFO_FIELDS} fields`);
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
    /** Addition: the executor's registration (host name, slots, start time, ...). */
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
  }),
  executors: z.object({}).passthrough(),
  /**
   * Addition: the task once it is done, or as it is after `timeout_ms` (long polling; 0 answers at once,
   * as `get`). A client waiting for a result asks this instead of polling `get`.
   */
  wait: z.object({ id, timeout_ms: z.number().int().min(0).max(MAX_TASK_WAIT_MS) }),
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
  judicators: Answer & { judicators: JudicatorEntry[] };
  join_token_create: Answer & { token: string | null; id?: string; roles?: Role[]; expires_at?: string };
  revoke: Answer & { serials: string[] };
}
export type RpcResponse<M extends RpcMethod> = RpcResponses[M];
