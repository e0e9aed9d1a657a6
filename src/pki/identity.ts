// Who a cluster certificate says its holder is: a role and a node name, written into the certificate as
// SAN URIs `kv2:role:<role>` and `kv2:node:<name>` (the Subject CN is the role too), and read back here.
// CN = role lets etcd's own checks work per role (`--peer-cert-allowed-cn judicator`, and etcd RBAC, which
// takes a client certificate's CN as the user name); the node name lives in a URI so it never clashes.
import { InvalidInputError } from '../common/errors';
import type { X509Certificate } from 'node:crypto';
import { nodeCertificate, subjectAltNames } from './san';

/** Every role a certificate can carry. `admin` is the CLI of an operator. */
export const ROLES = ['judicator', 'executor', 'gateway', 'admin'] as const;
export type Role = (typeof ROLES)[number];

export const ROLE_URI_PREFIX = 'kv2:role:';
export const NODE_URI_PREFIX = 'kv2:node:';

/** A node name: what `--<role>-name` takes (the RPC contract's name rule), so it fits a URI and an etcd key. */
export const NODE_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

/** What kv2 reads out of a certificate it verified. */
export interface CertIdentity {
  role: Role;
  name: string;
  /** Lower-case hex without leading zeros (see normaliseSerial). */
  serial: string;
  notBefore: Date;
  notAfter: Date;
}

export function isRole(value: unknown): value is Role {
  return typeof value === 'string' && (ROLES as readonly string[]).includes(value);
}

export function checkRole(value: unknown): Role {
  if (!isRole(value)) throw new InvalidInputError(`unknown role ${JSON.stringify(value)}: a role is one of ${ROLES.join(', ')}`);
  return value;
}

export function checkNodeName(name: unknown): string {
  if (typeof name !== 'string' || !NODE_NAME_PATTERN.test(name)) {
    throw new InvalidInputError(
      `bad node name ${JSON.stringify(name)}: 1 to 128 letters, digits, "_", "." or "-", starting with a letter or digit`,
    );
  }
  return name;
}

/**
 * One spelling of a serial number for every place that compares them: Node prints upper case with leading
 * zeros, the X.509 library lower case; the revocation list and the issued-certificate records use this.
 */
export function normaliseSerial(hex: string): string {
  const trimmed = hex.toLowerCase().replace(/^0+/, '');
  return trimmed === '' ? '0' : trimmed;
}

/** The SAN URIs that carry a role and a node name. */
export function identityUris(role: Role, name: string): string[] {
  return [`${ROLE_URI_PREFIX}${role}`, `${NODE_URI_PREFIX}${name}`];
}

/**
 * The role and node name a certificate carries. Throws InvalidInputError when it carries none, or more
 * than one of either: such a certificate was not made by kv2's CA and gets no role at all.
 * Only call this on a certificate whose chain was verified against the cluster CA.
 */
export function readIdentity(certificate: X509Certificate | Buffer | string): CertIdentity {
  const cert = nodeCertificate(certificate);
  const uris = subjectAltNames(cert).filter((n) => n.type === 'URI').map((n) => n.value);
  const roles = uris.filter((u) => u.startsWith(ROLE_URI_PREFIX)).map((u) => u.slice(ROLE_URI_PREFIX.length));
  const names = uris.filter((u) => u.startsWith(NODE_URI_PREFIX)).map((u) => u.slice(NODE_URI_PREFIX.length));
  const subject = cert.subject.replace(/\n/g, ', ');
  if (roles.length !== 1 || !isRole(roles[0])) {
    throw new InvalidInputError(`certificate ${subject} carries no single kv2 role (found ${JSON.stringify(roles)})`);
  }
  if (names.length !== 1 || !NODE_NAME_PATTERN.test(names[0]!)) {
    throw new InvalidInputError(`certificate ${subject} carries no single kv2 node name (found ${JSON.stringify(names)})`);
  }
  return {
    role: roles[0],
    name: names[0]!,
    serial: normaliseSerial(cert.serialNumber),
    notBefore: new Date(cert.validFrom),
    notAfter: new Date(cert.validTo),
  };
}
