// What the judicators keep about the cluster's identity, shared through etcd: join tokens (hashed),
// the certificates they issued, and revocations. The PkiStore interface has two implementations, in
// memory (memory-pki-store.ts, one process) and in etcd (etcd-pki-store.ts). Records read back are
// validated here, so a damaged or hand-written value is refused with a reason, not trusted.
// Key layout under the cluster prefix (every record expires with what it describes, via an etcd lease):
//   <prefix>pki/join-token/<id>            JoinTokenRecord, until the token expires
//   <prefix>pki/issued/<serial>            IssuedRecord, until the certificate expires
//   <prefix>pki/revoked/serial/<serial>    RevokedCertificate, until the certificate expires
//   <prefix>pki/revoked/name/<name>[@role] RevokedName, until every certificate it covers has expired
import { z } from 'zod';
import { InvalidInputError } from '../common/errors';
import { ROLES, type Role } from './identity';
import { DEFAULT_JOIN_TOKEN_TTL_MS, formatJoinToken, hashSecret, MAX_JOIN_TOKEN_TTL_MS, newJoinToken, type JoinTokenRecord } from './join-token';
import { nameRevocationExpiry, type RevocationList, type RevokedCertificate, type RevokedName } from './revocation';

/**
 * How long a record outlives its end, ms (etcd: the lease runs this much longer). Clocks of judicators and
 * etcd differ a little, and a token used just after it expired gets "expired", not "unknown".
 */
export const RECORD_GRACE_MS = 60_000;

/** A certificate a judicator issued, kept so a node can be revoked by name and listed. */
export interface IssuedRecord {
  serial: string;
  name: string;
  role: Role;
  notBefore: string;
  notAfter: string;
  /** How it was asked for: a join with a token, a renewal with the previous certificate, or made locally. */
  via: 'join' | 'renew' | 'local';
  /** The join token used, for a join. */
  tokenId?: string;
}

export interface PkiStore {
  /** Stores a new token; false when its id is taken (the caller makes another). */
  addToken(record: JoinTokenRecord): Promise<boolean>;
  /** The token with this id. An expired one may still be returned until the store drops it: check expiresAt. */
  token(id: string): Promise<JoinTokenRecord | undefined>;
  tokens(): Promise<JoinTokenRecord[]>;
  /** False when there was no such token. */
  removeToken(id: string): Promise<boolean>;
  recordIssued(record: IssuedRecord): Promise<void>;
  issued(): Promise<IssuedRecord[]>;
  revokeCertificate(entry: RevokedCertificate): Promise<void>;
  revokeName(entry: RevokedName): Promise<void>;
  /** Every revocation still in force, as the list the checks run on. */
  revocations(): Promise<RevocationList>;
}

export function pkiKeys(prefix: string) {
  return {
    tokens: `${prefix}pki/join-token/`,
    token: (id: string) => `${prefix}pki/join-token/${id}`,
    issued: `${prefix}pki/issued/`,
    issuedCertificate: (serial: string) => `${prefix}pki/issued/${serial}`,
    revokedSerials: `${prefix}pki/revoked/serial/`,
    revokedSerial: (serial: string) => `${prefix}pki/revoked/serial/${serial}`,
    revokedNames: `${prefix}pki/revoked/name/`,
    /** `entryKey` is nameEntryKey(entry): the name, or `name@role`. */
    revokedName: (entryKey: string) => `${prefix}pki/revoked/name/${entryKey}`,
  };
}

const role = z.enum(ROLES);
const time = z.string().refine((s) => !Number.isNaN(Date.parse(s)), 'must be an ISO time');
const hex = z.string().regex(/^[0-9a-f]+$/);
const name = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/);

export const recordSchemas = {
  token: z
    .object({
      id: z.string().regex(/^[a-z2-7]{6}$/),
      secretSha256: z.string().regex(/^[0-9a-f]{64}$/),
      roles: z.array(role).min(1),
      createdAt: time,
      expiresAt: time,
      description: z.string().max(1024),
    })
    .strict(),
  issued: z
    .object({ serial: hex, name, role, notBefore: time, notAfter: time, via: z.enum(['join', 'renew', 'local']), tokenId: z.string().optional() })
    .strict(),
  revokedCertificate: z.object({ serial: hex, name, role, notAfter: time, revokedAt: time, reason: z.string().max(1024) }).strict(),
  revokedName: z.object({ name, role: role.optional(), revokedAt: time, reason: z.string().max(1024), expiresAt: time }).strict(),
};

/** Parses a stored value with its schema; what does not validate is an error naming the key. */
export function parseRecord<T>(schema: z.ZodType<T>, key: string, text: string): T {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new InvalidInputError(`${key} does not hold JSON`);
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new InvalidInputError(`${key} is not a valid record: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return parsed.data;
}

export interface CreateJoinTokenOptions {
  caFingerprint: string;
  /** Roles the token lets a node join as (a judicator's join also receives the CA key). */
  roles: readonly Role[];
  ttlMs?: number;
  description?: string;
  now?: Date;
}

/** Makes and stores a token; returns its printable form (shown once: the cluster keeps only the hash). */
export async function createJoinToken(store: PkiStore, options: CreateJoinTokenOptions): Promise<{ token: string; record: JoinTokenRecord }> {
  const ttlMs = options.ttlMs ?? DEFAULT_JOIN_TOKEN_TTL_MS;
  if (!Number.isFinite(ttlMs) || ttlMs <= 0 || ttlMs > MAX_JOIN_TOKEN_TTL_MS) {
    throw new InvalidInputError(`a join token's life must be more than 0 and at most ${MAX_JOIN_TOKEN_TTL_MS / 86_400_000} days`);
  }
  const roles = [...new Set(options.roles)];
  if (roles.length === 0) throw new InvalidInputError('a join token must allow at least one role');
  const now = options.now ?? new Date();
  // Ids are 30 random bits: a clash is rare, and then another id is drawn.
  for (let attempt = 0; attempt < 5; attempt++) {
    const token = newJoinToken(options.caFingerprint);
    const record: JoinTokenRecord = {
      id: token.id,
      secretSha256: hashSecret(token.secret),
      roles,
      createdAt: now.toISOString(),
      expiresAt: new Date(now.getTime() + ttlMs).toISOString(),
      description: (options.description ?? '').slice(0, 1024),
    };
    if (await store.addToken(record)) return { token: formatJoinToken(token), record };
  }
  throw new Error('could not find a free join token id in 5 attempts');
}

/**
 * Revokes a node: its name (covering every certificate it was issued so far; only those of `role` when
 * given) and each of its unexpired issued certificates by serial (so the CRL, and with it etcd, refuses
 * them too).
 */
export async function revokeNode(
  store: PkiStore,
  options: { name: string; role?: Role; reason: string; now?: Date; /** The longest certificate life this cluster issues. */ longestLifetimeMs?: number },
): Promise<RevokedCertificate[]> {
  const now = options.now ?? new Date();
  await store.revokeName({
    name: options.name,
    ...(options.role ? { role: options.role } : {}),
    revokedAt: now.toISOString(),
    reason: options.reason,
    expiresAt: nameRevocationExpiry(now, options.longestLifetimeMs).toISOString(),
  });
  const entries = (await store.issued())
    .filter((r) => r.name === options.name && (!options.role || r.role === options.role) && Date.parse(r.notAfter) > now.getTime())
    .map((r): RevokedCertificate => ({ serial: r.serial, name: r.name, role: r.role, notAfter: r.notAfter, revokedAt: now.toISOString(), reason: options.reason }));
  for (const entry of entries) await store.revokeCertificate(entry);
  return entries;
}
