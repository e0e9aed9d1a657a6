// Cluster membership of an etcd member: finding the running cluster among candidate URLs, joining it
// (one joiner at a time, under a lock kept in etcd; as a learner, promoted once in sync), and leaving it
// on a graceful stop. This is where the original's split brains and failed concurrent joins are fixed.
import dns from 'node:dns/promises';
import os from 'node:os';
import type { Etcd3 } from 'etcd3';
import { UnavailableError, describeError } from '../common/errors';
import type { Logger } from '../common/logging';
import { sleep } from '../common/processes';
import { createEtcdClient, normaliseEndpoint, type EtcdIdentity } from './client';

export interface SelfUrls {
  name: string;
  peerUrl: string;
  clientUrl: string;
}

/** What etcd needs to know to start for the first time on an empty data dir. */
export interface StartPlan {
  state: 'new' | 'existing';
  initialCluster: string;
  /** Runs once the new member answers: promote the learner, release the join lock. */
  afterReady?: () => Promise<void>;
  /** Runs if the start fails before afterReady: release the join lock. */
  abandon?: () => Promise<void>;
  /** For logs. */
  how: string;
}

const PROBE_TIMEOUT_MS = 3_000;
const FIND_RETRY_MS = 2_000;
/** How long "nobody answers and I sort first" must hold before a member founds the cluster. */
const FOUND_SETTLE_MS = 4_000;

/** A cluster reached through `client`, with its member list. */
interface FoundCluster {
  client: Etcd3;
  via: string;
}

/** Tries each candidate client URL in turn; returns a client of the first that answers a member list. */
export async function findRunningCluster(candidates: readonly string[], identity: EtcdIdentity, logger: Logger): Promise<FoundCluster | undefined> {
  for (const url of candidates) {
    const client = createEtcdClient([url], { identity, dialTimeoutMs: PROBE_TIMEOUT_MS, callTimeoutMs: PROBE_TIMEOUT_MS, faultHandling: false });
    try {
      await client.cluster.memberList({});
      return { client, via: url };
    } catch (error) {
      logger.debug({ url, err: describeError(error) }, 'no etcd cluster answers here');
      client.close();
    }
  }
  return undefined;
}

/** docker swarm: the client URLs of a service's tasks, from DNS `tasks.<service>`. */
export async function serviceCandidates(service: string, clientPort: number): Promise<string[]> {
  try {
    const addresses = await dns.lookup(`tasks.${service}`, { all: true, family: 4 });
    return addresses.map((a) => `https://${a.address}:${clientPort}`);
  } catch {
    return [];
  }
}

/** True when `url` points at this machine's own addresses on `clientPort` (swarm: our own task). */
export function isOwnUrl(url: string, self: SelfUrls): boolean {
  const normalised = normaliseEndpoint(url, 'https');
  if (normalised === normaliseEndpoint(self.clientUrl, 'https')) return true;
  const parsed = new URL(normalised);
  const own = Object.values(os.networkInterfaces())
    .flat()
    .map((a) => a?.address);
  return parsed.port === new URL(self.clientUrl).port && own.includes(parsed.hostname);
}

/**
 * Finds the running cluster among `candidates` and joins it. When none answers and `mayFound` (this
 * member is itself a candidate), the member whose URL sorts first founds the cluster and the others wait
 * for it: so members started at the same moment end as one cluster, never two.
 */
