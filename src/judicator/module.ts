// The judicator's main module as the supervisor sees it: flags, config/main.json and its schema.
import { z } from 'zod';
import { logSchema, renderLog } from '../boot/config-files';
import { PORT, checkNodeName, hostnameDefault, resolveAddress, resolveNodeName, type FlagSpec } from '../boot/flags';
import type { ModuleDefinition } from '../boot/module-definition';
import { localClientUrl } from '../cluster/etcd-module';
import { DEFAULT_TASK_MAX_SIZE, MAX_TASK_MAX_SIZE, MIN_TASK_MAX_SIZE } from '../task/limits';

const port = z.union([z.number().int().min(1).max(65535), z.string().regex(/^\d+$/).transform(Number)]);

export const judicatorConfigSchema = z.object({
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'letters, digits, "_", "." and "-" only'),
  listen: z.object({ address: z.string().min(1), port }),
  advertise: z.object({ address: z.string().min(1), port }),
  etcd: z.object({ endpoints: z.array(z.string().min(1)).min(1), prefix: z.string().min(1) }),
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
  cluster_token: z.string().min(1).nullable(),
  store: z.enum(['auto', 'etcd', 'mongodb']),
  log: logSchema,
});
export type JudicatorConfig = z.infer<typeof judicatorConfigSchema>;

export const judicatorMainFlags: FlagSpec[] = [
  { name: 'main-name', type: 'string', default: hostnameDefault, defaultText: 'the hostname', check: checkNodeName, description: "this node's name (ENV: read $NAME)", placeholder: 'name' },
  { name: 'main-listen-address', type: 'string', default: '0.0.0.0', description: 'address the judicator RPC listens on', placeholder: 'address' },
  { name: 'main-listen-port', ...PORT, default: 4000, description: 'port the judicator RPC listens on (also the advertised one unless given)' },
  { name: 'main-advertise-address', type: 'string', default: 'localhost', description: 'address executors and gateways use to reach this judicator', placeholder: 'address' },
  { name: 'main-advertise-port', ...PORT, description: 'advertised RPC port', defaultText: 'the listen port' },
  { name: 'main-register-ttl', type: 'int', min: 2, max: 3600, default: 10, description: 'seconds the registration outlives a judicator that died' },
  { name: 'main-lead-interval', type: 'number', min: 0.1, max: 3600, default: 5, description: "seconds between rounds of the leader's duties" },
  { name: 'task-max-size', type: 'int', min: MIN_TASK_MAX_SIZE, max: MAX_TASK_MAX_SIZE, default: DEFAULT_TASK_MAX_SIZE, description: "largest stored task (sources, data, input, commands, outputs, compressed), bytes" },
  { name: 'task-max-retries', type: 'int', min: 0, max: 1000, default: 3, description: 'times a task may go back to Retrying before it ends as Unknown error' },
  { name: 'task-expiration', type: 'number', min: 1, default: 30, description: 'seconds without a report of a running task before it goes back to Retrying' },
  { name: 'task-retention', type: 'number', min: 0, default: 7 * 24 * 3600, description: 'seconds finished tasks are kept (0: forever)' },
  { name: 'etcd-member-gc-after', type: 'number', min: 1, default: 120, description: 'seconds before the leader removes an etcd member that died without leaving' },
  { name: 'cluster-token', type: 'string', env: 'KV2_CLUSTER_TOKEN', description: 'shared secret every RPC call must carry (executors, gateways, CLI)', placeholder: 'token' },
  { name: 'store', type: 'string', default: 'auto', choices: ['auto', 'etcd', 'mongodb'], description: 'task store of a new cluster (auto: mongodb when a mongod is available, else etcd)' },
];

export const judicatorMainModule: ModuleDefinition<JudicatorConfig> = {
  name: 'main',
  role: 'judicator',
  flags: judicatorMainFlags,
  schema: judicatorConfigSchema,
  render({ flags }) {
    const listenPort = Number(flags['main-listen-port']);
    return {
      name: resolveNodeName(String(flags['main-name'])),
      listen: { address: resolveAddress(String(flags['main-listen-address'])), port: listenPort },
      advertise: {
        address: resolveAddress(String(flags['main-advertise-address'])),
        port: flags['main-advertise-port'] === undefined ? listenPort : Number(flags['main-advertise-port']),
      },
      etcd: {
        endpoints: [
          localClientUrl({
            listen: {
              address: resolveAddress(String(flags['etcd-listen-address'])),
              peer_port: Number(flags['etcd-listen-peer-port']),
              client_port: Number(flags['etcd-listen-client-port']),
            },
          }),
        ],
        prefix: String(flags['etcd-prefix']),
      },
      register: { ttl: Number(flags['main-register-ttl']) },
      lead: { interval: Number(flags['main-lead-interval']), ttl: 10 },
      task: {
        max_size: Number(flags['task-max-size']),
        max_retries: Number(flags['task-max-retries']),
        expiration: Number(flags['task-expiration']),
        retention: Number(flags['task-retention']),
      },
      executor: { expiration: Math.max(60, 2 * Number(flags['task-expiration'])) },
      etcd_member_gc_after: Number(flags['etcd-member-gc-after']),
      rpc: { max_wait_ms: 60_000, max_search_results: 10_000 },
      quorum_check_interval: 1,
      cluster_token: flags['cluster-token'] ? String(flags['cluster-token']) : null,
      store: String(flags['store']) as 'auto' | 'etcd' | 'mongodb',
      log: renderLog('main', flags),
    };
  },
  load: () => import('./main').then((m) => m.runJudicator),
};
