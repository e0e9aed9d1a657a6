// Join tokens, kubeadm-style: one printable string that carries a token id, its secret and the cluster
// CA's fingerprint, so a new node needs only the token and one member's address:
//     kv2j1.<id>.<secret>.<ca sha256 hex>.<check>
// `kv2j1` names the format and its version; id is 6 and secret 26 characters of a-z and 2-7 (30 and
// 130 bits); check is 6 more, from a SHA-256 of everything before it, so a mistyped or cut token gets a
// clear error before any network use. Tokens are case-insensitive. The cluster keeps only a hash of
// the secret (join-server.ts compares hashes), never the secret itself.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { InvalidInputError } from '../common/errors';
import { FINGERPRINT_PREFIX } from './fingerprint';
import type { Role } from './identity';

export const JOIN_TOKEN_PREFIX = 'kv2j';
export const JOIN_TOKEN_VERSION = 1;
/** Default life of a join token (kubeadm's too). */
export const DEFAULT_JOIN_TOKEN_TTL_MS = 24 * 60 * 60 * 1000;
/** Longest life a join token may be given. */
export const MAX_JOIN_TOKEN_TTL_MS = 365 * 24 * 60 * 60 * 1000;

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567';
const ID_LENGTH = 6;
const SECRET_LENGTH = 26;
const CHECK_LENGTH = 6;
const PART = { id: new RegExp(`^[a-z2-7]{${ID_LENGTH}}$`), secret: new RegExp(`^[a-z2-7]{${SECRET_LENGTH}}$`), ca: /^[0-9a-f]{64}$/ };

export interface JoinToken {
  id: string;
  secret: string;
  /** `sha256:<hex>` (fingerprint.ts). */
  caFingerprint: string;
}

/** What the cluster stores of a token (etcd key `<prefix>pki/join-token/<id>`): no secret. */
export interface JoinTokenRecord {
  id: string;
  /** SHA-256 (hex) of the secret. The secret has 130 random bits: a fast hash is enough. */
  secretSha256: string;
  /** Roles a node may join as with this token. */
  roles: Role[];
  createdAt: string;
  expiresAt: string;
  /** Free text from whoever made it, for `kv2 join-token list`. */
  description: string;
}

function randomText(length: number): string {
  // 256 is a multiple of 32: taking the low 5 bits of each byte keeps every character equally likely.
  return [...randomBytes(length)].map((b) => ALPHABET[b & 31]).join('');
}

function checkOf(body: string): string {
  return [...createHash('sha256').update(body).digest().subarray(0, CHECK_LENGTH)].map((b) => ALPHABET[b & 31]).join('');
}

export function newJoinToken(caFingerprint: string): JoinToken {
  return { id: randomText(ID_LENGTH), secret: randomText(SECRET_LENGTH), caFingerprint };
}

export function formatJoinToken(token: JoinToken): string {
  const body = `${JOIN_TOKEN_PREFIX}${JOIN_TOKEN_VERSION}.${token.id}.${token.secret}.${token.caFingerprint.slice(FINGERPRINT_PREFIX.length)}`;
  return `${body}.${checkOf(body)}`;
}

/** A token from its printed form, or an InvalidInputError that says what is wrong with it. */
export function parseJoinToken(input: unknown): JoinToken {
  if (typeof input !== 'string' || input.trim() === '') throw new InvalidInputError('no join token given');
  const text = input.trim().toLowerCase();
  const version = /^kv2j(\d+)\./.exec(text);
  if (!version) {
    throw new InvalidInputError(`this is not a kv2 join token (one starts with ${JOIN_TOKEN_PREFIX}${JOIN_TOKEN_VERSION}.): make one on a judicator with \`kv2 join-token create\``);
  }
  if (Number(version[1]) !== JOIN_TOKEN_VERSION) {
    throw new InvalidInputError(`join token format ${JOIN_TOKEN_PREFIX}${version[1]} is not known to this kv2, which reads ${JOIN_TOKEN_PREFIX}${JOIN_TOKEN_VERSION}: was it made by another kv2 version?`);
  }
  const parts = text.split('.');
  if (parts.length !== 5) throw new InvalidInputError(`a join token has 5 parts separated by dots; this one has ${parts.length}: was it cut or joined to something when copied?`);
  const [, id, secret, ca, check] = parts as [string, string, string, string, string];
  if (!PART.id.test(id) || !PART.secret.test(secret) || !PART.ca.test(ca) || check.length !== CHECK_LENGTH) {
    throw new InvalidInputError(
      `the join token's parts have the wrong length or characters (id ${ID_LENGTH} and secret ${SECRET_LENGTH} of a-z and 2-7, CA fingerprint 64 hex digits, check ${CHECK_LENGTH}): it was mistyped or cut`,
    );
  }
  if (checkOf(parts.slice(0, 4).join('.')) !== check) {
    throw new InvalidInputError('the join token\'s check characters do not match: a character was mistyped, lost or swapped');
  }
  return { id, secret, caFingerprint: `${FINGERPRINT_PREFIX}${ca}` };
}

export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

/** Compares in constant time, so the answer's timing tells nothing about the stored hash. */
export function secretMatches(secret: string, secretSha256: string): boolean {
  const given = Buffer.from(hashSecret(secret), 'hex');
  const stored = Buffer.from(secretSha256, 'hex');
  return given.length === stored.length && timingSafeEqual(given, stored);
}
