// The PkiStore of one process, in memory: for a judicator's unit tests and for tools that need no
// cluster. Records expire as etcd's leases make them expire (etcd-pki-store.ts): RECORD_GRACE_MS after
// their end, when they are next read.
import type { JoinTokenRecord } from './join-token';
import { RECORD_GRACE_MS, type IssuedRecord, type PkiStore } from './pki-store';
import { nameEntryKey, RevocationList, type RevokedCertificate, type RevokedName } from './revocation';

export class MemoryPkiStore implements PkiStore {
  private readonly tokenRecords = new Map<string, JoinTokenRecord>();
  private readonly issuedRecords = new Map<string, IssuedRecord>();
  private readonly revokedSerials = new Map<string, RevokedCertificate>();
  private readonly revokedNames = new Map<string, RevokedName>();

  constructor(private readonly now: () => number = Date.now) {}

  private live<T>(records: Map<string, T>, end: (record: T) => string): T[] {
    for (const [key, record] of records) if (Date.parse(end(record)) + RECORD_GRACE_MS <= this.now()) records.delete(key);
    return [...records.values()];
  }

  async addToken(record: JoinTokenRecord): Promise<boolean> {
    this.live(this.tokenRecords, (r) => r.expiresAt);
    if (this.tokenRecords.has(record.id)) return false;
    this.tokenRecords.set(record.id, structuredClone(record));
    return true;
  }

  async token(id: string): Promise<JoinTokenRecord | undefined> {
    this.live(this.tokenRecords, (r) => r.expiresAt);
    const record = this.tokenRecords.get(id);
    return record && structuredClone(record);
  }

  async tokens(): Promise<JoinTokenRecord[]> {
    return structuredClone(this.live(this.tokenRecords, (r) => r.expiresAt));
  }

  async removeToken(id: string): Promise<boolean> {
    return this.tokenRecords.delete(id);
  }

  async recordIssued(record: IssuedRecord): Promise<void> {
    this.issuedRecords.set(record.serial, structuredClone(record));
  }

  async issued(): Promise<IssuedRecord[]> {
    return structuredClone(this.live(this.issuedRecords, (r) => r.notAfter));
  }

  async revokeCertificate(entry: RevokedCertificate): Promise<void> {
    this.revokedSerials.set(entry.serial, structuredClone(entry));
  }

  async revokeName(entry: RevokedName): Promise<void> {
    this.revokedNames.set(nameEntryKey(entry), structuredClone(entry));
  }

  async revocations(): Promise<RevocationList> {
    const now = this.now();
    return new RevocationList(
      this.live(this.revokedSerials, (r) => r.notAfter).filter((e) => Date.parse(e.notAfter) > now),
      this.live(this.revokedNames, (r) => r.expiresAt).filter((e) => Date.parse(e.expiresAt) > now),
    );
  }
}
