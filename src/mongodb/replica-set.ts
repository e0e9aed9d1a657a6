// The replica set, seen from one member, one round every `reconcile.interval` seconds:
// - not initiated: initiate it exactly once cluster-wide, through the mongodb/init marker in etcd
//   (claim under a lease, replSetInitiate, confirm), unless a registered member already runs the set;
// - primary: membership follows the registrations (reconcile.ts);
// - alone (everyone else gone for good): force a one-member config, the disaster-recovery case;
// - holding a config it is not part of while the set runs elsewhere: ask for a resync (wipe and rejoin).
import type { Etcd3 } from 'etcd3';
import { MongoClient, type Db } from 'mongodb';
import { describeError } from '../common/errors';
import type { Logger } from '../common/logging';
import { sleep } from '../common/processes';
import { clusterKeys } from '../etcd/keys';
import { ErrorCode, MemberState, getConfig, getStatus, hello, initiate, reconfig, serverErrorCode, type HelloReply } from './commands';
import { InitMarker } from './init-marker';
import type { MongodbConfig } from './config';
import { planForcedSingleMember, planReconcile, trackUnregistered } from './reconcile';

export interface ReplicaSetDeps {
  config: MongodbConfig;
  /** A direct connection's admin database on the local mongod. */
  admin: Db;
  etcd: () => Etcd3;
  /** This member's host:port (its identity in the set and its registration value). */
  self: string;
  /** Whether our registration is in etcd now: a primary reconciles only while it sees itself registered. */
  registered: () => boolean;
  logger: Logger;
  /** Called when this member must drop its data and sync from the set again (it was removed). */
  requestResync: (reason: string) => void;
}

/** How long the initiator waits for its fresh one-member set to elect it before confirming the marker. */
const INITIATE_CONFIRM_MS = 30_000;
/** Connection timeouts for looking at another registered member (hello). */
const PEEK_TIMEOUT_MS = 3_000;

export class ReplicaSetManager {
  private readonly keys;
  private readonly marker: InitMarker;
  private readonly unregisteredSince = new Map<string, number>();
  /** Since when a permanent marker has had no live set behind it (set-gone check). */
  private noSetSince: number | undefined;
  /** Since when this member holds a config it is not part of. */
  private detachedSince: number | undefined;
  /** Since when every other member has been unregistered and unreachable. */
  private aloneSince: number | undefined;
  private lastWaitLog = 0;

  constructor(private readonly deps: ReplicaSetDeps) {
    this.keys = clusterKeys(deps.config.etcd.prefix);
    this.marker = new InitMarker(deps.etcd, this.keys.mongodbInit, deps.logger);
  }

  async run(signal: AbortSignal): Promise<void> {
    const { logger, config } = this.deps;
    while (!signal.aborted) {
      try {
        await this.round();
      } catch (error) {
        logger.warn({ err: describeError(error) }, 'replica-set round failed; trying again next round');
      }
      await sleep(config.reconcile.interval * 1000, signal);
    }
  }

  /** One pass; exported for tests that drive it step by step. */
  async round(): Promise<void> {
    const me = await hello(this.deps.admin);
    if (!me.setName) {
      this.aloneSince = undefined;
      if (await this.holdsForeignConfig()) return this.whenDetached();
      this.detachedSince = undefined;
      return this.initiateIfNeeded();
    }
    this.detachedSince = undefined;
    this.noSetSince = undefined;
    if (me.setName !== this.deps.config.replica_set) {
      this.deps.logger.error({ setName: me.setName, expected: this.deps.config.replica_set }, 'mongod belongs to another replica set than configured');
      return;
    }
    if (me.isWritablePrimary) {
      this.aloneSince = undefined;
      await this.adoptMarker();
      if (this.deps.registered()) await this.reconcile();
      return;
    }
    await this.recoverIfAlone(me);
  }

  // ---- not initiated ----

