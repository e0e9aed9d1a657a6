// The executor's main module as the supervisor sees it: flags (the original's names where it had them),
// config/main.json and its schema.
import { z } from 'zod';
import { logSchema, renderLog } from '../boot/config-files';
import { checkNodeName, hostnameDefault, resolveNodeName, type FlagSpec, type FlagValues } from '../boot/flags';
import type { ModuleDefinition } from '../boot/module-definition';
import { clientEndpoints, clusterClientFlags } from '../cluster/client-flags';
import { DEFAULT_TASK_MAX_SIZE, MAX_TASK_MAX_SIZE, MIN_TASK_MAX_SIZE } from '../task/limits';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/** Seconds a running task's status change must last before it is reported on its own (results: at once). */
const DEFAULT_STATUS_DELAY = 0.1;

/** A limit: seconds of CPU or bytes or processes; 0 means none. */
const limit = z.number().min(0);

export const executorConfigSchema = z.object({
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'letters, digits, "_", "." and "-" only').max(128),
  /** Tasks run at once (the original's `task.vacant`). */
  slots: z.number().int().min(1).max(1024),
  /** Seconds: the long-poll wait of a report with nothing to say, and so the heartbeat. */
  report_interval: z.number().positive(),
  /**
   * Seconds a running task's status change (Compiling, Running) must last before it is reported on its
   * own; results are reported at once. A task shorter than this costs one report: its result.
   */
  status_delay: z.number().min(0).max(60).default(DEFAULT_STATUS_DELAY),
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
  etcd: z.object({
    endpoints: z.array(z.string().min(1)).min(1),
    prefix: z.string().min(1),
    /** Seconds between refreshes of the etcd endpoint list from the member list. */
    refresh_interval: z.number().positive(),
  }),
  /** Sent with every RPC call when the cluster has a token. */
  cluster_token: z.string().min(1).nullable(),
  register: z.object({
    /** Seconds executor/service/<name> outlives an executor that died without a word. */
    ttl: z.number().int().min(2),
  }),
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
  log: logSchema,
});
export type ExecutorConfig = z.infer<typeof executorConfigSchema>;

export const executorMainFlags: FlagSpec[] = [
  { name: 'main-name', type: 'string', default: hostnameDefault, defaultText: 'the hostname', check: checkNodeName, description: "this node's name (ENV: read $NAME)", placeholder: 'name' },
  { name: 'main-task-vacant', type: 'int', min: 1, max: 1024, default: 3, description: 'tasks this executor runs at once (its slots)' },
  { name: 'main-report-interval', type: 'number', min: 0.1, max: 60, default: 5, description: 'seconds a report waits for work when there is nothing to say (long poll), and so the heartbeat' },
  { name: 'main-report-status-delay', type: 'number', min: 0, max: 60, default: DEFAULT_STATUS_DELAY, description: "seconds a running task's status change must last before it is reported on its own (results are reported at once)" },
  { name: 'main-task-user-group', type: 'string', description: 'user:group tasks run as when the executor runs as root', placeholder: 'user:group' },
  { name: 'main-task-output-limit', type: 'int', min: 1, default: MiB, description: 'bytes kept of each step\'s stdout and stderr; beyond it the step is stopped' },
  { name: 'main-task-max-unpacked-size', type: 'int', min: 1, default: 256 * MiB, description: "bytes a task's zips may unpack to" },
  { name: 'main-task-max-files', type: 'int', min: 1, default: 10_000, description: "files and directories a task's zips may hold" },
  ...clusterClientFlags,
  { name: 'task-max-size', type: 'int', min: MIN_TASK_MAX_SIZE, max: MAX_TASK_MAX_SIZE, default: DEFAULT_TASK_MAX_SIZE, description: 'largest stored task (sources, data, input, commands, outputs, compressed), bytes' },
  { name: 'drain-timeout', type: 'number', min: 0, default: 30, description: 'seconds running tasks get to finish after SIGTERM before they are handed back' },
  { name: 'main-task-sandbox', type: 'string', default: 'auto', choices: ['auto', 'none', 'bwrap'], description: 'run each step in a bubblewrap sandbox (auto: where bwrap works)' },
  { name: 'main-task-network', type: 'boolean', description: 'let tasks that ask for it use the network (sandboxed tasks have none otherwise)' },
  { name: 'main-task-cpu-time', type: 'number', min: 0, default: 0, description: 'CPU seconds per step when the task does not ask (0: none)' },
  { name: 'main-task-memory', type: 'int', min: 0, default: 2 * GiB, description: 'bytes of memory per step when the task does not ask (0: none)' },
  { name: 'main-task-processes', type: 'int', min: 0, default: 512, description: 'processes per step when the task does not ask (0: none)' },
  { name: 'main-task-file-size', type: 'int', min: 0, default: GiB, description: 'largest file a step may write, bytes, when the task does not ask (0: none)' },
  { name: 'main-task-max-cpu-time', type: 'number', min: 0, default: 0, description: 'most CPU seconds a task may ask for (0: no cap)' },
  { name: 'main-task-max-memory', type: 'int', min: 0, default: 8 * GiB, description: 'most memory a task may ask for, bytes (0: no cap)' },
  { name: 'main-task-max-processes', type: 'int', min: 0, default: 4096, description: 'most processes a task may ask for (0: no cap)' },
  { name: 'main-task-max-file-size', type: 'int', min: 0, default: 4 * GiB, description: 'largest file size a task may ask for, bytes (0: no cap)' },
  { name: 'main-task-max-output', type: 'int', min: 0, default: 8 * MiB, description: 'most output per stream a task may ask for, bytes (0: no cap)' },
];

