// Which task store a cluster uses, and opening it: the one place that chooses and opens a store.
//
// The choice (SPEC §5): `--store auto|mongodb|etcd` decides it on the judicator that creates the cluster,
// and the decision is recorded once in etcd (cluster/store, create-if-absent). Every judicator after that
// follows the recorded store, or stops with a message saying what it lacks. Both the judicator's main
// module (openStore) and its mongodb module (chooseStoreWhenEtcdAnswers) ask, with the same inputs, so
// whichever runs first records the same answer. Either may start before etcd answers: they wait for it
// in the one retry loop (retry.ts). Opening takes typed input only: no config file is read here.
import type { Etcd3 } from 'etcd3';
import { ConfigError } from '../common/errors';
import type { Logger } from '../common/logging';
import { clusterKeys } from '../etcd/keys';
import { EtcdTaskStore } from './etcd/store';
import { retryUntilReady } from './retry';
import type { StoreKind, TaskStore } from './task-store';

/** Pause between attempts to read or record the cluster's store while etcd does not answer (ms). */
export const CHOOSE_RETRY_MS = 250;

export type StoreFlag = 'auto' | 'mongodb' | 'etcd';

/**
 * Whether this judicator can run a mongod: `local` (found without downloading: --mongodb-exe, embedded,
 * PATH, cache), `download` (none found, but --mongodb-download allows fetching one), `none`.
 */
export type MongodAvailability = 'local' | 'download' | 'none';

export interface StoreChoice {
  kind: StoreKind;
  /** True when this call recorded the kind (this judicator created the cluster's store). */
  recorded: boolean;
}

const NO_MONGOD_HELP =
  'give --mongodb-exe <path>, put mongod on the PATH, run "kv2 fetch mongod" (with internet), or allow --mongodb-download';

/** What `--store` asks for on a cluster that has no store yet. */
export function wantedStore(flag: StoreFlag, mongod: MongodAvailability): StoreKind {
  if (flag === 'etcd') return 'etcd';
  if (flag === 'mongodb') return 'mongodb';
  // auto: MongoDB when a mongod is there without downloading (SPEC §5), else the embedded etcd store.
  return mongod === 'local' ? 'mongodb' : 'etcd';
}

function parseKind(key: string, value: string | undefined): StoreKind {
  if (value === 'etcd' || value === 'mongodb') return value;
  throw new ConfigError(`etcd key ${key} holds ${JSON.stringify(value)}, which is not a store kind (etcd or mongodb); fix or delete that key`);
}

/**
 * The cluster's store: recorded by this call if nobody recorded one yet (an etcd transaction, so two
 * judicators creating a cluster at once agree), else the recorded one. Throws ConfigError when this
 * judicator cannot run the cluster's store, or when `--store mongodb` is asked of a new cluster without
 * any mongod.
 */
export async function chooseStore(
  flag: StoreFlag,
  etcd: Etcd3,
  mongod: MongodAvailability,
  options: { prefix: string; logger?: Logger },
): Promise<StoreChoice> {
  const key = clusterKeys(options.prefix).clusterStore;
  const wanted = wantedStore(flag, mongod);
  let choice: StoreChoice;
  if (wanted === 'mongodb' && mongod === 'none') {
    // Never record a store this judicator cannot run: only follow what is there.
    const existing = await etcd.get(key).string();
    if (existing === null) throw new ConfigError(`--store mongodb: this judicator has no mongod to create a MongoDB store with; ${NO_MONGOD_HELP}`);
    choice = { kind: parseKind(key, existing), recorded: false };
  } else {
    const result = await etcd.if(key, 'Create', '==', 0).then(etcd.put(key).value(wanted)).else(etcd.get(key)).commit();
    choice = result.succeeded
      ? { kind: wanted, recorded: true }
      : { kind: parseKind(key, result.responses[0]?.response_range?.kvs[0]?.value.toString()), recorded: false };
  }
  if (choice.kind === 'mongodb' && mongod === 'none') {
    throw new ConfigError(`this cluster keeps its tasks in MongoDB (etcd key ${key}), and this judicator has no mongod; ${NO_MONGOD_HELP}`);
  }
  if (choice.recorded) options.logger?.info({ store: choice.kind, flag }, `this cluster's task store is ${choice.kind} (recorded in ${key})`);
  else if (flag !== 'auto' && flag !== choice.kind) {
    options.logger?.warn({ flag, store: choice.kind }, `--store ${flag} was given, but this cluster was created with the ${choice.kind} store; following the cluster`);
  }
  return choice;
}

/**
 * chooseStore, tried again while etcd does not answer (the etcd module may still be starting); undefined
 * when `signal` aborts first. A ConfigError (this judicator cannot run the cluster's store) is thrown.
 */
