// The executor's main module as the command line sees it: its flags (the original's names where it had
// them) and how they render config/main.json (the config itself is the executor's: executor/config.ts).
import { DEFAULT_STATUS_DELAY, executorConfigSchema, type ExecutorConfig } from '../../executor/config';
import { nodeNameFlag, optionalText, resolveNodeName, type FlagSpec } from '../flags';
import { defineModule } from '../module-definition';
import { bootstrapJudicators, IDENTITY_DIR, joinFlags, removedClusterTokenFlags, removedEtcdClientFlags } from '../join-flags';
import { DEFAULT_LIVE_REPORT_EVERY_MS } from '../../task/events';
import { DEFAULT_TASK_MAX_SIZE, MAX_TASK_MAX_SIZE, MIN_TASK_MAX_SIZE } from '../../task/limits';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

export const executorMainFlags: FlagSpec[] = [
  nodeNameFlag('main-name', "this node's name (ENV: read $NAME)"),
  { name: 'main-task-vacant', type: 'int', min: 1, max: 1024, default: 3, description: 'tasks this executor runs at once (its slots)' },
  { name: 'main-report-interval', type: 'number', min: 0.1, max: 60, default: 5, description: 'seconds a report waits for work when there is nothing to say (long poll), and so the heartbeat' },
  { name: 'main-report-status-delay', type: 'number', min: 0, max: 60, default: DEFAULT_STATUS_DELAY, description: "seconds a running task's status change must last before it is reported on its own (results are reported at once)" },
  { name: 'main-report-live-interval', type: 'number', min: 0, max: 60, default: DEFAULT_LIVE_REPORT_EVERY_MS / 1000, description: "seconds a running task must run before its live state (test, output so far) is reported, then the most often it is (0: never)" },
  { name: 'main-task-user-group', type: 'string', description: 'user:group tasks run as when the executor runs as root', placeholder: 'user:group' },
  { name: 'main-task-output-limit', type: 'int', min: 1, default: MiB, description: 'bytes kept of each step\'s stdout and stderr; beyond it the step is stopped' },
  { name: 'main-task-max-unpacked-size', type: 'int', min: 1, default: 256 * MiB, description: "bytes a task's zips may unpack to" },
  { name: 'main-task-max-files', type: 'int', min: 1, default: 10_000, description: "files and directories a task's zips may hold" },
  ...joinFlags,
  ...removedClusterTokenFlags,
  ...removedEtcdClientFlags('executor'),
  { name: 'task-max-size', type: 'int', min: MIN_TASK_MAX_SIZE, max: MAX_TASK_MAX_SIZE, default: DEFAULT_TASK_MAX_SIZE, description: 'largest stored task (sources, data, input, commands, outputs, compressed), bytes' },
  { name: 'drain-timeout', type: 'number', min: 0, default: 30, description: 'seconds running tasks get to finish after SIGTERM before they are handed back' },
  { name: 'main-task-sandbox', type: 'string', default: 'auto', choices: ['auto', 'none', 'bwrap'], description: 'run each step in a bubblewrap sandbox (auto, bwrap: whichever way works here, else the executor does not start; none: no sandbox, said explicitly)' },
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

export const executorMainModule = defineModule<ExecutorConfig>({
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
      live_interval: Number(flags['main-report-live-interval'] ?? DEFAULT_LIVE_REPORT_EVERY_MS / 1000),
      data_dir: 'data/main',
      task: {
        user_group: optionalText(flags['main-task-user-group']),
        output_limit: Number(flags['main-task-output-limit']),
        max_unpacked_bytes: Number(flags['main-task-max-unpacked-size']),
        max_files: Number(flags['main-task-max-files']),
        max_size: Number(flags['task-max-size'] ?? DEFAULT_TASK_MAX_SIZE),
      },
      judicators: { join: bootstrapJudicators(context, 'executor'), refresh_interval: 10 },
      identity_dir: IDENTITY_DIR,
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
    };
  },
  // A draining executor (SIGTERM) needs its drain timeout, and a moment to hand back what is left.
  stopGraceSeconds: (config) => config.drain_timeout + 10,
  load: () => import('../../executor/executor').then((m) => m.runExecutor),
});