  /** replSetGetStatus 93: a config without us in it (removed, or restored data from other hosts). */
  private async holdsForeignConfig(): Promise<boolean> {
    try {
      await getStatus(this.deps.admin);
      return false;
    } catch (error) {
      const code = serverErrorCode(error);
      if (code === ErrorCode.NotYetInitialized) return false;
      if (code === ErrorCode.InvalidReplicaSetConfig) return true;
      throw error;
    }
  }

  private async registeredHosts(): Promise<Map<string, string>> {
    const all = await this.deps.etcd().getAll().prefix(this.keys.mongodbRegistrations).strings();
    const hosts = new Map<string, string>();
    for (const [key, value] of Object.entries(all)) hosts.set(key.slice(this.keys.mongodbRegistrations.length), value);
    return hosts;
  }

  /** hello of every other registered member: who runs our set, who does not, who did not answer. */
  private async peek(hosts: Iterable<string>): Promise<{ inSet: string[]; notInSet: string[]; silent: string[] }> {
    const result = { inSet: [] as string[], notInSet: [] as string[], silent: [] as string[] };
    await Promise.all(
      [...hosts].filter((h) => h !== this.deps.self).map(async (host) => {
        const client = new MongoClient(`mongodb://${host}/?directConnection=true`, {
          serverSelectionTimeoutMS: PEEK_TIMEOUT_MS,
          connectTimeoutMS: PEEK_TIMEOUT_MS,
        });
        try {
          const reply = await hello(client.db('admin'));
          (reply.setName === this.deps.config.replica_set ? result.inSet : result.notInSet).push(host);
        } catch {
          result.silent.push(host);
        } finally {
          await client.close().catch(() => undefined);
        }
      }),
    );
    return result;
  }

  private async initiateIfNeeded(): Promise<void> {
    const { logger, config, self } = this.deps;
    const marker = await this.marker.read();
    const registered = await this.registeredHosts();
    const others = await this.peek(registered.values());
    if (others.inSet.length > 0) {
      this.noSetSince = undefined;
      this.waitLog(`the replica set runs on ${others.inSet.join(', ')}; waiting for its primary to add this member`);
      return;
    }
    if (marker?.claim) {
      this.noSetSince = undefined;
      this.waitLog(`${marker.host} is initiating the replica set; waiting`);
      return;
    }
    let claim;
    if (!marker) {
      // A registered member that does not answer may run the set (and would record the marker on its
      // next round as primary): never initiate past it.
      if (others.silent.length > 0) {
        this.waitLog(`registered members ${others.silent.join(', ')} do not answer; waiting for them before initiating`);
        return;
      }
      claim = await this.marker.claim(self, config.init.claim_ttl);
    } else {
      // A permanent marker, yet no registered member runs the set: it may be gone for good (every member
      // lost its data, or etcd was restored without MongoDB). Only after the grace period, and only when
      // every registered member answered, is it taken over.
      const now = Date.now();
      if (others.silent.length > 0) {
        this.noSetSince = undefined;
        this.waitLog(`the replica set was initiated by ${marker.host}; waiting to be added (members not answering: ${others.silent.join(', ')})`);
        return;
      }
      this.noSetSince ??= now;
      const waited = now - this.noSetSince;
      if (waited < config.reconcile.remove_after * 1000) {
        this.waitLog(
          `the replica set was initiated by ${marker.host}, but no registered member runs it; ` +
            `initiating it anew if that is still so in ${Math.ceil((config.reconcile.remove_after * 1000 - waited) / 1000)} s`,
        );
        return;
      }
      logger.warn({ marker: marker.host, waited }, 'no member of the replica set has been seen for the grace period: taking over mongodb/init to initiate it anew');
      claim = await this.marker.takeOver(marker, self, config.init.claim_ttl);
    }
    if (!claim) {
      logger.info('another member claimed mongodb/init first; waiting for it to initiate the replica set');
      return;
    }
    try {
      // The claim must still hold, and our mongod still be empty, right before the one step that
      // cannot be taken back.
      if (!(await claim.stillHeld())) {
        logger.warn('our claim on mongodb/init was lost before initiating; trying again next round');
        await claim.abandon();
        return;
      }
      if ((await hello(this.deps.admin)).setName) {
        await claim.abandon();
        return;
      }
      logger.info({ set: config.replica_set, host: self }, `initiating replica set ${config.replica_set} with ${self}`);
      try {
        await initiate(this.deps.admin, config.replica_set, self);
      } catch (error) {
        if (serverErrorCode(error) !== ErrorCode.AlreadyInitialized) throw error;
        logger.warn({ err: describeError(error) }, 'mongod says it is already initiated; not initiating');
        await claim.abandon();
        return;
      }
      await this.waitForPrimary();
      if (!(await claim.confirm())) {
        logger.error('initiated the replica set, but our claim on mongodb/init was lost meanwhile: another member may initiate a second set; check the registered members');
        return;
      }
      this.noSetSince = undefined;
      logger.info({ set: config.replica_set }, `replica set ${config.replica_set} initiated`);
    } catch (error) {
      await claim.abandon();
      throw error;
    }
  }

