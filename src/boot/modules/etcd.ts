// The judicator's etcd module as the supervisor sees it: its flags (the original's names), the
// config/etcd.json they render to, and that file's schema.
import path from 'node:path';
import { z } from 'zod';
import { UsageError } from '../../common/errors';
import { logSchema, renderLog } from '../config-files';
import {
  PORT,
  checkNodeName,
  hostnameDefault,
  resolveAddress,
  resolveNodeName,
  type FlagSpec,
} from '../flags';
import type { ModuleDefinition } from '../module-definition';
import { DEFAULT_MAX_REQUEST_BYTES, DEFAULT_QUOTA_BACKEND_BYTES } from '../../etcd/server-settings';
import { DEFAULT_PREFIX } from '../../etcd/keys';

const port = z.union([z.number().int().min(1).max(65535), z.string().regex(/^\d+$/).transform(Number)]);

/**
 * How this member finds its cluster on a start with no data (a member with data restarts on it):
 * - independent: found a new one-member cluster (the judicator default);
 * - init: with `member`, a static bootstrap; without, and with data present, force a new one-member
 *   cluster from that data (the maintenance page's disaster recovery);
 * - join: join the cluster reachable at one of `client` (comma-separated client URLs); a list that names
 *   this member too lets several members start at once: the lowest URL founds the cluster;
 * - service: docker swarm, the candidates are the addresses of DNS `tasks.<service>`.
 */
export const clusterSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('independent') }),
  z.object({ type: z.literal('init'), member: z.string().min(1).optional() }),
  z.object({ type: z.literal('join'), client: z.string().min(1) }),
  z.object({ type: z.literal('service'), service: z.string().min(1), client_port: port }),
]);
export type ClusterMode = z.infer<typeof clusterSchema>;

export const etcdConfigSchema = z.object({
  /** Path of the etcd binary; null means the one embedded in kv2 (or the system's). */
  exe: z.string().min(1).nullable(),
  etcdctl: z.string().min(1).nullable(),
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'letters, digits, "_", "." and "-" only'),
  data_dir: z.string().min(1),
  data_init_dir: z.string().min(1),
  listen: z.object({ address: z.string().min(1), peer_port: port, client_port: port }),
  advertise: z.object({ address: z.string().min(1), peer_port: port, client_port: port }),
  cluster: clusterSchema,
  strict_reconfig: z.boolean(),
  max_request_bytes: z.number().int().positive(),
  quota_backend_bytes: z.number().int().positive(),
  /** Hours of key history etcd keeps before compacting. */
  compaction_retention_hours: z.number().int().min(0),
  health: z.object({
    /** Seconds between liveness checks of the running etcd. */
    interval: z.number().positive(),
    /** Consecutive failed checks before etcd is restarted. */
    failures: z.number().int().min(1),
    /** Seconds etcd gets to answer after it starts (a joining member copies the data first). */
    start_timeout: z.number().positive(),
  }),
  join: z.object({
    /** Seconds to keep trying to join (or to find a cluster) before the module gives up and restarts. */
    timeout: z.number().positive(),
    /** TTL in seconds of the join lock's lease: a joiner that dies frees the lock this fast. */
    lock_ttl: z.number().int().min(5),
  }),
  /** Seconds etcd gets to stop after SIGTERM before it is killed. */
  stop_timeout: z.number().positive(),
  prefix: z.string().min(1),
  log: logSchema,
});
export type EtcdConfig = z.infer<typeof etcdConfigSchema>;

