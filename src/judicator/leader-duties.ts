// What the leading judicator does every interval: return to Retrying the tasks of executors that are
// gone or stopped reporting them, forget executors that are gone, collect dead etcd members, delete
// finished tasks past retention. Every duty is idempotent: two leaders at once, or a leader replaced
// half-way, do no harm.
import type { Etcd3 } from 'etcd3';
import { describeError } from '../common/errors';
import type { Logger } from '../common/logging';
import { sleep } from '../common/processes';
import type { LeaderFence } from '../etcd/election';
import { clusterKeys } from '../etcd/keys';
import type { TaskStore, WriteFence } from '../store/task-store';

export interface LeaderSettings {
  prefix: string;
  /** Seconds between rounds of duties. */
  interval: number;
  /** Seconds without a report of a held task before it goes back to Retrying. */
  taskExpiration: number;
  maxRetries: number;
  /** Seconds after which an executor record with no live registration is forgotten. */
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

  private async registeredExecutors(): Promise<Set<string>> {
    const keys = await this.etcd().getAll().prefix(this.keys.executorServices).keys();
    return new Set(keys.map((k) => k.slice(this.keys.executorServices.length)));
  }

  async expireTasks(): Promise<void> {
    const now = Date.now();
    const expiredBefore = now - this.settings.taskExpiration * 1000;
    const registered = await this.registeredExecutors();
    for (const holder of await this.store.holders()) {
      const gone = !registered.has(holder.executor);
      // An executor whose registration is gone (its lease expired: it died) loses all its tasks; one
      // that is alive but stopped reporting some tasks loses those.
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
            ? `executor ${holder.executor} is gone; its tasks go back to Retrying`
            : `executor ${holder.executor} stopped reporting tasks for ${this.settings.taskExpiration} s; they go back to Retrying`,
        );
      }
    }
  }

  async forgetExecutors(): Promise<void> {
    const registered = await this.registeredExecutors();
    const cutoff = Date.now() - this.settings.executorExpiration * 1000;
    for (const executor of await this.store.listExecutors()) {
      if (registered.has(executor.id) || Date.parse(executor.report_time) >= cutoff) continue;
      await this.store.removeExecutor(executor.id, this.fence);
      this.logger.info({ executor: executor.id, lastReport: executor.report_time }, `forgot executor ${executor.id}: gone since ${executor.report_time}`);
    }
  }

  /**
   * An etcd member that died without leaving (SIGKILL, lost machine) still counts towards quorum. After
   * `memberGcAfter` with no judicator of its name registered and no answer on its client URL, it is
   * removed; the first time it was seen missing is kept in etcd so a new leader continues the count.
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
      const alive = registered.has(member.name) || (!unstarted && (await answers(member.clientURLs)));
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

async function answers(urls: string[]): Promise<boolean> {
  for (const url of urls) {
    try {
      const response = await fetch(`${url.replace(/\/+$/, '')}/version`, { signal: AbortSignal.timeout(2_000) });
      if (response.ok) return true;
    } catch {
      // try the next URL
    }
  }
  return false;
}
