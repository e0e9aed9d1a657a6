// What the executor's main module runs with (config/main.json, less the log section boot adds): its
// slots, timings, task limits and sandbox, where the judicators are, and its cluster identity. Rendered from the flags by
// boot/modules/executor.ts; validated by this schema every time the module starts.
import { DEFAULT_LIVE_REPORT_EVERY_MS } from '../task/events';
import { MIN_TASK_MAX_SIZE } from '../task/limits';
import { z } from 'zod';
import { nodeNameField } from '../common/config-fields';

/** Seconds a running task's status change must last before it is reported on its own (results: at once). */
export const DEFAULT_STATUS_DELAY = 0.1;

/** A limit: seconds of CPU or bytes or processes; 0 means none. */
const limit = z.number().min(0);

export const executorConfigSchema = z.object({
  name: nodeNameField.max(128),
  /** Tasks run at once (the original's `task.vacant`). */
  slots: z.number().int().min(1).max(1024),
  /** Seconds: the long-poll wait of a report with nothing to say, and so the heartbeat. */
  report_interval: z.number().positive(),
  /**
   * Seconds a running task's status change (Compiling, Running) must last before it is reported on its
   * own; results are reported at once. A task shorter than this costs one report: its result.
   */
  status_delay: z.number().min(0).max(60).default(DEFAULT_STATUS_DELAY),
  /**
   * Seconds a running task must have run before its live state (test, output so far) goes in the reports,
   * and then the most often it does, when it changed; 0: never (the event streams show no live output).
   */
  live_interval: z.number().min(0).max(60).default(DEFAULT_LIVE_REPORT_EVERY_MS / 1000),
  /** Where task dirs are made (relative to the role dir); wiped at every start. */
  data_dir: z.string().min(1),
  task: z.object({
    /** `user:group` tasks run as when the executor runs as root; null = the executor's choice. */
    user_group: z.string().regex(/^[^:\s]+(:[^:\s]+)?$/, 'must be user or user:group').nullable(),
    /** Bytes kept of each step's stdout and of its stderr; beyond it the step is stopped. */
    output_limit: z.number().int().min(1),
    /** Bytes a task's zips may unpack to, together. */
    max_unpacked_bytes: z.number().int().min(1),
    /** Entries a task's zips may hold, together. */
    max_files: z.number().int().min(1),
    /** The cluster's task size limit (input + result); a result past it is replaced, as the original did. */
    max_size: z.number().int().min(MIN_TASK_MAX_SIZE),
  }),
  judicators: z.object({
    /** Judicator RPC addresses to start from (host[:port]; a DNS name stands for all its addresses). */
    join: z.array(z.string().min(1)).min(1),
    /** Seconds between refreshes of the judicator list (RPC `judicators`). */
    refresh_interval: z.number().positive(),
  }),
  /** The executor's cluster identity (CA, its certificate and key), relative to the role dir. */
  identity_dir: z.string().min(1),
  rpc: z.object({
    /** Seconds one report may take beyond its long-poll wait. */
    timeout: z.number().positive(),
    /** Seconds before the first retry of a failed report; doubles up to retry_max. */
    retry_initial: z.number().positive(),
    retry_max: z.number().positive(),
    /** Seconds the last report (handing tasks back on shutdown) may keep trying. */
    final_report_timeout: z.number().positive(),
  }),
  /** Seconds running tasks get to finish after SIGTERM before they are stopped and handed back. */
  drain_timeout: z.number().min(0),
  /** bwrap: each step in its own namespaces; auto: bwrap where it works, else none (with a warning). */
  sandbox: z.enum(['auto', 'none', 'bwrap']),
  /** Tasks that ask for the network get it; otherwise a sandboxed task has none. */
  allow_network: z.boolean(),
  limits: z.object({
    /** Per step when the task does not ask (0: none); the output default is task.output_limit. */
    defaults: z.object({ cpu_time: limit, memory: limit, processes: limit, file_size: limit }),
    /** The most a task may ask for (0: no cap). */
    maxima: z.object({ cpu_time: limit, memory: limit, processes: limit, file_size: limit, output: limit }),
  }),
});
export type ExecutorConfig = z.infer<typeof executorConfigSchema>;
