// The judicator's mongodb module as the supervisor sees it: its flags (the original's names), the
// config/mongodb.json they render to, and that file's schema. The module runs a mongod replica-set member
// when the cluster's store is MongoDB, and idles when it is etcd (SPEC §5).
import path from 'node:path';
import { z } from 'zod';
import { logSchema, renderLog } from '../config-files';
import { PORT, checkNodeName, hostnameDefault, resolveAddress, resolveNodeName, type FlagSpec } from '../flags';
import type { ModuleDefinition } from '../module-definition';
import { localClientUrl } from './etcd';
import { DEFAULT_PREFIX } from '../../etcd/keys';

const port = z.union([z.number().int().min(1).max(65535), z.string().regex(/^\d+$/).transform(Number)]);

export const mongodbConfigSchema = z.object({
  /** Path of the mongod binary; null means: embedded, PATH, cache (and a download if `download`). */
  exe: z.string().min(1).nullable(),
  /** May the module download a mongod (mongodb-memory-server) when it finds none? */
  download: z.boolean(),
  /** mongod version looked for in the cache and downloaded; null: mongodb-memory-server's default. */
  version: z.string().regex(/^\d+\.\d+\.\d+$/).nullable(),
  /** This member's name: its registration is mongodb/register/<name>. */
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'letters, digits, "_", "." and "-" only'),
  data_dir: z.string().min(1),
  data_init_dir: z.string().min(1),
  listen: z.object({ address: z.string().min(1), port }),
  /** host:port the other members and the judicators use to reach this mongod (its replica-set identity). */
  advertise: z.object({ address: z.string().min(1), port }),
  replica_set: z.string().regex(/^[A-Za-z0-9_.-]+$/, 'letters, digits, "_", "." and "-" only'),
  /** WiredTiger cache in GB (mongod's --wiredTigerCacheSizeGB); null: mongod's default (half the RAM). */
  cache_size_gb: z.number().min(0.25).nullable(),
  /** The local etcd member, where registrations, the init marker and cluster/store live. */
  etcd: z.object({ endpoints: z.array(z.string().min(1)).min(1), prefix: z.string().min(1) }),
  /** `--store`: the store a new cluster gets (the cluster's recorded store wins for a joining judicator). */
  store: z.enum(['auto', 'etcd', 'mongodb']),
  register: z.object({
    /** Seconds mongodb/register/<name> outlives a member that dies without a word. */
    ttl: z.number().int().min(2),
  }),
  reconcile: z.object({
    /** Seconds between rounds of initiation / membership reconciliation (the original's 5). */
    interval: z.number().positive(),
    /** Seconds a member must stay unregistered before the primary removes it from the set. */
    remove_after: z.number().min(0),
    /** At most this many voting members (MongoDB's limit is 7). */
    max_voters: z.number().int().min(1).max(7),
    /** Milliseconds a replSetReconfig may take before it is abandoned (its maxTimeMS). */
    reconfig_timeout_ms: z.number().int().min(1000),
    /** Seconds this member may stay outside a running set (removed) before it wipes its data to resync. */
    removed_wipe_after: z.number().min(0),
    /** Seconds mongod may go without answering hello before it is killed and restarted. */
    unresponsive_after: z.number().positive(),
  }),
  init: z.object({
    /** TTL in seconds of the lease behind a claim on mongodb/init: a claimer that dies frees it this fast. */
    claim_ttl: z.number().int().min(5),
  }),
  /** Seconds mongod gets to answer after it starts (journal recovery can take a while). */
  start_timeout: z.number().positive(),
  stop: z.object({
    /** The shutdown command's timeoutSecs: how long a primary waits for a secondary to catch up. */
    step_down_secs: z.number().int().min(0),
    /** Seconds mongod gets to exit after the shutdown command, then after SIGTERM, before SIGKILL. */
    timeout: z.number().positive(),
  }),
  log: logSchema,
});
export type MongodbConfig = z.infer<typeof mongodbConfigSchema>;

