// The gateway's server module as the supervisor sees it: its flags (the original's uwsgi names kept as
// aliases), the config/server.json they render to, and that file's schema.
import path from 'node:path';
import { z } from 'zod';
import { logSchema, renderLog } from '../boot/config-files';
import { PORT, checkNodeName, hostnameDefault, resolveAddress, resolveNodeName, type FlagSpec } from '../boot/flags';
import type { ModuleDefinition } from '../boot/module-definition';
import { clientEndpoints, clusterClientFlags } from '../cluster/client-flags';
import { DEFAULT_TASK_MAX_SIZE, MIN_TASK_MAX_SIZE } from '../task/limits';
import { DEFAULT_WAIT_MAX_HELD, DEFAULT_WAIT_MAX_S } from './api/wait';

const port = z.union([z.number().int().min(1).max(65535), z.string().regex(/^\d+$/).transform(Number)]);

export const gatewayConfigSchema = z.object({
  /** Name of this gateway's `gateway/service/<name>` key. */
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'letters, digits, "_", "." and "-" only'),
  listen: z.object({ address: z.string().min(1), port }),
  /** Address others use to reach this gateway (registered in etcd). */
  advertise: z.object({ address: z.string().min(1), port }),
  etcd: z.object({
    /** Client URLs of the judicators' etcd members to bootstrap from; the list follows the cluster. */
    endpoints: z.array(z.string().min(1)).min(1),
    prefix: z.string().min(1),
    /** Milliseconds between refreshes of the etcd endpoint list from the member list. */
    refresh_ms: z.number().int().min(100),
  }),
  /** Cluster token sent to the judicators (null: the cluster has none). */
  cluster_token: z.string().min(1).nullable(),
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
  }),
  register: z.object({
    /** Seconds the gateway/service key outlives a gateway that died. */
    ttl: z.number().int().min(2),
  }),
  /** Directory of the built web UI to serve instead of the embedded one (development); null: embedded. */
  ui_dir: z.string().min(1).nullable(),
  log: logSchema,
});
export type GatewayConfig = z.infer<typeof gatewayConfigSchema>;

export const gatewayServerFlags: FlagSpec[] = [
  { name: 'server-port', aliases: ['uwsgi-port'], ...PORT, default: 7000, description: 'port the HTTP API and web UI listen on' },
  { name: 'server-host', aliases: ['uwsgi-host'], type: 'string', default: '0.0.0.0', description: 'address the HTTP API and web UI listen on (ALL, or an interface name in capitals)', placeholder: 'address' },
  { name: 'server-name', type: 'string', default: hostnameDefault, defaultText: 'the hostname', check: checkNodeName, description: "this gateway's name in etcd (ENV: read $NAME)", placeholder: 'name' },
  { name: 'server-advertise-address', type: 'string', default: 'localhost', description: 'address clients use to reach this gateway (registered in etcd)', placeholder: 'address' },
  ...clusterClientFlags,
  { name: 'server-token', type: 'strings', description: 'API token (repeatable); with any token set, every /api call needs Authorization: Bearer <token>', placeholder: 'token' },
  { name: 'server-tokens-file', type: 'string', description: 'file of API tokens, one a line (# starts a comment)', placeholder: 'file' },
];

export const gatewayServerModule: ModuleDefinition<GatewayConfig> = {
  name: 'server',
  role: 'gateway',
  flags: gatewayServerFlags,
  schema: gatewayConfigSchema,
  render({ command, flags }) {
    const listenPort = Number(flags['server-port']);
    const token = flags['cluster-token'];
    const tokensFile = flags['server-tokens-file'];
    return {
      name: resolveNodeName(String(flags['server-name'])),
      listen: { address: resolveAddress(String(flags['server-host'])), port: listenPort },
      advertise: { address: resolveAddress(String(flags['server-advertise-address'])), port: listenPort },
      etcd: { endpoints: clientEndpoints({ command, flags }, 'gateway'), prefix: String(flags['etcd-prefix']), refresh_ms: 10_000 },
      cluster_token: typeof token === 'string' && token ? token : null,
      tokens: Array.isArray(flags['server-token']) ? flags['server-token'] : [],
      // Resolved against the directory kv2 was started from: the module runs in its role dir.
      tokens_file: typeof tokensFile === 'string' && tokensFile ? path.resolve(tokensFile) : null,
      rpc: { timeout_ms: 10_000, attempts: 3, avoid_ms: 5_000, retry_for_ms: 5_000 },
      limits: { body_bytes: 24 * 1024 * 1024, task_max_size: DEFAULT_TASK_MAX_SIZE, batch_max: 100, batch_concurrency: 8, wait_max_s: DEFAULT_WAIT_MAX_S, wait_max_held: DEFAULT_WAIT_MAX_HELD },
      register: { ttl: 10 },
      ui_dir: null,
      log: renderLog('server', flags),
    };
  },
  load: () => import('./main').then((m) => m.runGateway),
};
