// The judicator's main module as the command line sees it: its flags and how they render config/main.json
// (the config itself is the judicator's: judicator/config.ts), including what it needs of this node's
// mongod, so that the judicator reads no other module's config.
import path from 'node:path';
import { DEFAULT_CALLBACK_TIMINGS, judicatorConfigSchema, type JudicatorConfig } from '../../judicator/config';
import { replicaSetUri } from '../../mongodb/config';
import { PORT, checkNodeName, hostnameDefault, optionalText, resolveAddress, resolveNodeName, type FlagSpec } from '../flags';
import { defineModule, type RenderContext } from '../module-definition';
import { checkAllowEntry } from '../../task/callback-allow';
import { DEFAULT_TASK_MAX_SIZE, MAX_TASK_MAX_SIZE, MIN_TASK_MAX_SIZE } from '../../task/limits';
import { localEtcdEndpoint } from './etcd';
import { mongodbModule } from './mongodb';

/**
 * Issue 17: the hosts a task's callback_url may name. The gateway refuses others at submit, the judicator
 * that delivers checks again (and what the name resolves to): set it alike on both.
 */
export const taskCallbackAllowFlag: FlagSpec = {
  name: 'task-callback-allow',
  type: 'strings',
  check: (value) => (value as string[]).map(checkAllowEntry).find(Boolean),
  description: 'hosts task callbacks may go to: names, *.domain, IP addresses, CIDR blocks, or * (comma-separated or repeated; default: none). Loopback and link-local addresses need an IP or CIDR entry',
  placeholder: 'hosts',
};

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
  { name: 'cluster-token', type: 'string', secret: true, env: 'KV2_CLUSTER_TOKEN', description: 'shared secret every RPC call must carry (executors, gateways, CLI)', placeholder: 'token' },
  taskCallbackAllowFlag,
  { name: 'task-callback-secret-file', type: 'string', description: 'file holding the secret task callbacks are signed with (X-Kv2-Signature: sha256=<HMAC of the body>); without it callbacks are sent unsigned', placeholder: 'file' },
  { name: 'store', type: 'string', default: 'auto', choices: ['auto', 'etcd', 'mongodb'], description: 'task store of a new cluster (auto: mongodb when a mongod is available, else etcd)' },
];

export const judicatorMainModule = defineModule<JudicatorConfig>({
  name: 'main',
  role: 'judicator',
  flags: judicatorMainFlags,
  schema: judicatorConfigSchema,
  render(context) {
    const { flags } = context;
    const listenPort = Number(flags['main-listen-port']);
    const secretFile = flags['task-callback-secret-file'];
    return {
      name: resolveNodeName(String(flags['main-name'])),
      listen: { address: resolveAddress(String(flags['main-listen-address'])), port: listenPort },
      advertise: {
        address: resolveAddress(String(flags['main-advertise-address'])),
        port: flags['main-advertise-port'] === undefined ? listenPort : Number(flags['main-advertise-port']),
      },
      etcd: {
        endpoints: [localEtcdEndpoint(flags)],
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
      cluster_token: optionalText(flags['cluster-token']),
      store: String(flags['store']) as JudicatorConfig['store'],
      callbacks: {
        allow: Array.isArray(flags['task-callback-allow']) ? flags['task-callback-allow'] : [],
        // Resolved against the directory kv2 was started from: the module runs in its role dir.
        secret_file: typeof secretFile === 'string' && secretFile ? path.resolve(secretFile) : null,
        ...DEFAULT_CALLBACK_TIMINGS,
      },
      mongodb: localMongod(context),
    };
  },
  load: () => import('../../judicator/judicator').then((m) => m.runJudicator),
});

/** This node's mongod as the task store needs it; null where the mongodb module does not run. */
function localMongod(context: RenderContext): JudicatorConfig['mongodb'] {
  if (context.running && !context.running.has(mongodbModule.name)) return null;
  const mongodb = mongodbModule.render(context);
  return { uri: replicaSetUri(mongodb), exe: mongodb.exe, version: mongodb.version, download: mongodb.download };
}
