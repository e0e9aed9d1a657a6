// For `kv2 restore` of a MongoDB store: turns the backup's mongodump into a mongod data dir for
// data/mongodb_init, which the judicator's mongodb module copies into place at its next start (the
// maintenance page's step "copy files from backup to judicator/data/mongodb_init"). A dump is not a data
// dir, so a private, standalone mongod is started on a staging dir, the dump is loaded with
// restoreCollections (src/store/mongo/dump.ts), and mongod is shut down cleanly; the module then starts
// mongod on that data with --replSet and initiates a new set from it once the old set's marker in etcd is
// found stale (replica-set.ts, after --mongodb-remove-after).
import fs from 'node:fs';
import { ConfigError, UnavailableError, describeError } from '../common/errors';
import type { Logger } from '../common/logging';
import { sleep } from '../common/processes';
import { freeLoopbackPort } from '../etcd/scratch-etcd';

/** How long the private mongod gets to answer after it starts. */
export const RESTORE_MONGOD_START_TIMEOUT_MS = 120_000;
/** Seconds it gets to stop after the shutdown command, then after SIGTERM. */
const RESTORE_MONGOD_STOP_SECONDS = 30;

/** The mongod to use, or a ConfigError saying how to get one (nothing is downloaded here). */
export async function findRestoreMongod(exe: string | undefined): Promise<string> {
  const { findMongod } = await import('../mongodb/binary');
  const found = await findMongod({ exe: exe ?? null });
  if (!found) {
    throw new ConfigError(
      'this backup is of a MongoDB store, and turning its dump into MongoDB data needs a mongod: none is embedded, on the PATH or ' +
        'in the cache. Give --mongodb-exe <path>, or run "kv2 fetch mongod" on a machine with internet. Nothing was changed',
    );
  }
  return found.path;
}

/** Loads the dump in `dumpDir` into a new mongod data dir at `dataDir` (which must not exist yet). */
export async function buildMongodbData(mongodExe: string, dumpDir: string, dataDir: string, logger: Logger): Promise<Record<string, number>> {
  const [{ MongoClient }, { MongodProcess }, { restoreCollections }, { DATABASE }, { hello }] = await Promise.all([
    import('mongodb'),
    import('../mongodb/mongod-process'),
    import('../store/mongo/dump'),
    import('../store/mongo/documents'),
    import('../mongodb/commands'),
  ]);
  fs.mkdirSync(dataDir, { recursive: true });
  const port = await freeLoopbackPort();
  const listen = { address: '127.0.0.1', port };
  // Standalone (no --replSet): the data is loaded before any replica set exists.
  const mongod = new MongodProcess(mongodExe, ['--bind_ip', '127.0.0.1', '--port', String(port), '--dbpath', dataDir, '--nounixsocket'], logger);
  const client = new MongoClient(`mongodb://127.0.0.1:${port}/?directConnection=true`, { serverSelectionTimeoutMS: 2_000 });
  try {
    const deadline = Date.now() + RESTORE_MONGOD_START_TIMEOUT_MS;
    for (;;) {
      if (!mongod.running) throw new UnavailableError(`mongod exited before it answered: ${mongod.lastLines().slice(-3).join(' | ')}`);
      try {
        await hello(client.db('admin'));
        break;
      } catch (error) {
        if (Date.now() > deadline) throw new UnavailableError(`mongod did not answer within ${RESTORE_MONGOD_START_TIMEOUT_MS} ms: ${describeError(error)}`);
        await sleep(250);
      }
    }
    return await restoreCollections(client.db(DATABASE), dumpDir);
  } finally {
    await client.close().catch(() => undefined);
    await mongod.stop({ listen, stop: { step_down_secs: 0, timeout: RESTORE_MONGOD_STOP_SECONDS } }, logger);
  }
}