export const etcdFlags: FlagSpec[] = [
  { name: 'etcd-exe', type: 'string', description: 'etcd binary to run instead of the one embedded in kv2', placeholder: 'path' },
  { name: 'etcd-name', type: 'string', default: hostnameDefault, defaultText: 'the hostname', check: checkNodeName, description: "this member's name (ENV: read $NAME)", placeholder: 'name' },
  { name: 'etcd-listen-address', type: 'string', default: '0.0.0.0', description: 'address etcd listens on (ALL, or an interface name in capitals)', placeholder: 'address' },
  { name: 'etcd-listen-peer-port', ...PORT, default: 2000, description: 'peer port etcd listens on (also the advertised one unless given)' },
  { name: 'etcd-listen-client-port', ...PORT, default: 2001, description: 'client port etcd listens on (also the advertised one unless given)' },
  { name: 'etcd-advertise-address', type: 'string', default: 'localhost', description: 'address other members and clients use to reach this member', placeholder: 'address' },
  { name: 'etcd-advertise-peer-port', ...PORT, description: 'advertised peer port', defaultText: 'the listen peer port' },
  { name: 'etcd-advertise-client-port', ...PORT, description: 'advertised client port', defaultText: 'the listen client port' },
  { name: 'etcd-cluster-init-independent', type: 'boolean', description: 'found a new one-member cluster (the default when no other cluster flag is given)' },
  { name: 'etcd-cluster-init-member', type: 'string', description: 'static bootstrap: all members as "n1=http://h1:2000,n2=http://h2:2000"', placeholder: 'members' },
  { name: 'etcd-cluster-join-member-client', type: 'string', description: 'join the running cluster reachable at these client URLs (comma-separated)', placeholder: 'urls' },
  { name: 'etcd-cluster-service', type: 'string', description: 'docker swarm: find the other members through DNS tasks.<service>', placeholder: 'service' },
  { name: 'etcd-cluster-service-port', ...PORT, default: 2001, description: "the swarm members' client port" },
  { name: 'etcd-strict-reconfig', type: 'boolean', default: true, description: 'refuse membership changes that could lose quorum' },
  { name: 'etcd-max-request-bytes', type: 'int', min: 1024 * 1024, default: DEFAULT_MAX_REQUEST_BYTES, description: 'largest request etcd accepts, in bytes' },
  { name: 'etcd-quota-backend-bytes', type: 'int', min: 64 * 1024 * 1024, default: DEFAULT_QUOTA_BACKEND_BYTES, description: "etcd's storage quota, in bytes" },
  { name: 'etcd-health-interval', type: 'number', min: 0.1, default: 5, description: 'seconds between liveness checks of etcd' },
  { name: 'etcd-health-failures', type: 'int', min: 1, default: 3, description: 'failed liveness checks in a row before etcd is restarted' },
  { name: 'etcd-start-timeout', type: 'number', min: 1, default: 120, description: 'seconds etcd gets to become ready after it starts' },
  { name: 'etcd-join-timeout', type: 'number', min: 1, default: 300, description: 'seconds to keep trying to join before restarting the module' },
  { name: 'etcd-prefix', type: 'string', default: DEFAULT_PREFIX, description: 'prefix of every kv2 key in etcd', placeholder: 'prefix' },
];

function num(value: unknown): number | undefined {
  return value === undefined ? undefined : Number(value);
}

export function renderCluster(flags: Record<string, unknown>): ClusterMode {
  const chosen = [
    flags['etcd-cluster-init-independent'] ? 'etcd-cluster-init-independent' : undefined,
    flags['etcd-cluster-init-member'] ? 'etcd-cluster-init-member' : undefined,
    flags['etcd-cluster-join-member-client'] ? 'etcd-cluster-join-member-client' : undefined,
    flags['etcd-cluster-service'] ? 'etcd-cluster-service' : undefined,
  ].filter(Boolean);
  if (chosen.length > 1) throw new UsageError(`give only one of --${chosen.join(', --')}`);
  if (flags['etcd-cluster-init-member']) return { type: 'init', member: String(flags['etcd-cluster-init-member']) };
  if (flags['etcd-cluster-join-member-client']) return { type: 'join', client: String(flags['etcd-cluster-join-member-client']) };
  if (flags['etcd-cluster-service']) {
    return { type: 'service', service: String(flags['etcd-cluster-service']), client_port: Number(flags['etcd-cluster-service-port']) };
  }
  return { type: 'independent' };
}

export const etcdModule: ModuleDefinition<EtcdConfig> = {
  name: 'etcd',
  role: 'judicator',
  flags: etcdFlags,
  schema: etcdConfigSchema,
  render({ flags }) {
    const listenPeer = Number(flags['etcd-listen-peer-port']);
    const listenClient = Number(flags['etcd-listen-client-port']);
    return {
      exe: flags['etcd-exe'] ? path.resolve(String(flags['etcd-exe'])) : null,
      etcdctl: null,
      name: resolveNodeName(String(flags['etcd-name'])),
      data_dir: 'data/etcd',
      data_init_dir: 'data/etcd_init',
      listen: { address: resolveAddress(String(flags['etcd-listen-address'])), peer_port: listenPeer, client_port: listenClient },
      advertise: {
        address: resolveAddress(String(flags['etcd-advertise-address'])),
        peer_port: num(flags['etcd-advertise-peer-port']) ?? listenPeer,
        client_port: num(flags['etcd-advertise-client-port']) ?? listenClient,
      },
      cluster: renderCluster(flags),
      strict_reconfig: Boolean(flags['etcd-strict-reconfig']),
      max_request_bytes: Number(flags['etcd-max-request-bytes']),
      quota_backend_bytes: Number(flags['etcd-quota-backend-bytes']),
      compaction_retention_hours: 1,
      health: {
        interval: Number(flags['etcd-health-interval']),
        failures: Number(flags['etcd-health-failures']),
        start_timeout: Number(flags['etcd-start-timeout']),
      },
      join: { timeout: Number(flags['etcd-join-timeout']), lock_ttl: 30 },
      stop_timeout: 20,
      prefix: String(flags['etcd-prefix']),
      log: renderLog('etcd', flags),
    };
  },
  load: () => import('../../etcd/member').then((m) => m.runEtcdMember),
};

/** The URL local processes use to reach this member's client port. */
export function localClientUrl(config: Pick<EtcdConfig, 'listen'>): string {
  const address = config.listen.address;
  const host = address === '0.0.0.0' || address === '::' || address === 'localhost' ? '127.0.0.1' : address;
  return `http://${host}:${config.listen.client_port}`;
}