  private async waitForPrimary(): Promise<void> {
    const deadline = Date.now() + INITIATE_CONFIRM_MS;
    while (Date.now() < deadline) {
      if ((await hello(this.deps.admin)).isWritablePrimary) return;
      await sleep(250);
    }
    throw new Error(`the new replica set did not elect this member primary within ${INITIATE_CONFIRM_MS / 1000} s`);
  }

  // ---- detached: a config we are not part of ----

  private async whenDetached(): Promise<void> {
    const { config } = this.deps;
    const now = Date.now();
    this.detachedSince ??= now;
    const waited = now - this.detachedSince;
    const registered = await this.registeredHosts();
    const others = await this.peek(registered.values());
    if (others.inSet.length > 0) {
      // The set runs without us: we were removed while away, and our data is behind. Resync.
      if (waited >= config.reconcile.removed_wipe_after * 1000) {
        this.deps.requestResync(`this member was removed from replica set ${config.replica_set}, which runs on ${others.inSet.join(', ')}`);
      } else {
        this.waitLog(`this member is not part of replica set ${config.replica_set} (it runs on ${others.inSet.join(', ')}); resyncing if still so in ${Math.ceil((config.reconcile.removed_wipe_after * 1000 - waited) / 1000)} s`);
      }
      return;
    }
    if (others.silent.length > 0 || waited < config.reconcile.remove_after * 1000) {
      this.waitLog('this member holds a replica-set config it is not part of (restored data?); waiting for the grace period before taking the set over alone');
      return;
    }
    // Restored data from other hosts and nobody else around: the disaster recovery of the maintenance page.
    const { config: current } = await getConfig(this.deps.admin);
    await this.forceAlone(current, `this member holds replica set ${current._id} from other hosts (${current.members.map((m) => m.host).join(', ')}) and no other member has been seen for ${Math.round(waited / 1000)} s`);
  }

  // ---- initiated, not primary ----

  /**
   * No primary, no other member registered or reachable for the grace period: force a config with this
   * member alone (the maintenance page's disaster recovery, reference §3.3's "only registered node" path,
   * but only after the grace period and never while another member is alive).
   */
  private async recoverIfAlone(me: HelloReply): Promise<void> {
    const { config, self } = this.deps;
    const status = await getStatus(this.deps.admin);
    const primaryAlive = status.members.some((m) => m.state === MemberState.PRIMARY && m.health === 1);
    const othersHealthy = status.members.some((m) => !m.self && m.health === 1);
    const registered = [...(await this.registeredHosts()).values()];
    const otherRegistered = registered.filter((h) => h !== self);
    if (primaryAlive || othersHealthy || otherRegistered.length > 0 || !this.deps.registered()) {
      this.aloneSince = undefined;
      return;
    }
    const now = Date.now();
    this.aloneSince ??= now;
    const waited = now - this.aloneSince;
    if (waited < config.reconcile.remove_after * 1000) {
      this.waitLog(`no primary and no other member reachable or registered; forcing a one-member set if still so in ${Math.ceil((config.reconcile.remove_after * 1000 - waited) / 1000)} s`);
      return;
    }
    const { config: current } = await getConfig(this.deps.admin);
    await this.forceAlone(current, `no primary and no other member reachable or registered for ${Math.round(waited / 1000)} s (state ${me.secondary ? 'SECONDARY' : status.myState})`);
  }