export const mongodbFlags: FlagSpec[] = [
  { name: 'mongodb-exe', type: 'string', description: 'mongod binary to run instead of the embedded / PATH / cached one', placeholder: 'path' },
  { name: 'mongodb-name', type: 'string', default: hostnameDefault, defaultText: 'the hostname', check: checkNodeName, description: "this member's name (ENV: read $NAME)", placeholder: 'name' },
  { name: 'mongodb-listen-address', type: 'string', default: '0.0.0.0', description: 'address mongod listens on (ALL, or an interface name in capitals)', placeholder: 'address' },
  { name: 'mongodb-listen-port', ...PORT, default: 3000, description: 'port mongod listens on (also the advertised one unless given)' },
  { name: 'mongodb-advertise-address', type: 'string', default: 'localhost', description: 'address the other members and the judicators use to reach this mongod', placeholder: 'address' },
  { name: 'mongodb-advertise-port', ...PORT, description: 'advertised mongod port', defaultText: 'the listen port' },
  { name: 'mongodb-replica-set', type: 'string', default: 'rs', description: 'name of the MongoDB replica set', placeholder: 'name' },
  { name: 'mongodb-download', type: 'boolean', description: 'download a mongod (mongodb-memory-server) when none is found' },
  { name: 'mongodb-version', type: 'string', description: 'mongod version looked for in the cache and downloaded', defaultText: "mongodb-memory-server's default", placeholder: 'x.y.z' },
  { name: 'mongodb-remove-after', type: 'number', min: 0, default: 120, description: 'seconds a member must stay unregistered before the primary removes it from the replica set' },
];

function num(value: unknown): number | undefined {
  return value === undefined ? undefined : Number(value);
}

export const mongodbModule: ModuleDefinition<MongodbConfig> = {
  name: 'mongodb',
  role: 'judicator',
  flags: mongodbFlags,
  schema: mongodbConfigSchema,
  render({ flags }) {
    const listenPort = Number(flags['mongodb-listen-port']);
    const store = flags['store'] === undefined ? 'auto' : String(flags['store']);
    return {
      exe: flags['mongodb-exe'] ? path.resolve(String(flags['mongodb-exe'])) : null,
      download: Boolean(flags['mongodb-download']),
      version: flags['mongodb-version'] ? String(flags['mongodb-version']) : null,
      name: resolveNodeName(String(flags['mongodb-name'])),
      data_dir: 'data/mongodb',
      data_init_dir: 'data/mongodb_init',
      listen: { address: resolveAddress(String(flags['mongodb-listen-address'])), port: listenPort },
      advertise: {
        address: resolveAddress(String(flags['mongodb-advertise-address'])),
        port: num(flags['mongodb-advertise-port']) ?? listenPort,
      },
      replica_set: String(flags['mongodb-replica-set']),
      cache_size_gb: null,
      etcd: {
        endpoints: [
          localClientUrl({
            listen: {
              address: resolveAddress(String(flags['etcd-listen-address'] ?? '127.0.0.1')),
              peer_port: Number(flags['etcd-listen-peer-port'] ?? 2000),
              client_port: Number(flags['etcd-listen-client-port'] ?? 2001),
            },
          }),
        ],
        prefix: String(flags['etcd-prefix'] ?? DEFAULT_PREFIX),
      },
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
      log: renderLog('mongodb', flags),
    };
  },
  // Only where the cluster may keep its tasks in MongoDB: not with --store etcd, and not without any mongod
  // (auto then means etcd). A judicator that runs no mongodb module cannot join a MongoDB cluster, and the
  // main module says so.
  async enabled({ flags }) {
    if (flags['store'] === 'etcd') return false;
    const { mongodAvailability } = await import('../../mongodb/binary');
    const exe = flags['mongodb-exe'] ? path.resolve(String(flags['mongodb-exe'])) : null;
    const availability = await mongodAvailability({ exe, version: flags['mongodb-version'] ? String(flags['mongodb-version']) : null, download: Boolean(flags['mongodb-download']) });
    return availability !== 'none';
  },
  load: () => import('../../mongodb/member').then((m) => m.runMongodbMember),
};

/** The host:port this member is known by in the replica set and in etcd. */
export function memberHost(config: Pick<MongodbConfig, 'advertise'>): string {
  return `${config.advertise.address}:${config.advertise.port}`;
}

/** mongod always listens on loopback too (the shutdown command needs it), so local clients use 127.0.0.1. */
export function localMongodAddress(config: Pick<MongodbConfig, 'listen'>): string {
  return `127.0.0.1:${config.listen.port}`;
}

/** The connection string the judicator's store uses: the replica set, discovered from the local member. */
export function replicaSetUri(config: Pick<MongodbConfig, 'listen' | 'replica_set'>): string {
  return `mongodb://${localMongodAddress(config)}/?replicaSet=${encodeURIComponent(config.replica_set)}`;
}

/** A connection to the local mongod alone (administration: hello, replSet* commands, shutdown). */
export function directUri(config: Pick<MongodbConfig, 'listen'>): string {
  return `mongodb://${localMongodAddress(config)}/?directConnection=true`;
}
