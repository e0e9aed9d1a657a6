// Which task store this judicator opens: the cluster's, recorded in etcd (cluster/store) by the judicator
// that created the cluster (SPEC §5). Waits for etcd first: the main module may start before it answers.
import type { Etcd3 } from 'etcd3';
import { ConfigError, describeError } from '../common/errors';
import type { Logger } from '../common/logging';
import { sleep } from '../common/processes';
import { clusterKeys } from '../cluster/keys';
import { openTaskStore } from '../store/open-store';
import type { StoreKind, TaskStore } from '../store/task-store';
import type { JudicatorConfig } from './module';

/** Records the cluster's store kind if nobody has yet, and returns the one recorded. */
async function recordedStore(etcd: Etcd3, prefix: string, wanted: StoreKind): Promise<StoreKind> {
  const key = clusterKeys(prefix).clusterStore;
  const result = await etcd.if(key, 'Create', '==', 0).then(etcd.put(key).value(wanted)).else(etcd.get(key)).commit();
  if (result.succeeded) return wanted;
  const value = result.responses[0]?.response_range?.kvs[0]?.value.toString();
  if (value !== 'etcd' && value !== 'mongodb') throw new ConfigError(`etcd key ${key} holds "${value}", which is not a store kind (etcd or mongodb)`);
  return value;
}

export async function openJudicatorStore(
  config: JudicatorConfig,
  etcd: () => Etcd3,
  logger: Logger,
  signal: AbortSignal,
): Promise<TaskStore | undefined> {
  // `auto` prefers MongoDB when a mongod is available without downloading; this build runs the etcd
  // store for it until the MongoDB module is part of the judicator.
  const wanted: StoreKind = config.store === 'mongodb' ? 'mongodb' : 'etcd';
  let kind: StoreKind | undefined;
  let warned = 0;
  while (!signal.aborted && kind === undefined) {
    try {
      kind = await recordedStore(etcd(), config.etcd.prefix, wanted);
    } catch (error) {
      if (error instanceof ConfigError) throw error;
      if (Date.now() - warned > 15_000) {
        warned = Date.now();
        logger.info({ err: describeError(error) }, 'waiting for etcd before opening the task store');
      }
      await sleep(250, signal);
    }
  }
  if (kind === undefined) return undefined;
  if (kind === 'mongodb') {
    throw new ConfigError('this cluster keeps its tasks in MongoDB, and this judicator cannot open a MongoDB store; start it with a mongod available');
  }
  if (config.store === 'mongodb') {
    logger.warn(`--store mongodb was given, but this cluster was created with the ${kind} store; following the cluster`);
  }
  return openTaskStore({ kind, client: etcd, prefix: config.etcd.prefix, maxTaskSize: config.task.max_size, logger });
}