  private async forceAlone(current: Awaited<ReturnType<typeof getConfig>>['config'], why: string): Promise<void> {
    const next = planForcedSingleMember({ config: current, self: this.deps.self });
    this.deps.logger.warn({ members: current.members.map((m) => m.host), version: current.version }, `disaster recovery: ${why}; forcing a one-member replica-set config`);
    await reconfig(this.deps.admin, next, { force: true, maxTimeMS: this.deps.config.reconcile.reconfig_timeout_ms });
    this.aloneSince = undefined;
    this.detachedSince = undefined;
    this.deps.logger.warn('forced one-member config installed; other judicators join it as they register');
  }

  // ---- primary ----

  /** A running set whose marker is missing (etcd restored or new): record it so nobody initiates another. */
  private async adoptMarker(): Promise<void> {
    const marker = await this.marker.read();
    if (!marker) await this.marker.adopt(this.deps.self);
    else if (marker.claim) this.deps.logger.error({ claimer: marker.host }, `${marker.host} claims mongodb/init while this set runs: it must not initiate another set`);
  }

  private async reconcile(): Promise<void> {
    const { admin, config, self, logger } = this.deps;
    const { config: current, committed } = await getConfig(admin, { commitmentStatus: true });
    const status = await getStatus(admin);
    const byName = await this.registeredHosts();
    const registered = [...byName.values()];
    this.warnDuplicateHosts(byName);
    const now = Date.now();
    trackUnregistered(this.unregisteredSince, current.members.map((m) => m.host), registered, now);
    const plan = planReconcile({
      config: current,
      status,
      registered,
      self,
      unregisteredSince: this.unregisteredSince,
      now,
      removeAfterMs: config.reconcile.remove_after * 1000,
      maxVoters: config.reconcile.max_voters,
    });
    if (!plan.config) return;
    if (committed === false) {
      logger.debug({ changes: plan.changes }, 'the last reconfig is not committed yet; reconciling next round');
      return;
    }
    logger.info({ changes: plan.changes, version: plan.config.version, pendingRemoval: plan.pendingRemoval }, `reconfiguring the replica set: ${plan.changes.join('; ')}`);
    try {
      await reconfig(admin, plan.config, { maxTimeMS: config.reconcile.reconfig_timeout_ms });
    } catch (error) {
      const code = serverErrorCode(error);
      if (code === ErrorCode.ConfigurationInProgress || code === ErrorCode.CurrentConfigNotCommittedYet) {
        logger.info({ err: describeError(error) }, 'a reconfig is still in progress; trying again next round');
        return;
      }
      throw error;
    }
  }

  /** Two members advertising one host:port (the default "localhost" on several machines) cannot both be in the set. */
  private warnDuplicateHosts(byName: Map<string, string>): void {
    const seen = new Map<string, string>();
    for (const [name, host] of byName) {
      const other = seen.get(host);
      if (other !== undefined) {
        this.waitLog(`members ${other} and ${name} both advertise ${host}: only one of them can be in the replica set; give each judicator its own --mongodb-advertise-address`, 'warn');
      }
      seen.set(host, name);
    }
  }

  /** Waiting messages once a minute, not every round. */
  private waitLog(message: string, level: 'info' | 'warn' = 'info'): void {
    const now = Date.now();
    if (now - this.lastWaitLog < 60_000) {
      this.deps.logger.debug(message);
      return;
    }
    this.lastWaitLog = now;
    this.deps.logger[level](message);
  }
}
