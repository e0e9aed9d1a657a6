// What the judicator's main module runs with (config/main.json, less the log section boot adds): its
// addresses, its etcd, its timings and limits, and what it needs to know of this node's mongod. Rendered
// from the flags by boot/modules/judicator.ts; validated by this schema every time the module starts.
import { MIN_TASK_MAX_SIZE } from '../task/limits';
import { callbackAllowSchema } from '../task/schema';
import { z } from 'zod';
import { nodeAddressFields } from '../common/config-fields';


/**
 * Defaults of the `callbacks` section's timings (issue 17): one delivery's deadline, the first retry's
 * wait and its bound (it doubles), the attempts before a callback is given up, the outbox poll, the
 * deliveries at once.
 */
export const DEFAULT_CALLBACK_TIMINGS = {
  timeout_ms: 10_000,
  retry_initial_ms: 1_000,
  retry_max_ms: 5 * 60_000,
  max_attempts: 10,
  poll_ms: 1_000,
  concurrency: 8,
} as const;

export const judicatorConfigSchema = z.object({
  /** This judicator's name, where its RPC listens, and the address executors and gateways reach it at. */
  ...nodeAddressFields,
  etcd: z.object({
    endpoints: z.array(z.string().min(1)).min(1),
    prefix: z.string().min(1),
    /** This node's etcd member as the others reach it (registered, so that judicators joining find it). */
    advertise_client_url: z.string().min(1),
  }),
  pki: z.object({
    /** The node's cluster identity (CA and its key, its certificate, the CRL), relative to the role dir. */
    identity_dir: z.string().min(1),
    /** Addresses and DNS names this judicator's certificate carries (its renewals keep them). */
    hosts: z.array(z.string().min(1)),
    /** Seconds the certificates this judicator issues (joins, renewals, its own) are valid. */
    cert_lifetime: z.number().int().min(10),
    /** A join token kept valid in this file (0600) for nodes started on this machine; relative to the role dir. */
    join_token_file: z.string().min(1),
    /** A join token (made with this cluster's CA) the cluster accepts from executors and gateways while this judicator runs; null: none. */
    accept_join_token_file: z.string().min(1).nullable(),
  }),
  register: z.object({
    /** Seconds the judicator/service key outlives a judicator that dies without a word. */
    ttl: z.number().int().min(2),
  }),
  lead: z.object({
    /** Seconds between rounds of leader duties. */
    interval: z.number().positive(),
    /** Seconds the leader's election key outlives a leader that dies without a word. */
    ttl: z.number().int().min(2),
  }),
  task: z.object({
    /** Largest stored task (input and result), bytes. */
    max_size: z.number().int().min(MIN_TASK_MAX_SIZE),
    /** Times a task may go back to Retrying before it ends as Unknown error. */
    max_retries: z.number().int().min(0),
    /** Seconds without a report of a held task before the leader sends it back to Retrying. */
    expiration: z.number().positive(),
    /** Seconds finished tasks are kept; 0 keeps them forever. */
    retention: z.number().min(0),
  }),
  executor: z.object({
    /** Seconds without a report after which an executor is gone: the leader takes its tasks back. */
    ttl: z.number().positive(),
    /** Seconds after which an executor that is gone is forgotten. */
    expiration: z.number().positive(),
  }),
  /** Seconds a dead etcd member is kept before the leader removes it. */
  etcd_member_gc_after: z.number().positive(),
  rpc: z.object({
    /** Longest a long-polling report is held, ms. */
    max_wait_ms: z.number().int().min(0),
    /** Most tasks a search for everything (limit 0) returns. */
    max_search_results: z.number().int().min(1),
  }),
  /** Seconds between checks that etcd (its quorum) answers; a judicator without quorum stops serving. */
  quorum_check_interval: z.number().positive(),
  store: z.enum(['auto', 'etcd', 'mongodb']),
  /** Issue 17: finished tasks' callbacks, delivered by the leader from the store's outbox. */
  callbacks: z
    .object({
      /** Hosts a callback_url may name (--task-callback-allow); empty: none. */
      allow: callbackAllowSchema,
      /** File of the HMAC secret callbacks are signed with (--task-callback-secret-file); null: unsigned. */
      secret_file: z.string().min(1).nullable(),
      /** Milliseconds one delivery may take. */
      timeout_ms: z.number().int().min(100).default(DEFAULT_CALLBACK_TIMINGS.timeout_ms),
      /** Milliseconds before the second attempt; doubles with each failure up to retry_max_ms. */
      retry_initial_ms: z.number().int().min(10).default(DEFAULT_CALLBACK_TIMINGS.retry_initial_ms),
      retry_max_ms: z.number().int().min(10).default(DEFAULT_CALLBACK_TIMINGS.retry_max_ms),
      /** Attempts before a callback is given up. */
      max_attempts: z.number().int().min(1).max(100).default(DEFAULT_CALLBACK_TIMINGS.max_attempts),
      /** Milliseconds between reads of the outbox when the change feed says nothing. */
      poll_ms: z.number().int().min(10).default(DEFAULT_CALLBACK_TIMINGS.poll_ms),
      /** Deliveries at once. */
      concurrency: z.number().int().min(1).max(100).default(DEFAULT_CALLBACK_TIMINGS.concurrency),
    })
    .default({ allow: [], secret_file: null, ...DEFAULT_CALLBACK_TIMINGS }),
  /**
   * The mongod this node's mongodb module runs, as far as the task store needs it: where the replica set
   * answers, and where a mongod binary is found (whether this judicator can run the MongoDB store at all).
   * Null when this node runs no mongodb module: the MongoDB store is then out of its reach.
   */
  mongodb: z
    .object({
      /** Connection string of the replica set, through the local member. */
      uri: z.string().min(1),
      /** The mongodb module's mongod binary; null: embedded, PATH, cache (and a download if `download`). */
      exe: z.string().min(1).nullable(),
      /** mongod version looked for in the cache and downloaded; null: mongodb-memory-server's default. */
      version: z.string().regex(/^\d+\.\d+\.\d+$/).nullable(),
      /** May a mongod be downloaded when none is found? */
      download: z.boolean(),
    })
    .nullable(),
});
export type JudicatorConfig = z.infer<typeof judicatorConfigSchema>;
