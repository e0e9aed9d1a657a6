// What the leading judicator does every interval: return to Retrying the tasks of executors that are
// gone (no report for the executor TTL) or stopped reporting them, forget executors that are gone, collect
// dead etcd members (revoking their judicator certificates), delete finished tasks past retention. Every
// duty is idempotent: two leaders at once, or a leader replaced half-way, do no harm.
import type { Etcd3 } from 'etcd3';
import { describeError } from '../common/errors';
import type { Logger } from '../common/logging';
import { sleep } from '../common/processes';
import { getFromMember, type EtcdTlsFiles } from '../etcd/client';
import type { LeaderFence } from '../etcd/election';
import { clusterKeys } from '../etcd/keys';
import { revokeNode, type PkiStore } from '../pki/pki-store';
import type { TaskStore, WriteFence } from '../store/task-store';

/** Milliseconds a member's client URL gets to answer the dead-member check. */
const MEMBER_CHECK_TIMEOUT_MS = 2_000;

/** What the leader needs of the cluster's identity: its own TLS files, and where revocations go. */
export interface LeaderPki {
  tls: () => EtcdTlsFiles;
  store: PkiStore;
  /** Called after a revocation, so this judicator applies it at once. */
  revoked: () => Promise<unknown>;
}

export interface LeaderSettings {
  prefix: string;
  /** Seconds between rounds of duties. */
  interval: number;
  /** Seconds without a report of a held task before it goes back to Retrying. */
  taskExpiration: number;
  maxRetries: number;
  /** Seconds without a report after which an executor is gone (its tasks go back to Retrying). */
  executorTtl: number;
  /** Seconds after which an executor that is gone is forgotten. */
  executorExpiration: number;
  /** Seconds a dead etcd member (no registered judicator, not answering) is kept before removal. */
  memberGcAfter: number;
  /** Seconds finished tasks are kept; 0 keeps them forever. */
  retention: number;
}

export class LeaderDuties {
  private readonly keys;
  /** Every duty write is conditioned on this (SPEC §6). */
  private fence: WriteFence | undefined;

  constructor(
    private readonly etcd: () => Etcd3,
    private readonly store: TaskStore,
    private readonly settings: LeaderSettings,
    private readonly pki: LeaderPki,
    private readonly logger: Logger,
  ) {
    this.keys = clusterKeys(settings.prefix);
  }

  /** Runs the duties every interval until `signal` aborts (leadership lost or shutdown). */
  async run(fence: LeaderFence, signal: AbortSignal): Promise<void> {
    this.fence = { etcdKey: fence.key, holds: () => this.stillLeading(fence) };
    while (!signal.aborted) {
      const started = Date.now();
      for (const [name, duty] of [
        ['expire tasks', () => this.expireTasks()],
        ['forget executors', () => this.forgetExecutors()],
        ['collect dead etcd members', () => this.collectDeadMembers()],
        ['apply retention', () => this.applyRetention()],
      ] as const) {
        if (signal.aborted || !(await this.stillLeading(fence))) return;
        try {
          await duty();
        } catch (error) {
          this.logger.warn({ duty: name, err: describeError(error) }, `leader duty "${name}" failed; trying again next round`);
        }
      }
      await sleep(Math.max(this.settings.interval * 1000 - (Date.now() - started), 100), signal);
    }
  }

  /** The fence: a leader whose election key is gone (lease expired in etcd) stops at once. */
  private async stillLeading(fence: LeaderFence): Promise<boolean> {
    try {
      return await this.etcd().get(fence.key).exists();
    } catch {
      return false;
    }
  }

  /** Executors that reported within the executor TTL (their record's report time says so). */
  private async liveExecutors(): Promise<Set<string>> {
    const since = Date.now() - this.settings.executorTtl * 1000;
    return new Set((await this.store.listExecutors()).filter((e) => Date.parse(e.report_time) >= since).map((e) => e.id));
  }