export async function joinOrFound(options: {
  self: SelfUrls;
  candidates: () => Promise<string[]>;
  mayFound: boolean;
  timeoutMs: number;
  /** Milliseconds the "no cluster, and I am first" finding must hold before this member founds one. */
  settleMs?: number;
  lockKey: string;
  lockTtl: number;
  /** The member's cluster identity: every etcd member serves and checks mutual TLS. */
  identity: EtcdIdentity;
  logger: Logger;
  signal: AbortSignal;
}): Promise<StartPlan> {
  const { self, logger, signal } = options;
  const deadline = Date.now() + options.timeoutMs;
  let lastWaitLog = 0;
  let foundingSince: number | undefined;
  while (!signal.aborted && Date.now() < deadline) {
    const all = [...new Set((await options.candidates()).map((url) => normaliseEndpoint(url, 'https')))];
    const others = all.filter((url) => !isOwnUrl(url, self));
    const found = await findRunningCluster(others, options.identity, logger);
    if (found) {
      try {
        return await joinCluster(found, { ...options, deadline });
      } catch (error) {
        found.client.close();
        logger.warn({ via: found.via, err: describeError(error) }, 'joining the cluster failed; trying again');
        await sleep(FIND_RETRY_MS, signal);
        continue;
      }
    }
    if (options.mayFound) {
      const first = [...others, normaliseEndpoint(self.clientUrl, 'https')].sort()[0];
      if (others.length === 0 || first === normaliseEndpoint(self.clientUrl, 'https')) {
        // Found only if that still holds a moment later: a candidate that founded just before us may
        // not answer yet (its etcd is starting), and two founders would make two clusters.
        if (foundingSince === undefined) foundingSince = Date.now();
        if (Date.now() - foundingSince >= (options.settleMs ?? FOUND_SETTLE_MS)) {
          return { state: 'new', initialCluster: `${self.name}=${self.peerUrl}`, how: 'founding a new cluster (no running cluster found among the candidates)' };
        }
        await sleep(500, signal);
        continue;
      }
    }
    foundingSince = undefined;
    if (Date.now() - lastWaitLog > 15_000) {
      lastWaitLog = Date.now();
      logger.info({ candidates: others }, 'no running etcd cluster answers yet; waiting for one (the first candidate founds it)');
    }
    await sleep(FIND_RETRY_MS, signal);
  }
  throw new UnavailableError(
    `could not find or join an etcd cluster within ${options.timeoutMs / 1000} s; ` +
      'check that a judicator of the cluster is running and reachable, then this module restarts and tries again',
  );
}

async function joinCluster(
  found: FoundCluster,
  options: { self: SelfUrls; lockKey: string; lockTtl: number; logger: Logger; signal: AbortSignal; deadline: number },
): Promise<StartPlan> {
  const { client } = found;
  const { self, logger } = options;
  const lock = await acquireLock(client, options.lockKey, self.name, options.lockTtl, options.deadline, options.signal, logger);
  const release = async () => {
    await lock.release();
    client.close();
  };
  try {
    const { members } = await client.cluster.memberList({});
    let selfId: string | undefined;
    for (const member of members) {
      const samePeer = member.peerURLs.includes(self.peerUrl);
      const started = member.clientURLs.length > 0;
      if (samePeer && !started && (member.name === '' || member.name === self.name)) {
        selfId = member.ID; // added by an earlier attempt of ours that did not get to start: reuse it
        continue;
      }
      // A stale incarnation of this member (same name or address, lost its data), or a joiner that died
      // after adding itself (unnamed, never started; joiners are serialized so it is not in progress).
      if (member.name === self.name || samePeer || (member.name === '' && !started)) {
        logger.warn({ member: member.name || '(unstarted)', id: member.ID, peers: member.peerURLs }, 'removing a stale member before joining');
        await client.cluster.memberRemove({ ID: member.ID });
      }
    }
    let learner = false;
    if (!selfId) {
      const added = await addSelf(client, self.peerUrl, logger);
      selfId = added.id;
      learner = added.learner;
    }
    const current = await client.cluster.memberList({});
    const initialCluster = current.members
      .map((m) => (m.ID === selfId ? `${self.name}=${self.peerUrl}` : m.name ? `${m.name}=${m.peerURLs[0]}` : ''))
      .filter(Boolean)
      .join(',');
    const id = selfId;
    return {
      state: 'existing',
      initialCluster,
      how: `joining the cluster through ${found.via}${learner ? ' as a learner' : ''}`,
      afterReady: async () => {
        try {
          if (learner) await promote(client, id, options.deadline, options.signal, logger);
        } finally {
          await release();
        }
      },
      abandon: release,
    };
  } catch (error) {
    await release();
    throw error;
  }
}

/** How long a leaving member retries while etcd refuses the removal as "unhealthy cluster". */
const LEAVE_RETRY_MS = 10_000;

/** Seconds etcd may keep refusing a member add as "unhealthy cluster" right after another member joined. */
const ADD_RETRY_MS = 30_000;

async function addSelf(client: Etcd3, peerUrl: string, logger: Logger): Promise<{ id: string; learner: boolean }> {
  const deadline = Date.now() + ADD_RETRY_MS;
  try {
    for (;;) {
      try {
        const response = await client.cluster.memberAdd({ peerURLs: [peerUrl], isLearner: true });
        return { id: response.member.ID, learner: true };
      } catch (error) {
        // etcd refuses reconfiguration until every member has been connected for a few seconds (strict
        // reconfig check): the member that joined just before us is still settling. Wait, holding the lock.
        if (!/unhealthy cluster/i.test(describeError(error)) || Date.now() > deadline) throw error;
        logger.debug('etcd says the cluster is still settling after the previous join; retrying the member add');
        await sleep(500);
      }
    }
  } catch (error) {
    // etcd before 3.4 has no learners: add as a voting member (the join lock still keeps it one at a time).
    if (!/learner/i.test(describeError(error))) throw error;
    logger.info('this etcd cannot add learners; adding as a voting member');
    const response = await client.cluster.memberAdd({ peerURLs: [peerUrl] });
    return { id: response.member.ID, learner: false };
  }
}

