// The mongodb module's process: when the cluster's store is MongoDB, runs this judicator's mongod as a
// replica-set member — data kept across restarts (the original wiped it on every start), data/mongodb_init
// restored once, mongod in its own process group with its output in the module log, registered under
// mongodb/register/<name> with a lease, the replica set initiated and reconciled (replica-set.ts), and a
// clean shutdown. When the cluster's store is etcd the module idles until it is stopped.
import fs from 'node:fs';
import path from 'node:path';
import { MongoClient } from 'mongodb';
import { describeError } from '../common/errors';
import type { Logger } from '../common/logging';
import { signalGroup, sleep } from '../common/processes';
import type { ModuleContext } from '../common/module-context';
import { createEtcdClient } from '../etcd/client';
import { identityReloadInterval, LiveIdentity } from '../pki/live-identity';
import { isEmptyDir, moveAside } from '../etcd/member-data';
import { clusterKeys } from '../etcd/keys';
import { LeasedRegistration } from '../etcd/registration';
import { chooseStoreWhenEtcdAnswers } from '../store/open-store';
import { checkMongodVersion, mongodAvailability, resolveMongod } from './binary';
import { hello } from './commands';
import { MongodProcess, mongodArgs, stopLeftoverMongod } from './mongod-process';
import { directUri, memberHost, type MongodbConfig } from './config';
import { ReplicaSetManager } from './replica-set';

export async function runMongodbMember({ config, logger, roleDir, signal }: ModuleContext<MongodbConfig>): Promise<void> {
  // etcd takes only judicators' certificates: this module presents the judicator's, and follows its renewals.
  const identity = LiveIdentity.load(path.resolve(roleDir, config.identity_dir), logger);
  const stopWatching = new AbortController();
  const watching = identity.watch(AbortSignal.any([signal, stopWatching.signal]), identityReloadInterval(identity.identity));
  const etcd = createEtcdClient(config.etcd.endpoints, { identity });
  try {
    const availability = await mongodAvailability({ exe: config.exe, version: config.version, download: config.download });
    const choice = await chooseStoreWhenEtcdAnswers({ flag: config.store, etcd: () => etcd, mongod: availability, prefix: config.etcd.prefix, logger, signal });
    if (!choice) return;
    if (choice.kind === 'etcd') {
      logger.info("this cluster's task store is etcd: the mongodb module has nothing to run and waits until it is stopped");
      await new Promise<void>((resolve) => (signal.aborted ? resolve() : signal.addEventListener('abort', () => resolve(), { once: true })));
      return;
    }
    await runMember(config, etcd, logger, roleDir, signal);
  } finally {
    etcd.close();
    stopWatching.abort();
    await watching;
  }
}

/** Replaces the data dir with a copy of data/mongodb_init when that holds anything, then empties it. */
export function restoreFromInitDir(initDir: string, dataDir: string, logger: Logger): boolean {
  if (!fs.existsSync(initDir) || isEmptyDir(initDir)) return false;
  // Copy next to the data dir first: a crash half-way leaves the init dir as it was, and the next start
  // restores again.
  const staging = `${dataDir}.restoring`;
  fs.rmSync(staging, { recursive: true, force: true });
  fs.cpSync(initDir, staging, { recursive: true });
  const aside = moveAside(dataDir, 'before-restore');
  fs.renameSync(staging, dataDir);
  for (const entry of fs.readdirSync(initDir)) fs.rmSync(path.join(initDir, entry), { recursive: true, force: true });
  logger.warn({ from: initDir, dataDir, previousData: aside }, `restored the MongoDB data from ${initDir} (now emptied)${aside ? `; the previous data was moved to ${aside}` : ''}`);
  return true;
}

