// The etcd module as the command line sees it: its flags (the original's names) and how they render
// config/etcd.json (the config itself is etcd's: etcd/config.ts), and where this node's other modules
// find its etcd member.
import path from 'node:path';
import { UsageError } from '../../common/errors';
import { etcdConfigSchema, localClientUrl, type ClusterMode, type EtcdConfig } from '../../etcd/config';
import { DEFAULT_PREFIX } from '../../etcd/keys';
import { DEFAULT_MAX_REQUEST_BYTES, DEFAULT_QUOTA_BACKEND_BYTES } from '../../etcd/server-settings';
import { PORT, nodeNameFlag, optionalNumber, resolveAddress, resolveNodeName, type FlagSpec, type FlagValues } from '../flags';
import { IDENTITY_DIR, joinAddresses } from '../join-flags';
import { defineModule } from '../module-definition';
import { listenAddress, listenAddressFlag } from '../listen-address';

export const etcdFlags: FlagSpec[] = [
  { name: 'etcd-exe', type: 'string', description: 'etcd binary to run instead of the one embedded in kv2', placeholder: 'path' },
  nodeNameFlag('etcd-name', "this member's name (ENV: read $NAME)"),
  listenAddressFlag('etcd', 'address etcd listens on (ALL, or an interface name in capitals)'),
  { name: 'etcd-listen-peer-port', ...PORT, default: 2000, description: 'peer port etcd listens on (also the advertised one unless given)' },
  { name: 'etcd-listen-client-port', ...PORT, default: 2001, description: 'client port etcd listens on (also the advertised one unless given)' },
  { name: 'etcd-advertise-address', type: 'string', default: 'localhost', description: 'address other members and clients use to reach this member', placeholder: 'address' },
  { name: 'etcd-advertise-peer-port', ...PORT, description: 'advertised peer port', defaultText: 'the listen peer port' },
  { name: 'etcd-advertise-client-port', ...PORT, description: 'advertised client port', defaultText: 'the listen client port' },
  { name: 'etcd-cluster-init-independent', type: 'boolean', description: 'found a new one-member cluster (the default when no other cluster flag is given)' },
  { name: 'etcd-cluster-init-member', type: 'string', description: 'static bootstrap: all members as "n1=http://h1:2000,n2=http://h2:2000"', placeholder: 'members' },
  { name: 'etcd-cluster-join-member-client', type: 'string', description: 'join the running cluster reachable at these etcd client URLs (comma-separated https://host:2001); --join alone finds them', placeholder: 'urls' },
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
  // A judicator joining through another's RPC (--join) asks it where the etcd members are.
  const join = joinAddresses(flags as FlagValues);
  if (join.length && !flags['etcd-cluster-init-independent']) return { type: 'judicators', addresses: join };
  return { type: 'independent' };
}

export const etcdModule = defineModule<EtcdConfig>({
  name: 'etcd',
  role: 'judicator',
  flags: etcdFlags,
  schema: etcdConfigSchema,
  render({ flags }) {
    const listenPeer = Number(flags['etcd-listen-peer-port']);
    const listenClient = Number(flags['etcd-listen-client-port']);
    const advertise = resolveAddress(String(flags['etcd-advertise-address']));
    return {
      exe: flags['etcd-exe'] ? path.resolve(String(flags['etcd-exe'])) : null,
      etcdctl: null,
      name: resolveNodeName(String(flags['etcd-name'])),
      data_dir: 'data/etcd',
      data_init_dir: 'data/etcd_init',
      identity_dir: IDENTITY_DIR,
      listen: { address: listenAddress(flags['etcd-listen-address'], advertise), peer_port: listenPeer, client_port: listenClient },
      advertise: {
        address: advertise,
        peer_port: optionalNumber(flags['etcd-advertise-peer-port']) ?? listenPeer,
        client_port: optionalNumber(flags['etcd-advertise-client-port']) ?? listenClient,
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
    };
  },
  load: () => import('../../etcd/member').then((m) => m.runEtcdMember),
});


/** The local judicator's etcd, as the modules of this node reach it: the judicator's main and mongodb modules. */
export function localEtcdEndpoint(flags: FlagValues): string {
  return localClientUrl({
    listen: {
      address: listenAddress(flags['etcd-listen-address'], resolveAddress(String(flags['etcd-advertise-address'] ?? 'localhost'))),
      client_port: Number(flags['etcd-listen-client-port'] ?? 2001),
    },
  });
}

/** This judicator's etcd member as the other judicators reach it (its advertised client URL). */
export function advertisedEtcdUrl(flags: FlagValues): string {
  const port = optionalNumber(flags['etcd-advertise-client-port']) ?? Number(flags['etcd-listen-client-port'] ?? 2001);
  return `https://${resolveAddress(String(flags['etcd-advertise-address'] ?? 'localhost'))}:${port}`;
}
