// Leader election among judicators. Each candidate puts `judicator/leader/<lease id>` = its name under a
// lease; the candidate whose key was created first leads. A leader learns it lost when its key is gone
// (lease expired or revoked): its duties stop, and each of its writes is fenced on that key still
// existing, because the etcd3 client reports a lost lease only after two TTLs while etcd expires it
// after one (SPEC §6).
import type { Etcd3, Lease } from 'etcd3';
import { describeError } from '../common/errors';
import type { Logger } from '../common/logging';
import { sleep } from '../common/processes';
import { leaderPrefix } from './leader';

/** Proof of leadership a leader's writes are conditioned on. */
export interface LeaderFence {
  /** The leader's election key: a write is valid only while it exists. */
  key: string;
}

export interface ElectionOptions {
  prefix: string;
  name: string;
  /** Lease TTL in seconds: a leader that dies without a word is replaced after this long. */
  ttl: number;
  /** Milliseconds between checks of who leads (a watch also wakes the check). */
  checkMs?: number;
}

export class LeaderElection {
  private leading = false;

  constructor(
    private readonly client: () => Etcd3,
    private readonly options: ElectionOptions,
    private readonly logger: Logger,
  ) {}

  get isLeader(): boolean {
    return this.leading;
  }

  /**
   * Campaigns until `signal` aborts. While this candidate leads, `lead(fence, leadSignal)` runs; it must
   * return soon after `leadSignal` aborts (leadership lost or shutdown). On shutdown the lease is revoked
   * so the next candidate takes over at once.
   */
  async run(signal: AbortSignal, lead: (fence: LeaderFence, leadSignal: AbortSignal) => Promise<void>): Promise<void> {
    const prefix = leaderPrefix(this.options.prefix);
    while (!signal.aborted) {
      let lease: Lease | undefined;
      const lost = new AbortController();
      try {
        lease = this.client().lease(this.options.ttl, { autoKeepAlive: true });
        lease.on('lost', () => lost.abort());
        const leaseId = await lease.grant();
        const key = `${prefix}${BigInt(leaseId).toString(16)}`;
        await lease.put(key).value(this.options.name);
        this.logger.info({ key }, 'campaigning for leadership');
        await this.campaign(key, prefix, signal, lost, lead);
      } catch (error) {
        if (!signal.aborted) this.logger.warn({ err: describeError(error) }, 'leader election interrupted; campaigning again');
      } finally {
        this.leading = false;
        if (lease) await lease.revoke({ deadline: Date.now() + 2_000 }).catch(() => undefined);
      }
      await sleep(1_000, signal);
    }
  }

  private async campaign(
    key: string,
    prefix: string,
    signal: AbortSignal,
    lost: AbortController,
    lead: (fence: LeaderFence, leadSignal: AbortSignal) => Promise<void>,
  ): Promise<void> {
    const client = this.client();
    const wake = new EventTarget();
    const watcher = await client.watch().prefix(prefix).create();
    watcher.on('delete', () => wake.dispatchEvent(new Event('change')));
    watcher.on('put', () => wake.dispatchEvent(new Event('change')));
    try {
      while (!signal.aborted && !lost.signal.aborted) {
        const first = await client.getAll().prefix(prefix).sort('Create', 'Ascend').limit(1).exec();
        const firstKey = first.kvs[0]?.key.toString();
        if (firstKey === undefined || !(await client.get(key).exists())) throw new Error('our election key is gone');
        if (firstKey === key) {
          this.leading = true;
          this.logger.info({ key }, 'became the leader');
          const leadSignal = AbortSignal.any([signal, lost.signal, this.keyGone(watcher, key)]);
          await lead({ key }, leadSignal);
          this.leading = false;
          if (!signal.aborted) this.logger.warn({ key }, 'no longer the leader');
          return;
        }
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, this.options.checkMs ?? 2_000);
          wake.addEventListener('change', () => (clearTimeout(timer), resolve()), { once: true });
          signal.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
        });
      }
    } finally {
      await watcher.cancel().catch(() => undefined);
    }
  }

  /** Aborts when `key` is deleted (our lease expired in etcd, whatever the client believes). */
  private keyGone(watcher: { on(event: 'delete', fn: (kv: { key: Buffer }) => void): unknown }, key: string): AbortSignal {
    const controller = new AbortController();
    watcher.on('delete', (kv) => {
      if (kv.key.toString() === key) controller.abort();
    });
    return controller.signal;
  }
}
