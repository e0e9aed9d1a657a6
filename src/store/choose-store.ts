// Which task store a cluster uses (SPEC §5): `--store auto|mongodb|etcd` decides it on the judicator that
// creates the cluster, and the decision is recorded once in etcd (cluster/store, create-if-absent).
// Every judicator after that follows the recorded store, or stops with a message saying what it lacks.
// Both the main module and the mongodb module call this with the same inputs, so whichever runs first
// records the same answer.
import type { Etcd3 } from 'etcd3';
import { ConfigError } from '../common/errors';
import type { Logger } from '../common/logging';
import { clusterKeys } from '../etcd/keys';
import type { StoreKind } from './task-store';

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