/** Promotes the learner once it has caught up with the leader (etcd refuses before that). */
async function promote(client: Etcd3, id: string, deadline: number, signal: AbortSignal, logger: Logger): Promise<void> {
  let attempt = 0;
  while (!signal.aborted) {
    try {
      await client.cluster.memberPromote({ ID: id });
      logger.info({ id }, 'promoted to a voting member');
      return;
    } catch (error) {
      attempt++;
      if (Date.now() > deadline) throw new UnavailableError(`could not promote this learner: ${describeError(error)}`);
      if (attempt % 20 === 0) logger.info({ err: describeError(error) }, 'learner not in sync yet; still waiting to promote it');
      await sleep(500, signal);
    }
  }
}

/**
 * A lock in etcd: a key created only if absent, attached to a lease kept alive while held. A holder that
 * dies loses its lease after `ttl` seconds, and the lock with it.
 */
export async function acquireLock(
  client: Etcd3,
  key: string,
  holder: string,
  ttl: number,
  deadline: number,
  signal: AbortSignal,
  logger: Logger,
): Promise<{ release: () => Promise<void> }> {
  const lease = client.lease(ttl, { autoKeepAlive: true });
  lease.on('lost', () => logger.warn({ key }, 'lost the lease of a lock we hold'));
  const leaseId = await lease.grant();
  let waitingLogged = false;
  while (true) {
    const result = await client
      .if(key, 'Create', '==', 0)
      .then(client.put(key).value(holder).lease(leaseId))
      .else(client.get(key))
      .commit();
    if (result.succeeded) {
      return {
        release: async () => {
          await lease.revoke().catch(() => undefined);
        },
      };
    }
    if (signal.aborted || Date.now() > deadline) {
      await lease.revoke().catch(() => undefined);
      throw new UnavailableError(`timed out waiting for the lock ${key}`);
    }
    const current = result.responses[0]?.response_range?.kvs[0]?.value.toString();
    if (current === holder) {
      // Our own lock, left by an earlier attempt of this member whose release did not reach etcd: names are
      // unique, so no one else holds it. Take it back instead of waiting out its lease.
      await client.if(key, 'Value', '==', holder).then(client.delete().key(key)).commit();
      continue;
    }
    if (!waitingLogged) {
      logger.info({ key, holder: current }, `waiting for ${current ?? 'another member'} to finish joining`);
      waitingLogged = true;
    }
    await sleep(500, signal);
  }
}

/**
 * Leaves the cluster on a graceful stop, unless this is the last voting member (then the data stays and
 * the cluster with it). `beforeLeave` runs just before the removal, while this member still reaches the
 * cluster (the judicator revokes its own certificate there). Returns true if the member was removed.
 */
export async function leaveCluster(
  localClientUrl: string,
  selfName: string,
  identity: EtcdIdentity,
  logger: Logger,
  beforeLeave?: (client: Etcd3) => Promise<void>,
): Promise<boolean> {
  const client = createEtcdClient([localClientUrl], { identity, dialTimeoutMs: 2_000, callTimeoutMs: 5_000, faultHandling: false });
  try {
    const { members, header } = await client.cluster.memberList({});
    const self = members.find((m) => m.ID === header.member_id) ?? members.find((m) => m.name === selfName);
    if (!self) return false;
    const others = members.filter((m) => m.ID !== self.ID && !m.isLearner);
    if (others.length === 0) {
      logger.info('this is the last member of the cluster; keeping it (and its data)');
      return false;
    }
    await beforeLeave?.(client);
    const deadline = Date.now() + LEAVE_RETRY_MS;
    for (;;) {
      try {
        await client.cluster.memberRemove({ ID: self.ID });
        break;
      } catch (error) {
        // Right after a membership change etcd refuses another one for a few seconds (strict reconfig).
        if (!/unhealthy cluster/i.test(describeError(error)) || Date.now() > deadline) throw error;
        await sleep(500);
      }
    }
    logger.info({ id: self.ID, remaining: others.map((m) => m.name) }, 'left the etcd cluster');
    return true;
  } catch (error) {
    logger.warn({ err: describeError(error) }, 'could not leave the etcd cluster (no quorum?); stopping without leaving');
    return false;
  } finally {
    client.close();
  }
}
