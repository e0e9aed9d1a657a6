// The PkiStore in etcd, shared by every judicator (key layout: pki-store.ts). Each record is put under
// its own lease whose TTL ends with what the record describes (a token's expiry, a certificate's end),
// so etcd removes dead records by itself and no judicator runs a clean-up. A new token is written
// only if its id is free (one transaction).
import type { Etcd3 } from 'etcd3';
import type { Logger } from '../common/logging';
import type { JoinTokenRecord } from './join-token';
import { parseRecord, pkiKeys, RECORD_GRACE_MS, recordSchemas, type IssuedRecord, type PkiStore } from './pki-store';
import { nameEntryKey, RevocationList, type RevokedCertificate, type RevokedName } from './revocation';
import type { z } from 'zod';

export class EtcdPkiStore implements PkiStore {
  private readonly keys: ReturnType<typeof pkiKeys>;

  /**
   * `client` is a client or a function giving the current one (the judicator's etcd client); `prefix`
   * is the cluster's key prefix (`kv2/`).
   */
  constructor(
    private readonly client: Etcd3 | (() => Etcd3),
    prefix: string,
    private readonly logger?: Logger,
  ) {
    this.keys = pkiKeys(prefix);
  }

  private etcd(): Etcd3 {
    return typeof this.client === 'function' ? this.client() : this.client;
  }

  /** A lease ending RECORD_GRACE_MS after `end`. */
  private async leaseUntil(end: string): Promise<string> {
    const ttl = Math.max(Math.ceil((Date.parse(end) + RECORD_GRACE_MS - Date.now()) / 1000), 1);
    const { ID } = await this.etcd().leaseClient.leaseGrant({ TTL: ttl });
    return ID;
  }

  private async putLeased(key: string, value: object, end: string): Promise<void> {
    const lease = await this.leaseUntil(end);
    await this.etcd().put(key).value(JSON.stringify(value)).lease(lease);
  }

  /** Every valid record under `prefix`; a damaged one is logged and left out, never trusted. */
  private async list<T>(prefix: string, schema: z.ZodType<T>): Promise<T[]> {
    const values = await this.etcd().getAll().prefix(prefix).strings();
    const records: T[] = [];
    for (const [key, text] of Object.entries(values)) {
      try {
        records.push(parseRecord(schema, key, text));
      } catch (error) {
        this.logger?.warn({ key, err: error instanceof Error ? error.message : String(error) }, 'ignoring a PKI record that does not validate');
      }
    }
    return records;
  }

  async addToken(record: JoinTokenRecord): Promise<boolean> {
    const key = this.keys.token(record.id);
    const lease = await this.leaseUntil(record.expiresAt);
    const etcd = this.etcd();
    const { succeeded } = await etcd.if(key, 'Create', '==', 0).then(etcd.put(key).value(JSON.stringify(record)).lease(lease)).commit();
    if (!succeeded) await etcd.leaseClient.leaseRevoke({ ID: lease });
    return succeeded;
  }

  async token(id: string): Promise<JoinTokenRecord | undefined> {
    const key = this.keys.token(id);
    const text = await this.etcd().get(key).string();
    return text === null ? undefined : parseRecord(recordSchemas.token, key, text);
  }

  tokens(): Promise<JoinTokenRecord[]> {
    return this.list(this.keys.tokens, recordSchemas.token);
  }

  async removeToken(id: string): Promise<boolean> {
    const { deleted } = await this.etcd().delete().key(this.keys.token(id));
    return Number(deleted) > 0;
  }

  recordIssued(record: IssuedRecord): Promise<void> {
    return this.putLeased(this.keys.issuedCertificate(record.serial), record, record.notAfter);
  }

  issued(): Promise<IssuedRecord[]> {
    return this.list(this.keys.issued, recordSchemas.issued);
  }

  revokeCertificate(entry: RevokedCertificate): Promise<void> {
    return this.putLeased(this.keys.revokedSerial(entry.serial), entry, entry.notAfter);
  }

  revokeName(entry: RevokedName): Promise<void> {
    return this.putLeased(this.keys.revokedName(nameEntryKey(entry)), entry, entry.expiresAt);
  }

  async revocations(): Promise<RevocationList> {
    const [certificates, names] = await Promise.all([
      this.list(this.keys.revokedSerials, recordSchemas.revokedCertificate),
      this.list(this.keys.revokedNames, recordSchemas.revokedName),
    ]);
    const now = Date.now();
    // A lease runs RECORD_GRACE_MS past the end; the list holds only what is still in force.
    return new RevocationList(
      certificates.filter((e) => Date.parse(e.notAfter) > now),
      names.filter((e) => Date.parse(e.expiresAt) > now),
    );
  }
}
