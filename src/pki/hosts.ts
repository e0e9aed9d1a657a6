// The host names a judicator's certificate carries (DNS and IP SANs): checked and spelled one way when
// a certificate is made, read back when kv2 decides whether a certificate still covers a node's addresses.
// etcd's gRPC clients and Node's https check a server's address against these names.
import net from 'node:net';
import { InvalidInputError } from '../common/errors';
import type { X509Certificate } from 'node:crypto';
import { nodeCertificate, subjectAltNames } from './san';

/**
 * The loopback names every judicator certificate carries, whatever it was asked for: local clients (the
 * CLI, etcdctl, the other modules of the node) reach a judicator there, and etcd admits to its client
 * port only certificates that carry `localhost` (etcd-tls.ts), which the CA gives judicators alone.
 */
export const LOOPBACK_HOSTS = ['127.0.0.1', '::1', 'localhost'] as const;

/** Host names one certificate may carry. */
export const MAX_HOSTS = 32;

const DNS_NAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/** One spelling per host: IPv6 compressed (`::1`), DNS names lower case; anything else is refused. */
export function normaliseHost(host: unknown): { kind: 'ip' | 'dns'; value: string } {
  if (typeof host !== 'string') throw new InvalidInputError('a host name must be a string');
  const family = net.isIP(host);
  if (family) return { kind: 'ip', value: new net.SocketAddress({ address: host, family: family === 6 ? 'ipv6' : 'ipv4' }).address };
  if (DNS_NAME.test(host)) return { kind: 'dns', value: host.toLowerCase() };
  throw new InvalidInputError(`bad host name ${JSON.stringify(host)}: expected an IP address or a DNS name`);
}

/** IPs and DNS names, checked and without repeats; a list with anything bad is refused whole. */
export function splitHosts(hosts: readonly unknown[]): { ips: string[]; dns: string[] } {
  if (hosts.length > MAX_HOSTS) throw new InvalidInputError(`too many host names (${hosts.length}); at most ${MAX_HOSTS}`);
  const ips = new Set<string>();
  const dns = new Set<string>();
  for (const host of hosts) {
    const { kind, value } = normaliseHost(host);
    (kind === 'ip' ? ips : dns).add(value);
  }
  return { ips: [...ips], dns: [...dns] };
}

/** The DNS names and IP addresses a certificate carries, normalised. */
export function certificateHosts(certificate: string | Buffer | X509Certificate): string[] {
  return subjectAltNames(nodeCertificate(certificate))
    .filter((n) => n.type === 'DNS' || n.type === 'IP Address')
    .map((n) => normaliseHost(n.value).value);
}

/** Whether a certificate names every one of `wanted` (in any spelling). */
export function coversHosts(certificate: string | Buffer | X509Certificate, wanted: readonly string[]): boolean {
  const has = new Set(certificateHosts(certificate));
  return wanted.every((host) => has.has(normaliseHost(host).value));
}
