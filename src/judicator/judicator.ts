// The judicator's main module: the task store, the RPC server (mutual TLS) executors, gateways and the CLI
// talk to, the registration under judicator/service/<name>, the quorum watch, the cluster identity's
// duties (identity-duties.ts), and — on the elected judicator — the leader's duties and the delivery of
// finished tasks' callbacks.
import path from 'node:path';
import type { Etcd3 } from 'etcd3';
import { ConfigError, describeError } from '../common/errors';
import type { Logger } from '../common/logging';
import { sleep } from '../common/processes';
import type { ModuleContext } from '../common/module-context';
import { createEtcdClient } from '../etcd/client';
import { LeaderElection } from '../etcd/election';
import { JudicatorDirectory, registrationValue } from '../etcd/judicator-directory';
import { clusterKeys } from '../etcd/keys';
import { currentLeader } from '../etcd/leader';
import { LeasedRegistration } from '../etcd/registration';
import { EtcdPkiStore } from '../pki/etcd-pki-store';
import { loadCertificateAuthority } from '../pki/init-identity';
import { JoinServer } from '../pki/join-server';
import { LiveIdentity } from '../pki/live-identity';
import type { JudicatorEntry } from '../rpc/contract';
import type { MongodAvailability } from '../store/open-store';
import { openStore } from '../store/open-store';
import { CallbackSender } from './callbacks';
import type { TaskStore } from '../store/task-store';
import { IdentityDuties } from './identity-duties';
import { LeaderDuties } from './leader-duties';
import { JudicatorMetrics } from './metrics';
import type { JudicatorConfig } from './config';
import { createRpcServer } from './rpc-server';
import { DEFAULT_HEARTBEAT_EVERY_MS, Scheduler } from './scheduler';
import { TaskEventHub } from './task-events';

/** The shortest a quorum probe may wait for etcd's answer (ms); otherwise two check intervals. */
const QUORUM_PROBE_MIN_TIMEOUT_MS = 2_000;

/** A judicator is only advertised and serving while etcd answers linearizable reads. */
class QuorumWatch {
  private healthy = false;
  private reason = 'etcd has not answered yet';

  constructor(
    private readonly etcd: Etcd3,
    private readonly probeKey: string,
    private readonly logger: Logger,
  ) {}

  state(): { ok: true } | { ok: false; reason: string } {
    return this.healthy ? { ok: true } : { ok: false, reason: this.reason };
  }

  async run(intervalMs: number, signal: AbortSignal): Promise<void> {
    let failures = 0;
    while (!signal.aborted) {
      try {
        // A linearizable read needs the etcd leader and a quorum: exactly what writes need.
        await withTimeout(this.etcd.get(this.probeKey).exec(), Math.max(2 * intervalMs, QUORUM_PROBE_MIN_TIMEOUT_MS));
        if (!this.healthy) this.logger.info('etcd quorum reachable: serving');
        this.healthy = true;
        failures = 0;
      } catch (error) {
        failures++;
        if (failures >= 2 && this.healthy) {
          this.reason = `its etcd has no quorum (${describeError(error)})`;
          this.logger.error({ err: describeError(error) }, 'etcd quorum lost: this judicator stops serving until it is back; clients fail over to other judicators');
          this.healthy = false;
        } else if (!this.healthy) {
          this.reason = `etcd does not answer (${describeError(error)})`;
        }
      }
      await sleep(intervalMs, signal);
    }
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    }),
  ]);
}

/** How long an executor's key read from its record serves its reports (ms). */
const EXECUTOR_KEY_CACHE_MS = 2_000;

/** Executors' process keys, read from their records and kept for a moment: a report must not cost a read. */
class ExecutorKeys {
  private readonly cache = new Map<string, { key: string | undefined; at: number }>();

  constructor(private readonly store: TaskStore) {}

