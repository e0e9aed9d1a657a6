// What the gateway's server module runs with (config/server.json, less the log section boot adds): its
// addresses, where the judicators are, its cluster identity, its API tokens, limits and RPC timings. Rendered from the flags by
// boot/modules/gateway.ts; validated by this schema every time the module starts.
import { MIN_TASK_MAX_SIZE } from '../task/limits';
import { callbackAllowSchema } from '../task/schema';
import { z } from 'zod';
import { nodeAddressFields } from '../common/config-fields';

export const gatewayConfigSchema = z.object({
  /** This gateway's name, where it listens, and the address clients use to reach it. */
  ...nodeAddressFields,
  judicators: z.object({
    /** Judicator RPC addresses to start from (host[:port]); the list follows the cluster. */
    join: z.array(z.string().min(1)).min(1),
    /** Milliseconds between refreshes of the judicator list (RPC `judicators`). */
    refresh_ms: z.number().int().min(100),
  }),
  /** The gateway's cluster identity (CA, its certificate and key), relative to the role dir. */
  identity_dir: z.string().min(1),
  /** API tokens: when any is set, every /api call needs `Authorization: Bearer <token>`. */
  tokens: z.array(z.string().min(1)),
  /** A file with more API tokens, one a line ('#' starts a comment); read when the module starts. */
  tokens_file: z.string().min(1).nullable(),
  rpc: z.object({
    /** Milliseconds one judicator gets to answer a call before the next one is tried. */
    timeout_ms: z.number().int().min(100),
    /** Judicators tried per call. */
    attempts: z.number().int().min(1).max(20),
    /** Milliseconds a judicator that failed is tried last. */
    avoid_ms: z.number().int().min(0),
    /** Milliseconds a call keeps retrying while no judicator can answer (a leader change); 0: one round. */
    retry_for_ms: z.number().int().min(0),
  }),
  limits: z.object({
    /** Largest request body (JSON or urlencoded; also each uploaded file), in bytes. */
    body_bytes: z.number().int().min(1024),
    /** Largest task (compressed commands, input, standard, zips), in bytes: the original's 15.5 MiB. */
    task_max_size: z.number().int().min(MIN_TASK_MAX_SIZE),
    /** Most tasks in one POST /api/task/batch. */
    batch_max: z.number().int().min(1).max(10_000),
    /** Adds of one batch sent to the judicators at once. */
    batch_concurrency: z.number().int().min(1).max(100),
    /** Longest GET /api/task?wait= a request may ask for, seconds (more is cut to it); default 60. */
    wait_max_s: z.number().min(1).max(600).optional(),
    /** Waiting requests answered by one held `wait` call each, at once; more are polled (default 48). */
    wait_max_held: z.number().int().min(0).max(60).optional(),
    /** GET /api/task/events streams open at once; more are refused with 503 (default 256). */
    events_max_streams: z.number().int().min(0).max(100_000).optional(),
    /** Bytes one event stream may have waiting to be sent; a client that slow is dropped (default 1 MiB). */
    events_buffer_bytes: z.number().int().min(4096).optional(),
  }),
  /** Hosts a task's callback_url may name (--task-callback-allow; issue 17); empty: callbacks are refused. */
  callback_allow: callbackAllowSchema.default([]),
  /** Directory of the built web UI to serve instead of the embedded one (development); null: embedded. */
  ui_dir: z.string().min(1).nullable(),
});
export type GatewayConfig = z.infer<typeof gatewayConfigSchema>;
