// Opens the task store a judicator was configured with. The only place outside the stores themselves that
// names an implementation: everything else holds a TaskStore.
import type { Etcd3 } from 'etcd3';
import { ConfigError } from '../common/errors';
import type { Logger } from '../common/logging';
import { clusterKeys } from '../cluster/keys';
import { EtcdTaskStore } from './etcd/store';
import type { StoreKind, TaskStore } from './task-store';

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

/** Opens (and starts the change feed of) the store `options.kind`. */
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
