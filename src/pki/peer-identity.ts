// The identity of the other end of a TLS connection. Servers (the judicator RPC) ask `peerIdentity(socket)`
// for the role and name of a client whose certificate OpenSSL verified against the cluster CA; clients of
// judicators use `judicatorServerCheck` as `checkServerIdentity`, which accepts any certificate of the
// cluster CA that carries the judicator role, whatever address it was reached at (a judicator's
// certificate need not list every NAT or alias address), and nothing else: an executor's certificate is
// signed by the same CA but must never pass for a judicator.
import type { PeerCertificate, TLSSocket } from 'node:tls';
import { describeError } from '../common/errors';
import { readIdentity, type CertIdentity, type Role } from './identity';

const identities = new WeakMap<TLSSocket, CertIdentity | null>();

/**
 * The verified identity of a TLS client, or undefined when it sent no certificate, its chain did not
 * verify against the CA, or its certificate carries no kv2 role. Parsed once per connection (kept-alive
 * connections carry many requests). Revocation is the caller's to check (revocation.ts), per request.
 */
export function peerIdentity(socket: TLSSocket): CertIdentity | undefined {
  if (!socket.authorized) return undefined;
  const cached = identities.get(socket);
  if (cached !== undefined) return cached ?? undefined;
  let identity: CertIdentity | null = null;
  try {
    const cert = socket.getPeerX509Certificate();
    identity = cert ? readIdentity(cert.raw) : null;
  } catch {
    identity = null;
  }
  identities.set(socket, identity);
  return identity ?? undefined;
}

/** Why a TLS client has no identity, for the refusal it gets. */
export function whyNoIdentity(socket: TLSSocket): string {
  if (!socket.getPeerCertificate || Object.keys(socket.getPeerCertificate()).length === 0) {
    return 'no client certificate: this port takes only certificates of the cluster (join the cluster first)';
  }
  if (!socket.authorized) return `the client certificate is not from this cluster's CA (${String(socket.authorizationError)})`;
  return 'the client certificate carries no kv2 role';
}

/** Whether `identity` holds one of `roles`. */
export function hasRole(identity: CertIdentity | undefined, roles: readonly Role[]): identity is CertIdentity {
  return identity !== undefined && roles.includes(identity.role);
}

/**
 * `checkServerIdentity` for every client of a judicator (RPC, join, renewal). Node calls it only after
 * the chain verified against the `ca` given, so the role is all that is left to check.
 */
export function judicatorServerCheck(_host: string, cert: PeerCertificate): Error | undefined {
  try {
    const identity = readIdentity(cert.raw);
    if (identity.role !== 'judicator') return new Error(`the server's certificate belongs to ${identity.role} ${identity.name}, not to a judicator`);
    return undefined;
  } catch (error) {
    return new Error(`the server's certificate is not a kv2 judicator's: ${describeError(error)}`);
  }
}