export function chooseStoreWhenEtcdAnswers(input: {
  flag: StoreFlag;
  etcd: () => Etcd3;
  mongod: MongodAvailability;
  prefix: string;
  logger: Logger;
  signal: AbortSignal;
}): Promise<StoreChoice | undefined> {
  return retryUntilReady(() => chooseStore(input.flag, input.etcd(), input.mongod, { prefix: input.prefix, logger: input.logger }), {
    what: "etcd, to learn the cluster's task store",
    logger: input.logger,
    retryMs: CHOOSE_RETRY_MS,
    retryable: (error) => !(error instanceof ConfigError),
    signal: input.signal,
  });
}

/** What a judicator opens its store with. */
export interface OpenStoreInput {
  /** --store: the store a new cluster gets. */
  flag: StoreFlag;
  /** The current etcd client (a replaced client is followed). */
  etcd: () => Etcd3;
  /** The cluster's key prefix (--etcd-prefix). */
  prefix: string;
  /** This judicator's MongoDB, when it has a mongodb module: the replica set and whether a mongod runs here. */
  mongodb?: { uri: string; availability: MongodAvailability };
  /** Largest stored task (input plus result), bytes: --task-max-size. */
  maxTaskSize: number;
  logger: Logger;
  /** Aborts the waits (for etcd, for the replica set). */
  signal: AbortSignal;
  /** Now, in ms (tests may pin it). */
  now?: () => number;
}

/** Chooses the cluster's store (waiting for etcd) and opens it; undefined when `signal` aborts first. */
export async function openStore(input: OpenStoreInput): Promise<TaskStore | undefined> {
  const choice = await chooseStoreWhenEtcdAnswers({ flag: input.flag, etcd: input.etcd, mongod: input.mongodb?.availability ?? 'none', prefix: input.prefix, logger: input.logger, signal: input.signal });
  if (!choice) return undefined;
  const common = { maxTaskSize: input.maxTaskSize, logger: input.logger, now: input.now };
  // chooseStore refuses a MongoDB cluster to a judicator without a mongod: `mongodb` is there.
  if (choice.kind === 'mongodb') return openTaskStore({ kind: 'mongodb', uri: input.mongodb!.uri, signal: input.signal, ...common });
  return openTaskStore({ kind: 'etcd', client: input.etcd, prefix: input.prefix, ...common });
}

interface CommonStoreOptions {
  /** Largest stored task (input plus result), bytes: --task-max-size. */
  maxTaskSize: number;
  logger: Logger;
  /** Now, in ms (tests may pin it). */
  now?: () => number;
}

export interface EtcdStoreOpenOptions extends CommonStoreOptions {
  kind: 'etcd';
  /** The etcd client, or a function returning the current one (so a replaced client is followed). */
  client: Etcd3 | (() => Etcd3);
  /** The cluster's key prefix (--etcd-prefix); the store keeps its keys under clusterKeys(prefix).store. */
  prefix: string;
  /** Timings of the etcd store (etcd/store.ts DEFAULT_REPORT_REFRESH_MS, DEFAULT_HEARTBEAT_REFRESH_MS, DEFAULT_HELD_VIEW_MS). */
  reportRefreshMs?: number;
  heartbeatRefreshMs?: number;
  heldViewMs?: number;
}

export interface MongoStoreOpenOptions extends CommonStoreOptions {
  kind: 'mongodb';
  /** The replica set's connection string: mongodb/module.ts replicaSetUri(config/mongodb.json). */
  uri: string;
  /** Aborts the wait for the replica set (it may still be initiating when the judicator starts). */
  signal?: AbortSignal;
}

export type OpenStoreOptions = EtcdStoreOpenOptions | MongoStoreOpenOptions;

/** Opens (and starts the change feed of) the store `options.kind`, for a caller that knows it (backups). */
export async function openTaskStore(options: OpenStoreOptions): Promise<TaskStore> {
  switch (options.kind) {
    case 'etcd':
      return new EtcdTaskStore({
        client: options.client,
        keyPrefix: clusterKeys(options.prefix).store,
        maxTaskSize: options.maxTaskSize,
        logger: options.logger,
        now: options.now,
        reportRefreshMs: options.reportRefreshMs,
        heartbeatRefreshMs: options.heartbeatRefreshMs,
        heldViewMs: options.heldViewMs,
      }).open();
    case 'mongodb': {
      // Loaded only here: a cluster on the etcd store never loads the MongoDB driver.
      const { openMongoStore } = await import('./mongo/open');
      return openMongoStore({ uri: options.uri, maxTaskSize: options.maxTaskSize, logger: options.logger, now: options.now }, options.signal);
    }
    default:
      throw new ConfigError(`unknown task store "${(options as { kind: StoreKind | string }).kind}" (kv2 knows etcd and mongodb)`);
  }
}