  async get(name: string, options: { reread?: boolean } = {}): Promise<string | undefined> {
    const cached = this.cache.get(name);
    if (cached && !options.reread && Date.now() - cached.at < EXECUTOR_KEY_CACHE_MS) return cached.key;
    const key = await this.store.executorKey(name);
    this.cache.set(name, { key, at: Date.now() });
    return key;
  }
}

/**
 * What the store's opener needs of this node's mongod: config.mongodb is null where no mongodb module runs
 * (the MongoDB libraries then stay unloaded); else the mongod is looked for as that module looks for it,
 * so that both record the same `--store auto` decision.
 */
async function mongodbSettings(config: JudicatorConfig): Promise<{ availability: MongodAvailability; uri: string } | undefined> {
  if (!config.mongodb) return undefined;
  const { mongodAvailability } = await import('../mongodb/binary');
  return { availability: await mongodAvailability(config.mongodb), uri: config.mongodb.uri };
}

export async function runJudicator({ config, logger, roleDir, signal }: ModuleContext<JudicatorConfig>): Promise<void> {
  const keys = clusterKeys(config.etcd.prefix);
  const identityDir = path.resolve(roleDir, config.pki.identity_dir);
  const identity = LiveIdentity.load(identityDir, logger);
  const ca = await loadCertificateAuthority(identityDir);
  if (!ca) throw new ConfigError(`${identityDir} holds no cluster CA key (ca.key): every judicator holds it; join with a judicator's join token, or restore it from a backup`);
  const etcd = createEtcdClient(config.etcd.endpoints, { identity });
  const quorum = new QuorumWatch(etcd, keys.clusterStore, logger);
  const quorumLoop = quorum.run(config.quorum_check_interval * 1000, signal);

  const store = await openStore({
    flag: config.store,
    etcd: () => etcd,
    prefix: config.etcd.prefix,
    mongodb: await mongodbSettings(config),
    maxTaskSize: config.task.max_size,
    logger,
    signal,
  });
  if (!store) {
    etcd.close();
    return; // shutdown while waiting for etcd
  }
  const lifetimeMs = config.pki.cert_lifetime * 1000;
  const pkiStore = new EtcdPkiStore(() => etcd, config.etcd.prefix, logger);
  const identityDuties = new IdentityDuties({
    identity,
    ca,
    store: pkiStore,
    hosts: config.pki.hosts,
    lifetimeMs,
    tokenFile: path.resolve(roleDir, config.pki.join_token_file),
    acceptTokenFile: config.pki.accept_join_token_file,
    logger,
    print: (text) => process.stdout.write(`${text}\n`),
  });
  const joinServer = new JoinServer({ ca, store: pkiStore, logger, leafLifetimeMs: lifetimeMs });
  const scheduler = new Scheduler(store, { maxRetries: config.task.max_retries, maxWaitMs: config.rpc.max_wait_ms, heartbeatEveryMs: DEFAULT_HEARTBEAT_EVERY_MS }, logger);
  const events = new TaskEventHub(store, logger);
  const executorKeys = new ExecutorKeys(store);
  const directory = new JudicatorDirectory(() => etcd, config.etcd.prefix, logger);
  const election = new LeaderElection(() => etcd, { prefix: config.etcd.prefix, name: config.name, ttl: config.lead.ttl }, logger);
  const metrics = new JudicatorMetrics(store, () => election.isLeader);
  const registration = new LeasedRegistration(
    () => etcd,
    {
      key: keys.judicatorService(config.name),
      value: () => registrationValue({ address: `${config.advertise.address}:${config.advertise.port}`, etcd: config.etcd.advertise_client_url }),
      ttl: config.register.ttl,
    },
    logger,
  );
  const availability = (): { ok: true } | { ok: false; reason: string } => {
    const state = quorum.state();
    if (!state.ok) return state;
    return registration.isRegistered ? { ok: true } : { ok: false, reason: 'not registered in etcd yet' };
  };
  const judicators = async (): Promise<JudicatorEntry[]> => {
    const [entries, leader] = await Promise.all([directory.ensure(), currentLeader(etcd, config.etcd.prefix)]);
    return entries.map((entry) => ({
      name: entry.name,
      address: entry.address,
      leader: entry.name === leader,
      // Registered means its lease is kept, which needs the etcd quorum; this judicator knows its own state.
      healthy: entry.name === config.name ? availability().ok : true,
      ...(entry.etcd ? { etcd: entry.etcd } : {}),
    }));
  };
  const server = createRpcServer(
    {
      bodyLimit: 2 * config.task.max_size + 1024 * 1024,
      maxSearchResults: config.rpc.max_search_results,
      maxTaskSize: config.task.max_size,
      callbackAllow: config.callbacks.allow,
      executorTtlMs: config.executor.ttl * 1000,
    },
    {
      store,
      scheduler,
      events,
      identity,
      revocations: () => identityDuties.feed.current(),
      joinServer,
      availability,
      executorKey: (name, options) => executorKeys.get(name, options),
      judicators,
      createJoinToken: (request, by) => identityDuties.createToken(request, by),
      revoke: (request, by) => identityDuties.revoke(request, by),
      extraRoutes: (app) => metrics.routes(app),
      observe: (method, result, seconds, answer) => {
        metrics.rpcCalls.inc({ method, result: String(result) });
        metrics.rpcSeconds.observe({ method }, seconds);
        if (method === 'report' && result === 0) {
          const report = answer as { assign: unknown[] };
          metrics.assigned.inc(report.assign.length);
        }
      },
    },
    logger,
  );
  // Revocations are in force before the first call is taken.
  await identityDuties.feed.refresh();
  try {
    await server.listen({ host: config.listen.address, port: config.listen.port });
  } catch (error) {
    scheduler.close();
    events.close();
    await store.close();
    etcd.close();
    throw new Error(`cannot listen on ${config.listen.address}:${config.listen.port}: ${describeError(error)}`);
  }
  logger.info(
    { listen: config.listen, store: store.kind, certificate: identity.identity.serial, notAfter: identity.identity.notAfter.toISOString() },
    `judicator RPC listening on https://${config.listen.address}:${config.listen.port} (store: ${store.kind}; mutual TLS, certificate valid until ${identity.identity.notAfter.toISOString()})`,
  );

  const duties = new LeaderDuties(
    () => etcd,
    store,
    {
      prefix: config.etcd.prefix,
      interval: config.lead.interval,
      taskExpiration: config.task.expiration,
      maxRetries: config.task.max_retries,
      executorTtl: config.executor.ttl,
      executorExpiration: config.executor.expiration,
      memberGcAfter: config.etcd_member_gc_after,
      retention: config.task.retention,
    },
    { tls: () => identity.current, store: pkiStore, revoked: () => identityDuties.feed.refresh() },
    logger,
  );
  const callbacks = new CallbackSender(
    store,
    {
      allow: config.callbacks.allow,
      secretFile: config.callbacks.secret_file,
      timeoutMs: config.callbacks.timeout_ms,
      retryInitialMs: config.callbacks.retry_initial_ms,
      retryMaxMs: config.callbacks.retry_max_ms,
      maxAttempts: config.callbacks.max_attempts,
      pollMs: config.callbacks.poll_ms,
      concurrency: config.callbacks.concurrency,
    },
    logger,
  );
  await Promise.all([
    registration.run(signal),
    directory.run(signal),
    identityDuties.run(signal),
    election.run(signal, async (fence, leadSignal) => {
      const stillLeading = () => etcd.get(fence.key).exists().catch(() => false);
      await Promise.all([duties.run(fence, leadSignal), callbacks.run(fence, leadSignal, stillLeading)]);
    }),
    quorumLoop,
  ]);
  // Stop taking calls first (held reports and events calls are answered), then let go of the store.
  scheduler.close();
  events.close();
  await server.close();
  await store.close();
  etcd.close();
}
