// Which certificates the cluster no longer accepts, and the check every judicator runs on a client's
// certificate. Two kinds of entry, both kept by the judicators in etcd (pki-store.ts):
// - a certificate by serial (what an X.509 CRL can say, so etcd enforces these too, from the CRL the CA
//   signs of them);
// - a node by name (and, usually, role): every certificate of that name issued up to the revocation,
//   including any the issued-certificate records missed. A node revoked this way that is later given a
//   new token joins again under the same name with a new certificate (issued after the revocation).
//   Names default to the host name, so one machine's judicator and executor often share one: an entry
//   with a role covers only that role's certificates (a judicator that leaves does not cut off the
//   executor beside it); an entry without one covers every role.
// An entry matters only until the certificates it covers have expired; the store drops it after that.
import { ISSUE_BACKDATE_MS, LEAF_LIFETIME_MS } from './certificate-authority';
import type { CertIdentity, Role } from './identity';
import { normaliseSerial } from './identity';

export interface RevokedCertificate {
  serial: string;
  name: string;
  role: Role;
  /** The certificate's own end (ISO time): the entry is useless after it. */
  notAfter: string;
  revokedAt: string;
  reason: string;
}

export interface RevokedName {
  name: string;
  /** Only this role's certificates of that name; absent: every role's. */
  role?: Role;
  revokedAt: string;
  reason: string;
  /** When the last certificate this entry covers has expired (ISO time): revokedAt + the longest lifetime. */
  expiresAt: string;
}

/** The list's key of a name entry: `name@role` (`@` is not in a node name) or the bare name. */
export function nameEntryKey(entry: Pick<RevokedName, 'name' | 'role'>): string {
  return entry.role ? `${entry.name}@${entry.role}` : entry.name;
}

export type RevocationCheck = { revoked: false } | { revoked: true; reason: string };

/** The end of a name entry made at `revokedAt`: no certificate issued before it outlives this. */
export function nameRevocationExpiry(revokedAt: Date, longestLifetimeMs: number = LEAF_LIFETIME_MS): Date {
  return new Date(revokedAt.getTime() + longestLifetimeMs + ISSUE_BACKDATE_MS);
}

export class RevocationList {
  private readonly bySerial = new Map<string, RevokedCertificate>();
  private readonly byName = new Map<string, RevokedName>();

  constructor(certificates: readonly RevokedCertificate[] = [], names: readonly RevokedName[] = []) {
    for (const entry of certificates) this.bySerial.set(normaliseSerial(entry.serial), { ...entry, serial: normaliseSerial(entry.serial) });
    for (const entry of names) {
      // Two revocations of one name (and role): the later one covers everything the earlier one did.
      const key = nameEntryKey(entry);
      const known = this.byName.get(key);
      if (!known || Date.parse(known.revokedAt) < Date.parse(entry.revokedAt)) this.byName.set(key, entry);
    }
  }

  get size(): number {
    return this.bySerial.size + this.byName.size;
  }

  certificates(): RevokedCertificate[] {
    return [...this.bySerial.values()];
  }

  names(): RevokedName[] {
    return [...this.byName.values()];
  }

  /** Whether a (verified, unexpired) certificate is revoked, and why, in words for the refusal. */
  check(cert: Pick<CertIdentity, 'serial' | 'name' | 'notBefore'> & { role?: Role }): RevocationCheck {
    const bySerial = this.bySerial.get(normaliseSerial(cert.serial));
    if (bySerial) return { revoked: true, reason: `certificate ${bySerial.serial} of ${bySerial.name} was revoked at ${bySerial.revokedAt}: ${bySerial.reason}` };
    const entries = [this.byName.get(cert.name), cert.role ? this.byName.get(nameEntryKey({ name: cert.name, role: cert.role })) : undefined];
    for (const byName of entries) {
      // The CA backdates notBefore; the certificate was issued ISSUE_BACKDATE_MS later than it says.
      if (byName && cert.notBefore.getTime() + ISSUE_BACKDATE_MS <= Date.parse(byName.revokedAt)) {
        return { revoked: true, reason: `${byName.role ?? 'node'} ${byName.name} was revoked at ${byName.revokedAt}: ${byName.reason}` };
      }
    }
    return { revoked: false };
  }

  /** The serial entries still worth listing in a CRL at `now` (their certificates have not expired). */
  crlEntries(now: Date = new Date()): { serial: string; revokedAt: Date }[] {
    return this.certificates()
      .filter((e) => Date.parse(e.notAfter) > now.getTime())
      .map((e) => ({ serial: e.serial, revokedAt: new Date(e.revokedAt) }));
  }
}
