// The judicator's main module: the task store, the RPC server executors, gateways and the CLI talk to,
// the registration under judicator/service/<name>, the quorum watch, and — on the elected judicator —
// the leader's duties and the delivery of finished tasks' callbacks.
import type { Etcd3 } from 'etcd3';
import { describeError } from '../common/errors';
import type { Logger } from '../common/logging';
import { sleep } from '../common/processes';
import type { ModuleContext } from '../common/module-context';
import { createEtcdClient } from '../etcd/client';
import { LeaderElection } from '../etcd/election';
import { parseExecutorRegistration, type ExecutorRegistration } from '../etcd/executor-registration';
import { clusterKeys } from '../etcd/keys';
import { LeasedRegistration } from '../etcd/registration';
import type { MongodAvailability } from '../store/open-store';
import { openStore } from '../store/open-store';
import { CallbackSender } from './callbacks';
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

/** How long an executor's registration key read from etcd serves its reports (ms). */
const EXECUTOR_KEY_CACHE_MS = 2_000;

/** Executors' registrations: their keys, read from etcd and kept for a moment (a report must not cost a read), and all of them for `executors`. */
class ExecutorKeys {
  private readonly cache = new Map<string, { key: string | undefined; at: number }>();

  constructor(
    private readonly etcd: Etcd3,
    private readonly prefix: string,
  ) {}

  async get(name: string): Promise<string | undefined> {
    const cached = this.cache.get(name);
    if (cached && Date.now() - cached.at < EXECUTOR_KEY_CACHE_MS) return cached.key;
    const value = await this.etcd.get(clusterKeys(this.prefix).executorService(name)).string();
    const key = parseExecutorRegistration(value)?.key;
    this.cache.set(name, { key, at: Date.now() });
    return key;
  }

  /** Every live executor's registration, by name (one read of the prefix). */
  async all(): Promise<Map<string, ExecutorRegistration>> {
    const prefix = clusterKeys(this.prefix).executorServices;
    const values = await this.etcd.getAll().prefix(prefix).strings();
    const out = new Map<string, ExecutorRegistration>();
    for (const [key, value] of Object.entries(values)) {
      const registration = parseExecutorRegistration(value);
      if (registration) out.set(key.slice(prefix.length), registration);
    }
    return out;
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

export async function runJudicator({ config, logger, signal }: ModuleContext<JudicatorConfig>): Promise<void> {
  const keys = clusterKeys(config.etcd.prefix);
  const etcd = createEtcdClient(config.etcd.endpoints);
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
  const scheduler = new Scheduler(store, { maxRetries: config.task.max_retries, maxWaitMs: config.rpc.max_wait_ms, heartbeatEveryMs: DEFAULT_HEARTBEAT_EVERY_MS }, logger);
  const events = new TaskEventHub(store, logger);
  const executorKeys = new ExecutorKeys(etcd, config.etcd.prefix);
  const election = new LeaderElection(() => etcd, { prefix: config.etcd.prefix, name: config.name, ttl: config.lead.ttl }, logger);
  const metrics = new JudicatorMetrics(store, () => election.isLeader);
  const registration = new LeasedRegistration(
    () => etcd,
    { key: keys.judicatorService(config.name), value: () => `${config.advertise.address}:${config.advertise.port}`, ttl: config.register.ttl },
    logger,
  );
  const server = createRpcServer(
    {
      clusterToken: config.cluster_token,
      bodyLimit: 2 * config.task.max_size + 1024 * 1024,
      maxSearchResults: config.rpc.max_search_results,
      maxTaskSize: config.task.max_size,
      callbackAllow: config.callbacks.allow,
    },
    {
      store,
      scheduler,
      events,
      availability: () => {
        const state = quorum.state();
        if (!state.ok) return state;
        return registration.isRegistered ? { ok: true } : { ok: false, reason: 'not registered in etcd yet' };
      },
      executorKey: (name) => executorKeys.get(name),
      executorRegistrations: () => executorKeys.all(),
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
  try {
    await server.listen({ host: config.listen.address, port: config.listen.port });
  } catch (error) {
    scheduler.close();
    events.close();
    await store.close();
    etcd.close();
    throw new Error(`cannot listen on ${config.listen.address}:${config.listen.port}: ${describeError(error)}`);
  }
  logger.info({ listen: config.listen, store: store.kind }, `judicator RPC listening on ${config.listen.address}:${config.listen.port} (store: ${store.kind})`);

  const duties = new LeaderDuties(
    () => etcd,
    store,
    {
      prefix: config.etcd.prefix,
      interval: config.lead.interval,
      taskExpiration: config.task.expiration,
      maxRetries: config.task.max_retries,
      executorExpiration: config.executor.expiration,
      memberGcAfter: config.etcd_member_gc_after,
      retention: config.task.retention,
    },
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