/** The judicators' etcd: the local judicator's in `kv2 standalone`, the endpoints flag otherwise. */
function optionalString(flags: FlagValues, name: string): string | null {
  const value = flags[name];
  return value === undefined || value === '' ? null : String(value);
}

export const executorMainModule: ModuleDefinition<ExecutorConfig> = {
  name: 'main',
  role: 'executor',
  flags: executorMainFlags,
  schema: executorConfigSchema,
  render(context) {
    const { flags } = context;
    return {
      name: resolveNodeName(String(flags['main-name'])),
      slots: Number(flags['main-task-vacant']),
      report_interval: Number(flags['main-report-interval']),
      status_delay: Number(flags['main-report-status-delay'] ?? DEFAULT_STATUS_DELAY),
      data_dir: 'data/main',
      task: {
        user_group: optionalString(flags, 'main-task-user-group'),
        output_limit: Number(flags['main-task-output-limit']),
        max_unpacked_bytes: Number(flags['main-task-max-unpacked-size']),
        max_files: Number(flags['main-task-max-files']),
        max_size: Number(flags['task-max-size'] ?? DEFAULT_TASK_MAX_SIZE),
      },
      etcd: { endpoints: clientEndpoints(context, 'executor'), prefix: String(flags['etcd-prefix']), refresh_interval: 10 },
      cluster_token: optionalString(flags, 'cluster-token'),
      register: { ttl: 10 },
      rpc: { timeout: 10, retry_initial: 0.5, retry_max: 5, final_report_timeout: 5 },
      drain_timeout: Number(flags['drain-timeout']),
      sandbox: String(flags['main-task-sandbox'] ?? 'auto') as 'auto' | 'none' | 'bwrap',
      allow_network: Boolean(flags['main-task-network']),
      limits: {
        defaults: {
          cpu_time: Number(flags['main-task-cpu-time'] ?? 0),
          memory: Number(flags['main-task-memory'] ?? 0),
          processes: Number(flags['main-task-processes'] ?? 0),
          file_size: Number(flags['main-task-file-size'] ?? 0),
        },
        maxima: {
          cpu_time: Number(flags['main-task-max-cpu-time'] ?? 0),
          memory: Number(flags['main-task-max-memory'] ?? 0),
          processes: Number(flags['main-task-max-processes'] ?? 0),
          file_size: Number(flags['main-task-max-file-size'] ?? 0),
          output: Number(flags['main-task-max-output'] ?? 0),
        },
      },
      log: renderLog('main', flags),
    };
  },
  // A draining executor (SIGTERM) needs its drain timeout, and a moment to hand back what is left.
  stopGraceSeconds: (config) => config.drain_timeout + 10,
  load: () => import('./main').then((m) => m.runExecutor),
};
