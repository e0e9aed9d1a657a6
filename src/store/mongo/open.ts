// Opening the MongoDB store: the client's settings (majority writes, retryable writes, Dates and buffers
// as such), and the wait for the replica set, which the mongodb module may still be initiating when the
// judicator's main module opens its store (store/retry.ts, the one such loop).
import { MongoClient, MongoError } from 'mongodb';
import { UnavailableError } from '../../common/errors';
import { retryUntilReady } from '../retry';
import { MongoTaskStore, type MongoStoreOptions } from './store';

/** Defaults of MongoStoreOptions (ms). */
export const WRITE_TIMEOUT_MS = 10_000;
export const SERVER_SELECTION_TIMEOUT_MS = 10_000;
export const OPEN_RETRY_MS = 1_000;

export function createMongoClient(options: Pick<MongoStoreOptions, 'uri' | 'writeTimeoutMs' | 'serverSelectionTimeoutMs'>): MongoClient {
  return new MongoClient(options.uri, {
    writeConcern: { w: 'majority', wtimeoutMS: options.writeTimeoutMs ?? WRITE_TIMEOUT_MS },
    readPreference: 'primary',
    retryWrites: true,
    retryReads: true,
    serverSelectionTimeoutMS: options.serverSelectionTimeoutMs ?? SERVER_SELECTION_TIMEOUT_MS,
    ignoreUndefined: true,
    promoteBuffers: true,
    appName: 'kv2-judicator',
  });
}

/**
 * Connects to the replica set, creates the indexes and opens the change stream, trying again while the
 * set is not ready (not initiated yet, no primary) until `signal` aborts.
 */
export async function openMongoStore(options: MongoStoreOptions, signal?: AbortSignal): Promise<MongoTaskStore> {
  const client = createMongoClient(options);
  const store = new MongoTaskStore(client, options);
  let ready: MongoTaskStore | undefined;
  try {
    ready = await retryUntilReady(
      async () => {
        await client.connect();
        await store.ensureIndexes();
        await store.startFeed();
        return store;
      },
      {
        what: 'the MongoDB replica set (initiating, or no primary yet)',
        logger: options.logger,
        retryMs: options.openRetryMs ?? OPEN_RETRY_MS,
        retryable: (error) => error instanceof MongoError || error instanceof UnavailableError,
        signal,
        fields: { uri: options.uri },
      },
    );
  } catch (error) {
    await store.close().catch(() => undefined);
    throw error;
  }
  if (!ready) {
    await store.close().catch(() => undefined);
    throw new UnavailableError('stopped while waiting for the MongoDB replica set');
  }
  options.logger.info({ uri: options.uri }, 'MongoDB task store ready');
  return ready;
}