async function runMember(config: MongodbConfig, etcd: ReturnType<typeof createEtcdClient>, logger: Logger, roleDir: string, signal: AbortSignal): Promise<void> {
  let lastPercent = -10;
  const mongod = await resolveMongod({
    exe: config.exe,
    version: config.version,
    download: config.download,
    onProgress: ({ received, total, done }) => {
      const percent = total > 0 ? Math.floor((100 * received) / total) : 0;
      if (done || percent >= lastPercent + 10) {
        lastPercent = percent;
        logger.info({ received, total }, `downloading mongod: ${percent}%`);
      }
    },
  });
  const version = checkMongodVersion(mongod.path);
  logger.info({ exe: mongod.path, source: mongod.source, version }, `using mongod ${version} (${mongod.source}: ${mongod.path})`);

  const dataDir = path.resolve(roleDir, config.data_dir);
  fs.mkdirSync(dataDir, { recursive: true });
  await stopLeftoverMongod(dataDir, logger, config.stop.timeout * 1000);
  restoreFromInitDir(path.resolve(roleDir, config.data_init_dir), dataDir, logger);
  if (signal.aborted) return;

  const args = mongodArgs(config, dataDir);
  const proc = new MongodProcess(mongod.path, args, logger);
  logger.info({ pid: proc.child.pid, args }, `mongod started (pid ${proc.child.pid})`);
  const client = new MongoClient(directUri(config), { serverSelectionTimeoutMS: 2_000, connectTimeoutMS: 2_000 });
  const admin = client.db('admin');

  const loop = new AbortController();
  const stopLoop = () => loop.abort();
  signal.addEventListener('abort', stopLoop, { once: true });
  let exitStatus: number | string | undefined;
  void proc.exit.then((status) => {
    exitStatus = status;
    loop.abort();
  });

  const registrationStop = new AbortController();
  let registrationDone: Promise<void> | undefined;
  let resync: string | undefined;
  try {
    if (!(await waitUntilAnswers(admin, config.start_timeout * 1000, loop.signal))) {
      if (!signal.aborted && exitStatus === undefined) {
        logger.error(`mongod did not answer within ${config.start_timeout} s`);
        exitStatus = 'no answer';
      }
    } else {
      const self = memberHost(config);
      logger.info({ host: self }, `mongod is answering; registering as ${self}`);
      const registration = new LeasedRegistration(
        () => etcd,
        { key: clusterKeys(config.etcd.prefix).mongodbRegistration(config.name), value: () => self, ttl: config.register.ttl },
        logger,
      );
      registrationDone = registration.run(registrationStop.signal);
      const manager = new ReplicaSetManager({
        config,
        admin,
        etcd: () => etcd,
        self,
        registered: () => registration.isRegistered,
        logger,
        requestResync: (reason) => {
          resync = reason;
          loop.abort();
        },
      });
      await Promise.all([manager.run(loop.signal), watchLiveness(admin, config, proc, logger, loop.signal)]);
    }
  } finally {
    signal.removeEventListener('abort', stopLoop);
    // mongod first (a primary hands over), then the registration: the others still see us while we stop.
    await proc.stop(config, logger);
    await client.close().catch(() => undefined);
    registrationStop.abort();
    await registrationDone;
  }

  if (resync) {
    const aside = moveAside(dataDir, 'removed');
    logger.warn({ reason: resync, previousData: aside }, `${resync}: its data is out of date, moved aside to ${aside}; the next start syncs from the set`);
    return fail(logger, 'resync from the replica set');
  }
  if (signal.aborted) return;
  const tail = proc.lastLines().slice(-5);
  return fail(logger, `mongod exited (${exitStatus})${tail.length ? `; its last lines: ${tail.join(' | ')}` : ''}`);
}

async function waitUntilAnswers(admin: ReturnType<MongoClient['db']>, timeoutMs: number, signal: AbortSignal): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!signal.aborted && Date.now() < deadline) {
    try {
      await hello(admin);
      return true;
    } catch {
      await sleep(250, signal);
    }
  }
  return false;
}

/** A mongod that stops answering for `reconcile.unresponsive_after` seconds is killed, so the module restarts it. */
async function watchLiveness(admin: ReturnType<MongoClient['db']>, config: MongodbConfig, proc: MongodProcess, logger: Logger, signal: AbortSignal): Promise<void> {
  let lastAnswer = Date.now();
  while (!signal.aborted) {
    await sleep(config.reconcile.interval * 1000, signal);
    if (signal.aborted) return;
    try {
      await hello(admin);
      lastAnswer = Date.now();
    } catch (error) {
      const silentFor = Date.now() - lastAnswer;
      logger.warn({ err: describeError(error), silentFor }, 'mongod did not answer a liveness check');
      if (silentFor >= config.reconcile.unresponsive_after * 1000 && proc.child.pid !== undefined) {
        logger.error(`mongod has not answered for ${Math.round(silentFor / 1000)} s; killing it so that the module restarts it`);
        signalGroup(proc.child.pid, 'SIGKILL');
        return;
      }
    }
  }
}

function fail(logger: Logger, reason: string): never {
  logger.error({ reason }, `mongodb module stopping: ${reason}; the supervisor restarts it`);
  process.exit(1);
}