  async expireTasks(): Promise<void> {
    const now = Date.now();
    const expiredBefore = now - this.settings.taskExpiration * 1000;
    const live = await this.liveExecutors();
    for (const holder of await this.store.holders()) {
      const gone = !live.has(holder.executor);
      // An executor that has not reported for the executor TTL (it died, or lost the judicators) loses all
      // its tasks; one that is alive but stopped reporting some tasks loses those.
      if (!gone && holder.oldestReportMs >= expiredBefore) continue;
      const outcome = await this.store.requeueHeldBy(holder.executor, {
        olderThanMs: gone ? undefined : expiredBefore,
        reason: gone ? 'executor-gone' : 'expired',
        maxRetries: this.settings.maxRetries,
        fence: this.fence,
      });
      if (outcome.retried.length || outcome.abandoned.length) {
        this.logger.warn(
          { executor: holder.executor, gone, retried: outcome.retried, abandoned: outcome.abandoned },
          gone
            ? `executor ${holder.executor} is gone (no report for ${this.settings.executorTtl} s); its tasks go back to Retrying`
            : `executor ${holder.executor} stopped reporting tasks for ${this.settings.taskExpiration} s; they go back to Retrying`,
        );
      }
    }
  }

  async forgetExecutors(): Promise<void> {
    const cutoff = Date.now() - this.settings.executorExpiration * 1000;
    for (const executor of await this.store.listExecutors()) {
      if (Date.parse(executor.report_time) >= cutoff) continue;
      await this.store.removeExecutor(executor.id, this.fence);
      this.logger.info({ executor: executor.id, lastReport: executor.report_time }, `forgot executor ${executor.id}: gone since ${executor.report_time}`);
    }
  }

  /**
   * An etcd member that died without leaving (SIGKILL, lost machine) still counts towards quorum. After
   * `memberGcAfter` with no judicator of its name registered and no answer on its client URL, it is
   * removed, and its judicator certificates revoked (a machine that comes back joins again with a new
   * one; a copy of the old one left on a disk opens nothing); the first time it was seen missing is kept
   * in etcd so a new leader continues the count.
   */
  async collectDeadMembers(): Promise<void> {
    const client = this.etcd();
    const { members, header } = await client.cluster.memberList({});
    const registered = new Set(
      (await client.getAll().prefix(this.keys.judicatorServices).keys()).map((k) => k.slice(this.keys.judicatorServices.length)),
    );
    const joining = await client.get(this.keys.joinLock).exists();
    const now = Date.now();
    const missingKeys = new Set(await client.getAll().prefix(this.keys.memberMissing).keys());
    for (const member of members) {
      if (member.ID === header.member_id) continue;
      const missingKey = this.keys.memberMissingSince(member.ID);
      const unstarted = member.clientURLs.length === 0;
      const alive = registered.has(member.name) || (!unstarted && (await answers(member.clientURLs, this.pki.tls())));
      // A member being added right now is unstarted for a moment; the join lock says so.
      if (alive || (unstarted && joining)) {
        if (missingKeys.has(missingKey)) await client.delete().key(missingKey);
        continue;
      }
      const since = Number((await client.get(missingKey).string()) ?? NaN);
      if (Number.isNaN(since)) {
        await client.put(missingKey).value(String(now));
        this.logger.warn({ member: member.name || member.ID }, `etcd member ${member.name || member.ID} is not answering; removing it after ${this.settings.memberGcAfter} s unless it comes back`);
        continue;
      }
      if (now - since < this.settings.memberGcAfter * 1000) continue;
      if (member.name) {
        const reason = `etcd member removed after ${this.settings.memberGcAfter} s without an answer`;
        const serials = await revokeNode(this.pki.store, { name: member.name, role: 'judicator', reason });
        this.logger.warn({ member: member.name, serials: serials.map((r) => r.serial) }, `revoked judicator ${member.name}'s certificates: ${reason}`);
        await this.pki.revoked();
      }
      await client.cluster.memberRemove({ ID: member.ID });
      await client.delete().key(missingKey);
      this.logger.warn({ member: member.name || member.ID, since: new Date(since).toISOString() }, `removed dead etcd member ${member.name || member.ID}; it rejoins cleanly when started again`);
    }
    // Forget records of members that are no longer in the list at all.
    const ids = new Set(members.map((m) => this.keys.memberMissingSince(m.ID)));
    for (const key of missingKeys) if (!ids.has(key)) await client.delete().key(key);
  }

  async applyRetention(): Promise<void> {
    if (this.settings.retention <= 0) return;
    const deleted = await this.store.deleteFinishedBefore(Date.now() - this.settings.retention * 1000, undefined, this.fence);
    if (deleted) this.logger.info({ deleted }, `deleted ${deleted} finished tasks older than the retention period`);
  }
}

async function answers(urls: string[], tls: EtcdTlsFiles): Promise<boolean> {
  for (const url of urls) {
    try {
      const { status } = await getFromMember(url, '/version', tls, MEMBER_CHECK_TIMEOUT_MS);
      if (status === 200) return true;
    } catch {
      // try the next URL
    }
  }
  return false;
}
