// What the mongodb module runs with (config/mongodb.json, less the log section boot adds): which mongod,
// the member's name and addresses, the replica set, its etcd, and the timings of reconciliation. Rendered
// from the flags by boot/modules/mongodb.ts; validated by this schema every time the module starts. Also
// the addresses derived from it.
import { z } from 'zod';
import { hostPortField, nodeNameField } from '../common/config-fields';

export const mongodbConfigSchema = z.object({
  /** Path of the mongod binary; null means: embedded, PATH, cache (and a download if `download`). */
  exe: z.string().min(1).nullable(),
  /** May the module download a mongod (mongodb-memory-server) when it finds none? */
  download: z.boolean(),
  /** mongod version looked for in the cache and downloaded; null: mongodb-memory-server's default. */
  version: z.string().regex(/^\d+\.\d+\.\d+$/).nullable(),
  /** This member's name: its registration is mongodb/register/<name>. */
  name: nodeNameField,
  data_dir: z.string().min(1),
  data_init_dir: z.string().min(1),
  listen: hostPortField,
  /** host:port the other members and the judicators use to reach this mongod (its replica-set identity). */
  advertise: hostPortField,
  replica_set: z.string().regex(/^[A-Za-z0-9_.-]+$/, 'letters, digits, "_", "." and "-" only'),
  /** WiredTiger cache in GB (mongod's --wiredTigerCacheSizeGB); null: mongod's default (half the RAM). */
  cache_size_gb: z.number().min(0.25).nullable(),
  /** The local etcd member, where registrations, the init marker and cluster/store live. */
  etcd: z.object({ endpoints: z.array(z.string().min(1)).min(1), prefix: z.string().min(1) }),
  /** The judicator's cluster identity (its certificate reaches etcd), relative to the role dir. */
  identity_dir: z.string().min(1),
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
});
export type MongodbConfig = z.infer<typeof mongodbConfigSchema>;

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
