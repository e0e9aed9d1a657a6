// The etcd module's process: prepares the data dir, works out how this member joins its cluster, runs
// the real etcd (from the binary embedded in kv2) with its output in the module log, restarts it when it
// stops answering, and on SIGINT leaves the cluster (unless last) and stops etcd cleanly. etcd serves its
// client and peer ports over mutual TLS with the node's cluster certificate (src/pki/etcd-tls.ts): only
// judicators reach either port. A member that leaves revokes its own certificate first.
import type { ChildProcess } from 'node:child_process';
import type { Etcd3 } from 'etcd3';
import fs from 'node:fs';
import path from 'node:path';
import { resolveProgram } from '../common/assets';
import { ConfigError, describeError } from '../common/errors';
import { levelFromWord, type Logger } from '../common/logging';
import { exited, forEachLine, sleep, spawnInGroup, stopChild } from '../common/processes';
import type { ModuleContext } from '../common/module-context';
import { EtcdPkiStore } from '../pki/etcd-pki-store';
import { etcdTlsFlags } from '../pki/etcd-tls';
import { identityPaths } from '../pki/identity-files';
import { reissueJudicatorCertificate } from '../pki/init-identity';
import { identityReloadInterval, LiveIdentity } from '../pki/live-identity';
import { revokeNode } from '../pki/pki-store';
import { JudicatorRpcClient } from '../rpc/client';
import { createEtcdClient, getFromMember, type EtcdIdentity } from './client';
import {
  ForceNewClusterMarker,
  emptyDir,
  hasMemberData,
  readKnownPeers,
  restoreFromInitDir,
  writeKnownPeers,
} from './member-data';
import { localClientUrl, type EtcdConfig } from './config';
import { MAX_TXN_OPS } from './server-settings';
import { clusterKeys } from './keys';
import { joinOrFound, leaveCluster, serviceCandidates, type SelfUrls, type StartPlan } from './membership';

/** etcd's words for "this member was removed from the cluster" (it then exits and must start afresh). */
const REMOVED_PATTERN = /permanently removed|member has already been removed|the member has been removed/i;
/** How often the member records the cluster's member list (for rejoining after losing its data). */
const PEERS_SAVE_MS = 30_000;

/** Milliseconds one liveness check of the local etcd may take. */
const LIVENESS_TIMEOUT_MS = 2_000;

export async function runEtcdMember({ config, logger, roleDir, signal, configFile }: ModuleContext<EtcdConfig> & { configFile: string }): Promise<void> {
  const exe = config.exe ?? resolveProgram('etcd');
  if (!exe) throw new ConfigError('no etcd binary: this kv2 build embeds none and none is installed; set "exe" in config/etcd.json or KV2_ETCD_BINARY');
  const self: SelfUrls = {
    name: config.name,
    peerUrl: `https://${config.advertise.address}:${config.advertise.peer_port}`,
    clientUrl: `https://${config.advertise.address}:${config.advertise.client_port}`,
  };
  const identityDir = path.resolve(roleDir, config.identity_dir);
  // A member removed (and revoked) by the others while it was down comes back with a certificate issued
  // after that: it holds the CA key. etcd reads the certificate files at every handshake by itself; this
  // module's own clients follow them.
  await reissueJudicatorCertificate(identityDir, logger);
  const identity = LiveIdentity.load(identityDir, logger);
  if (!fs.existsSync(identityPaths(identityDir).crl)) {
    throw new ConfigError(`${identityPaths(identityDir).crl} is missing: etcd refuses every connection without its CRL; start the judicator with kv2 judicator (its start writes one)`);
  }
  const watching = new AbortController();
  void identity.watch(watching.signal, identityReloadInterval(identity.identity));
  try {
    await runMember(exe, config, self, identity, logger, roleDir, signal, configFile);
  } finally {
    watching.abort();
  }
}

