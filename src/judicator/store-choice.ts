// Which task store this judicator opens: the cluster's, recorded in etcd (cluster/store) by the judicator
// that created the cluster (SPEC §5; chooseStore). Waits for etcd first: the main module may start before
// it answers, and for a MongoDB store the replica set may still be forming.
import type { Etcd3 } from 'etcd3';
import { ConfigError, describeError } from '../common/errors';
import type { Logger } from '../common/logging';
import { sleep } from '../common/processes';
import { chooseStore } from '../store/choose-store';
import { openTaskStore } from '../store/open-store';
import type { StoreKind, TaskStore } from '../store/task-store';
import type { JudicatorConfig } from './config';

export async function openJudicatorStore(
  config: JudicatorConfig,
  etcd: () => Etcd3,
  logger: Logger,
  signal: AbortSignal,
): Promise<TaskStore | undefined> {
  // Whether this judicator can run a mongod: config.mongodb is null where no mongodb module runs (the
  // MongoDB libraries are then not even loaded); else the mongod is looked for as that module looks.
  const mongo = config.mongodb
    ? { availability: await (await import('../mongodb/binary')).mongodAvailability(config.mongodb), uri: config.mongodb.uri }
    : undefined;
  let kind: StoreKind | undefined;
  let warned = 0;
  while (!signal.aborted && kind === undefined) {
    try {
      kind = (await chooseStore(config.store, etcd(), mongo?.availability ?? 'none', { prefix: config.etcd.prefix, logger })).kind;
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
    return openTaskStore({ kind: 'mongodb', uri: mongo!.uri, maxTaskSize: config.task.max_size, logger, signal });
  }
  return openTaskStore({ kind, client: etcd, prefix: config.etcd.prefix, maxTaskSize: config.task.max_size, logger });
}
