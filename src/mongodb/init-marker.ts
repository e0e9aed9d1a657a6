// The etcd key mongodb/init, which makes the replica set be initiated exactly once (SPEC §4/§5). Its value
// is the host:port of the member that initiated (or is initiating) the set, as in the original. Unlike
// the original, the key is first written under a lease (a claim) and only made permanent, by a
// compare-and-swap on its revision, after replSetInitiate has been confirmed: a claimer that dies between
// claim and initiate lets its lease expire and frees the key, instead of blocking initiation forever
// (reference §3.3 [WEAK]). A permanent marker whose set is gone for good can be taken over the same way.
import type { Etcd3, Lease } from 'etcd3';
import { describeError } from '../common/errors';
import type { Logger } from '../common/logging';

export interface MarkerState {
  /** host:port of the member that initiated (or is initiating) the set. */
  host: string;
  /** True while it is only a claim (its lease alive); false once the initiation was confirmed. */
  claim: boolean;
  /** The key's mod revision, for compare-and-swap. */
  modRevision: string;
}

export class InitMarker {
  constructor(
    private readonly etcd: () => Etcd3,
    private readonly key: string,
    private readonly logger: Logger,
  ) {}

  async read(): Promise<MarkerState | undefined> {
    const response = await this.etcd().get(this.key).exec();
    const kv = response.kvs[0];
    if (!kv) return undefined;
    return { host: kv.value.toString(), claim: kv.lease !== '0' && kv.lease !== '', modRevision: kv.mod_revision };
  }

  /** Claims the key if nobody holds it; `undefined` when someone else does. */
  claim(host: string, ttl: number): Promise<InitClaim | undefined> {
    return this.claimIf(host, ttl, undefined);
  }

  /**
   * Replaces the permanent marker of a set that is gone for good with a claim of our own, only if the
   * key still is what the caller saw (two members deciding this at once: one wins).
   */
  takeOver(seen: MarkerState, host: string, ttl: number): Promise<InitClaim | undefined> {
    return this.claimIf(host, ttl, seen.modRevision);
  }

  private async claimIf(host: string, ttl: number, modRevision: string | undefined): Promise<InitClaim | undefined> {
    const etcd = this.etcd();
    const lease = etcd.lease(ttl, { autoKeepAlive: true });
    let granted = false;
    try {
      const leaseId = await lease.grant();
      granted = true;
      const txn = modRevision === undefined ? etcd.if(this.key, 'Create', '==', 0) : etcd.if(this.key, 'Mod', '==', modRevision);
      const result = await txn.then(etcd.put(this.key).value(host).lease(leaseId)).commit();
      if (!result.succeeded) {
        await lease.revoke().catch(() => undefined);
        return undefined;
      }
      const putRevision = result.header.revision;
      this.logger.info({ key: this.key, host, ttl }, `claimed ${this.key} to initiate the replica set`);
      return new InitClaim(etcd, this.key, host, lease, putRevision, this.logger);
    } catch (error) {
      if (granted) await lease.revoke().catch(() => undefined);
      else lease.release();
      throw error;
    }
  }

  /**
   * Our mongod belongs to an initiated set but the key is missing (etcd restored from an older snapshot,
   * or a new etcd cluster next to restored MongoDB data): record it, permanently, if still absent.
   */
  async adopt(host: string): Promise<boolean> {
    const etcd = this.etcd();
    const result = await etcd.if(this.key, 'Create', '==', 0).then(etcd.put(this.key).value(host)).commit();
    if (result.succeeded) this.logger.info({ key: this.key, host }, `recorded ${this.key}: the replica set exists`);
    return result.succeeded;
  }
}

/** A claim on mongodb/init: alive while its lease is; confirm() makes it the permanent marker. */
export class InitClaim {
  private lost = false;

  constructor(
    private readonly etcd: Etcd3,
    private readonly key: string,
    readonly host: string,
    private readonly lease: Lease,
    /** The revision at which our claim was written: the key's mod revision while it is ours. */
    private readonly revision: string,
    private readonly logger: Logger,
  ) {
    lease.on('lost', (error) => {
      this.lost = true;
      this.logger.warn({ key, err: describeError(error) }, `the lease behind our claim on ${key} was lost`);
    });
  }

  /** Checks with etcd, now, that the claim still holds (its lease alive, the key ours). */
  async stillHeld(): Promise<boolean> {
    if (this.lost) return false;
    try {
      await this.lease.keepaliveOnce();
      const kv = (await this.etcd.get(this.key).exec()).kvs[0];
      return kv !== undefined && kv.mod_revision === this.revision;
    } catch (error) {
      this.logger.warn({ key: this.key, err: describeError(error) }, `could not check our claim on ${this.key}`);
      return false;
    }
  }

  /**
   * The set was initiated: write the key again without a lease (so it stays), only if it still is our
   * claim, then let the lease go. False when the claim was lost meanwhile.
   */
  async confirm(): Promise<boolean> {
    const result = await this.etcd.if(this.key, 'Mod', '==', this.revision).then(this.etcd.put(this.key).value(this.host)).commit();
    // The key no longer belongs to the lease (a put without one detaches it): revoking deletes nothing.
    await this.lease.revoke().catch(() => this.lease.release());
    if (result.succeeded) this.logger.info({ key: this.key, host: this.host }, `${this.key} recorded: the replica set is initiated`);
    return result.succeeded;
  }

  /** Gives the claim up (initiation failed): the key goes at once, so another member can try. */
  async abandon(): Promise<void> {
    try {
      await this.lease.revoke();
    } catch (error) {
      this.lease.release();
      this.logger.warn({ key: this.key, err: describeError(error) }, `could not revoke our claim on ${this.key}; it expires with its lease`);
    }
  }
}
