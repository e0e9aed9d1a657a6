// The judicator's mongodb module as the command line sees it: its flags (the original's names) and how
// they render config/mongodb.json (the config itself is the mongodb room's: mongodb/config.ts). The module
// runs a mongod replica-set member when the cluster's store is MongoDB, and idles when it is etcd (SPEC §5).
import path from 'node:path';
import { DEFAULT_PREFIX } from '../../etcd/keys';
import { mongodbConfigSchema, type MongodbConfig } from '../../mongodb/config';
import { PORT, nodeNameFlag, optionalText, resolveNodeName, type FlagSpec, type FlagValues } from '../flags';
import { defineModule } from '../module-definition';
import { IDENTITY_DIR } from '../join-flags';
import { listenAddressFlag, listenAndAdvertise } from '../listen-address';
import { localEtcdEndpoint } from './etcd';

export const mongodbFlags: FlagSpec[] = [
  { name: 'mongodb-exe', type: 'string', description: 'mongod binary to run instead of the embedded / PATH / cached one', placeholder: 'path' },
  nodeNameFlag('mongodb-name', "this member's name (ENV: read $NAME)"),
  listenAddressFlag('mongodb', 'address mongod listens on (ALL, or an interface name in capitals)'),
  { name: 'mongodb-listen-port', ...PORT, default: 3000, description: 'port mongod listens on (also the advertised one unless given)' },
  { name: 'mongodb-advertise-address', type: 'string', default: 'localhost', description: 'address the other members and the judicators use to reach this mongod', placeholder: 'address' },
  { name: 'mongodb-advertise-port', ...PORT, description: 'advertised mongod port', defaultText: 'the listen port' },
  { name: 'mongodb-replica-set', type: 'string', default: 'rs', description: 'name of the MongoDB replica set', placeholder: 'name' },
  { name: 'mongodb-download', type: 'boolean', description: 'download a mongod (mongodb-memory-server) when none is found' },
  { name: 'mongodb-version', type: 'string', description: 'mongod version looked for in the cache and downloaded', defaultText: "mongodb-memory-server's default", placeholder: 'x.y.z' },
  { name: 'mongodb-remove-after', type: 'number', min: 0, default: 120, description: 'seconds a member must stay unregistered before the primary removes it from the replica set' },
];

/** Which mongod this node runs, from the flags: the mongodb module's, and what the main module weighs. */
export function mongodBinary(flags: FlagValues): Pick<MongodbConfig, 'exe' | 'version' | 'download'> {
  const exe = optionalText(flags['mongodb-exe']);
  return { exe: exe === null ? null : path.resolve(exe), download: Boolean(flags['mongodb-download']), version: optionalText(flags['mongodb-version']) };
}

export const mongodbModule = defineModule<MongodbConfig>({
  name: 'mongodb',
  role: 'judicator',
  flags: mongodbFlags,
  schema: mongodbConfigSchema,
  render({ flags }) {
    const { listen, advertise } = listenAndAdvertise(flags, 'mongodb');
    const store = flags['store'] === undefined ? 'auto' : String(flags['store']);
    return {
      ...mongodBinary(flags),
      name: resolveNodeName(String(flags['mongodb-name'])),
      data_dir: 'data/mongodb',
      data_init_dir: 'data/mongodb_init',
      listen,
      advertise,
      replica_set: String(flags['mongodb-replica-set']),
      cache_size_gb: null,
      etcd: {
        endpoints: [localEtcdEndpoint(flags)],
        prefix: String(flags['etcd-prefix'] ?? DEFAULT_PREFIX),
      },
      identity_dir: IDENTITY_DIR,
      store: store as MongodbConfig['store'],
      register: { ttl: 10 },
      reconcile: {
        interval: 5,
        remove_after: Number(flags['mongodb-remove-after']),
        max_voters: 7,
        reconfig_timeout_ms: 60_000,
        removed_wipe_after: 10,
        unresponsive_after: 60,
      },
      init: { claim_ttl: 60 },
      start_timeout: 300,
      stop: { step_down_secs: 10, timeout: 15 },
    };
  },
  // Only where the cluster may keep its tasks in MongoDB: not with --store etcd, and not without any mongod
  // (auto then means etcd). A judicator that runs no mongodb module cannot join a MongoDB cluster, and the
  // main module says so.
  async enabled({ flags }) {
    if (flags['store'] === 'etcd') return false;
    const { mongodAvailability } = await import('../../mongodb/binary');
    return (await mongodAvailability(mongodBinary(flags))) !== 'none';
  },
  load: () => import('../../mongodb/member').then((m) => m.runMongodbMember),
});