async function runMember(
  exe: string,
  config: EtcdConfig,
  self: SelfUrls,
  identity: LiveIdentity,
  logger: Logger,
  roleDir: string,
  signal: AbortSignal,
  configFile: string,
): Promise<void> {
  const dataDir = path.resolve(roleDir, config.data_dir);
  const peersFile = path.resolve(roleDir, 'data', 'etcd_cluster.json');
  const marker = new ForceNewClusterMarker(path.resolve(roleDir, 'data', 'etcd_forced'), configFile);

  const restored = restoreFromInitDir(
    { initDir: path.resolve(roleDir, config.data_init_dir), dataDir, name: config.name, peerUrl: self.peerUrl, etcdctl: () => config.etcdctl ?? resolveProgram('etcdctl') },
    logger,
  );
  let force = restored === 'data-dir';
  if (config.cluster.type === 'init' && !config.cluster.member && hasMemberData(dataDir) && !marker.alreadyForced()) {
    force = true;
    logger.warn('config/etcd.json says {"type":"init"} and data exists: forcing a new one-member cluster from this data (disaster recovery)');
  }
  // After a restore or a forced new cluster, the peers of the old cluster must not be rejoined.
  if (restored !== 'none' || force) fs.rmSync(peersFile, { force: true });

  let plan: StartPlan | undefined;
  if (!hasMemberData(dataDir)) {
    plan = await planFirstStart(config, self, peersFile, identity, logger, signal);
    logger.info({ state: plan.state, initialCluster: plan.initialCluster }, plan.how);
  } else {
    logger.info({ dataDir, force }, force ? 'starting etcd on its data as a new one-member cluster' : 'restarting etcd on its existing data');
  }
  if (signal.aborted) {
    await plan?.abandon?.();
    return;
  }

  const args = etcdArgs(config, self, dataDir, identity.dir, plan, force);
  const etcd = spawnInGroup(exe, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  logger.info({ exe, pid: etcd.pid, args }, `etcd started (pid ${etcd.pid})`);
  let removed = false;
  const onLine = (line: string) => {
    if (REMOVED_PATTERN.test(line)) removed = true;
    logEtcdLine(logger, line);
  };
  forEachLine(etcd.stdout, onLine);
  forEachLine(etcd.stderr, onLine);
  const etcdExit = exited(etcd);

  const stopping = new AbortController();
  signal.addEventListener('abort', () => stopping.abort(), { once: true });
  void etcdExit.then(() => stopping.abort());

  const ready = await waitUntilLive(config, identity, stopping.signal);
  if (ready) {
    logger.info({ client: localClientUrl(config) }, 'etcd is answering');
    if (force) marker.record();
    try {
      await plan?.afterReady?.();
    } catch (error) {
      logger.error({ err: describeError(error) }, 'could not finish joining; restarting etcd to try again');
      await stopEtcd(etcd, config, logger);
      return fail('join did not complete');
    }
    void savePeersLoop(config, peersFile, identity, logger, stopping.signal);
    await watchLiveness(config, etcd, identity, logger, stopping.signal);
  } else if (!signal.aborted) {
    await plan?.abandon?.();
  }

  if (signal.aborted) {
    if (!ready) await plan?.abandon?.();
    // A graceful stop: leave the cluster unless last, so the others keep their quorum without us; and
    // revoke this judicator's certificate first, so a copy of it left on this machine opens nothing. A new
    // one is issued at once (a judicator holds the CA key), for the next start to join again with.
    let revoked = false;
    const revokeSelf = async (client: Etcd3) => {
      // The members as they are now, for the next start to rejoin (the list saved every PEERS_SAVE_MS may
      // predate the last joins: a member that then found no peer would found a second cluster).
      await savePeers(client, peersFile).catch((error) => logger.warn({ err: describeError(error) }, 'could not record the member list before leaving'));
      const { name } = identity.identity;
      const serials = await revokeNode(new EtcdPkiStore(client, config.prefix, logger), { name, role: 'judicator', reason: 'left the cluster (graceful stop)' });
      revoked = true;
      logger.info({ name, serials: serials.map((r) => r.serial) }, `revoked judicator ${name}'s certificates before leaving`);
    };
    const left = etcdAlive(etcd) ? await leaveCluster(localClientUrl(config), config.name, identity, logger, revokeSelf) : false;
    await stopEtcd(etcd, config, logger);
    if (revoked) {
      await sleep(1); // issued strictly after the revocation
      await reissueJudicatorCertificate(identity.dir, logger).catch((error) => logger.error({ err: describeError(error) }, 'could not issue a new certificate after leaving; the next start issues one'));
    }
    if (left) {
      // The data of a removed member cannot be started again; the peers file lets it rejoin later.
      emptyDir(dataDir);
      logger.info('left the cluster: data dir emptied; the next start joins the cluster again');
    }
    return;
  }

  if (!ready && etcdAlive(etcd)) {
    await stopEtcd(etcd, config, logger);
    return fail(`etcd did not answer within ${config.health.start_timeout} s`);
  }
  const status = await etcdExit;
  if (removed) {
    logger.warn('this member was removed from the cluster: emptying its data dir so that it joins again on the next start');
    emptyDir(dataDir);
    return fail('member removed from the cluster');
  }
  await stopEtcd(etcd, config, logger);
  return fail(ready ? `etcd exited (${status})` : `etcd exited (${status}) before it answered; its last log lines above say why`);

  function fail(reason: string): never {
    logger.error({ reason }, `etcd module stopping: ${reason}; the supervisor restarts it`);
    process.exit(1);
  }
}

async function planFirstStart(
  config: EtcdConfig,
  self: SelfUrls,
  peersFile: string,
  identity: LiveIdentity,
  logger: Logger,
  signal: AbortSignal,
): Promise<StartPlan> {
  const known = readKnownPeers(peersFile);
  const knownUrls = (known?.members ?? []).filter((m) => m.name !== config.name).flatMap((m) => m.clientUrls);
  const common = {
    self,
    timeoutMs: config.join.timeout * 1000,
    lockKey: clusterKeys(config.prefix).joinLock,
    lockTtl: config.join.lock_ttl,
    identity,
    logger,
    signal,
  };
  const cluster = config.cluster;
  switch (cluster.type) {
    case 'independent':
    case 'init':
      if (knownUrls.length > 0) {
        // This member belonged to a cluster and lost its data (it left, or was removed): go back to it
        // rather than found a second cluster. Delete data/etcd_cluster.json to found a new one instead.
        logger.info({ peers: knownUrls, file: peersFile }, 'this member belonged to a cluster before: rejoining it');
        return joinOrFound({ ...common, candidates: async () => knownUrls, mayFound: false });
      }
      if (cluster.type === 'init' && cluster.member) {
        return { state: 'new', initialCluster: cluster.member, how: 'bootstrapping a new cluster from the static member list' };
      }
      return { state: 'new', initialCluster: `${self.name}=${self.peerUrl}`, how: 'founding a new one-member cluster' };
    case 'join': {
      const listed = cluster.client.split(',').map((s) => s.trim()).filter(Boolean);
      const mayFound = listed.some((url) => url.replace(/\/+$/, '') === self.clientUrl);
      return joinOrFound({ ...common, candidates: async () => [...listed, ...knownUrls], mayFound });
    }
    case 'service':
      return joinOrFound({
        ...common,
        candidates: async () => [...(await serviceCandidates(cluster.service, Number(cluster.client_port))), ...knownUrls],
        mayFound: true,
      });
    case 'judicators':
      return joinOrFound({
        ...common,
        candidates: async () => [...(await judicatorsEtcdUrls(cluster.addresses, identity, logger)), ...knownUrls],
        mayFound: false,
      });
  }
}

/** Milliseconds the judicators reached through `--join` get to say where their etcd members are. */
const JUDICATORS_CALL_TIMEOUT_MS = 5_000;

/** The etcd client URLs of the judicators answering at `addresses` (their RPC), or none when none answers. */
async function judicatorsEtcdUrls(addresses: readonly string[], identity: LiveIdentity, logger: Logger): Promise<string[]> {
  const rpc = new JudicatorRpcClient({ source: { addresses: async () => [...addresses] }, identity, timeoutMs: JUDICATORS_CALL_TIMEOUT_MS, retryForMs: 0 });
  try {
    const answer = await rpc.call('judicators', {});
    return answer.judicators.flatMap((j) => (j.etcd ? [j.etcd] : []));
  } catch (error) {
    logger.debug({ addresses, err: describeError(error) }, 'the judicators to join do not answer yet');
    return [];
  } finally {
    rpc.close();
  }
}

export function etcdArgs(config: EtcdConfig, self: SelfUrls, dataDir: string, identityDir: string, plan: StartPlan | undefined, force: boolean): string[] {
  const { listen } = config;
  const clientUrls = [`https://${listen.address}:${listen.client_port}`];
  if (!['0.0.0.0', '::', '127.0.0.1', 'localhost'].includes(listen.address)) clientUrls.push(`https://127.0.0.1:${listen.client_port}`);
  const args = [
    '--name', config.name,
    '--data-dir', dataDir,
    '--listen-peer-urls', `https://${listen.address}:${listen.peer_port}`,
    '--listen-client-urls', clientUrls.join(','),
    '--initial-advertise-peer-urls', self.peerUrl,
    '--advertise-client-urls', self.clientUrl,
    '--initial-cluster-token', 'kv2',
    `--strict-reconfig-check=${config.strict_reconfig}`,
    '--max-request-bytes', String(config.max_request_bytes),
    '--quota-backend-bytes', String(config.quota_backend_bytes),
    // Batched scheduling transactions carry several operations per task.
    '--max-txn-ops', String(MAX_TXN_OPS),
    '--auto-compaction-mode', 'periodic',
    '--auto-compaction-retention', `${config.compaction_retention_hours}h`,
    '--logger', 'zap',
    '--log-outputs', 'stderr',
    '--enable-v2=false',
    // Mutual TLS on both ports, judicators only, the CRL read at every handshake (src/pki/etcd-tls.ts).
    ...etcdTlsFlags(identityDir, { crl: true }),
  ];
  if (plan) args.push('--initial-cluster', plan.initialCluster, '--initial-cluster-state', plan.state);
  else args.push('--initial-cluster', `${self.name}=${self.peerUrl}`);
  if (force) args.push('--force-new-cluster');
  return args;
}

/**
 * etcd's built-in JSON gateway dials etcd's own client port without checking the server certificate, so
 * it never passes the judicators-only client check (src/pki/etcd-tls.ts) and says so, with a growing
 * backoff. kv2 does not use that gateway: these lines go to the debug level.
 */
const OWN_GATEWAY_NOISE = /grpc: addrConn\.createTransport failed to connect to .*client certificate authentication failed/;

/** etcd logs JSON lines (zap); each becomes one line of the module log at etcd's own severity. */
function logEtcdLine(logger: Logger, line: string): void {
  if (OWN_GATEWAY_NOISE.test(line)) {
    logger.debug({ source: 'etcd' }, line);
    return;
  }
  if (!line.startsWith('{')) {
    logger.info({ source: 'etcd' }, line);
    return;
  }
  try {
    const { level, msg, ts: _ts, caller: _caller, ...fields } = JSON.parse(line) as Record<string, unknown>;
    logger[levelFromWord(String(level))]({ source: 'etcd', ...fields }, String(msg ?? ''));
  } catch {
    logger.info({ source: 'etcd' }, line);
  }
}

async function isLive(config: EtcdConfig, identity: EtcdIdentity): Promise<boolean> {
  try {
    const { status } = await getFromMember(localClientUrl(config), '/version', identity.current, LIVENESS_TIMEOUT_MS);
    return status === 200;
  } catch {
    return false;
  }
}

async function waitUntilLive(config: EtcdConfig, identity: EtcdIdentity, signal: AbortSignal): Promise<boolean> {
  const deadline = Date.now() + config.health.start_timeout * 1000;
  while (!signal.aborted && Date.now() < deadline) {
    if (await isLive(config, identity)) return true;
    await sleep(200, signal);
  }
  return false;
}

/** Checks etcd every interval; after `failures` misses in a row, kills it so the module restarts it. */
async function watchLiveness(config: EtcdConfig, etcd: ChildProcess, identity: EtcdIdentity, logger: Logger, signal: AbortSignal): Promise<void> {
  let misses = 0;
  while (!signal.aborted) {
    await sleep(config.health.interval * 1000, signal);
    if (signal.aborted) return;
    if (await isLive(config, identity)) {
      misses = 0;
      continue;
    }
    misses++;
    logger.warn({ misses, of: config.health.failures }, 'etcd did not answer a liveness check');
    if (misses >= config.health.failures) {
      logger.error(`etcd failed ${misses} liveness checks in a row; killing it so that it restarts`);
      await stopChild(etcd, { signal: 'SIGKILL', graceMs: 1_000 });
      return;
    }
  }
}

async function savePeersLoop(config: EtcdConfig, file: string, identity: EtcdIdentity, logger: Logger, signal: AbortSignal): Promise<void> {
  const client = createEtcdClient([localClientUrl(config)], { identity, callTimeoutMs: 5_000 });
  try {
    while (!signal.aborted) {
      try {
        await savePeers(client, file);
      } catch (error) {
        logger.debug({ err: describeError(error) }, 'could not read the member list');
      }
      await sleep(PEERS_SAVE_MS, signal);
    }
  } finally {
    client.close();
  }
}

/** Records the cluster's member list in `file`, for rejoining after losing the data. */
async function savePeers(client: Etcd3, file: string): Promise<void> {
  const { members, header } = await client.cluster.memberList({});
  writeKnownPeersSafe(file, {
    clusterId: header.cluster_id,
    members: members.map((m) => ({ name: m.name, peerUrls: m.peerURLs, clientUrls: m.clientURLs })),
    savedAt: new Date().toISOString(),
  });
}

function writeKnownPeersSafe(file: string, peers: Parameters<typeof writeKnownPeers>[1]): void {
  try {
    writeKnownPeers(file, peers);
  } catch {
    // best effort: the file only helps a member that lost its data find its cluster
  }
}

function etcdAlive(etcd: ChildProcess): boolean {
  return etcd.exitCode === null && etcd.signalCode === null;
}

async function stopEtcd(etcd: ChildProcess, config: EtcdConfig, logger: Logger): Promise<void> {
  if (etcd.exitCode === null && etcd.signalCode === null) logger.info('stopping etcd');
  await stopChild(etcd, { signal: 'SIGTERM', graceMs: config.stop_timeout * 1000 });
}
