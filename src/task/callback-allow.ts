// Where a task's callback may go (issue 17): the operator's allow list (--task-callback-allow), which the
// gateway applies when a task is submitted and the judicator again when it delivers, after resolving the
// host (the addresses a name resolves to are checked, and connected to, not the name: DNS cannot swap a
// private address in between). Entries: a host name (exact, any case), `*.domain` (any name under the
// domain, not the domain itself), an IP address or a CIDR block (10.0.0.0/8, fd00::/8), or `*` (any host
// name). Nothing is allowed by default. Addresses a callback could use to reach the machine itself or its
// neighbours unseen (loopback, link-local such as a cloud's metadata service 169.254.169.254, unspecified,
// multicast) are refused unless an IP or CIDR entry names them: a host name entry is not enough.
import net from 'node:net';

/** The flag that allows callback hosts, named in messages. */
export const CALLBACK_ALLOW_FLAG = '--task-callback-allow';

type Rule = { kind: 'any' } | { kind: 'host'; host: string } | { kind: 'suffix'; suffix: string } | { kind: 'block'; block: net.BlockList; text: string };

/** Ranges a callback may reach only when an IP or CIDR entry names them. */
const GUARDED = new net.BlockList();
GUARDED.addSubnet('127.0.0.0', 8, 'ipv4');
GUARDED.addSubnet('169.254.0.0', 16, 'ipv4');
GUARDED.addSubnet('0.0.0.0', 8, 'ipv4');
GUARDED.addSubnet('224.0.0.0', 4, 'ipv4');
GUARDED.addAddress('::1', 'ipv6');
GUARDED.addAddress('::', 'ipv6');
GUARDED.addSubnet('fe80::', 10, 'ipv6');
GUARDED.addSubnet('ff00::', 8, 'ipv6');

const HOST_NAME = /^(?=.{1,253}$)([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?$/;

function family(address: string): 'ipv4' | 'ipv6' {
  return net.isIPv6(address) ? 'ipv6' : 'ipv4';
}

/** An IPv4 address mapped into IPv6 (::ffff:10.0.0.1) is checked as the IPv4 address it is. */
function plain(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return mapped ? mapped[1]! : address;
}

/** A URL's host as a name or address: lower case, without IPv6 brackets or a trailing dot. */
function hostOf(url: URL): string {
  return url.hostname.replace(/^\[|\]$/g, '').replace(/\.$/, '').toLowerCase();
}

/** Why an allow-list entry is not one, or undefined when it is fine (for the flag's check). */
export function checkAllowEntry(entry: string): string | undefined {
  try {
    parseEntry(entry);
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}

function parseEntry(raw: string): Rule {
  const entry = raw.trim().toLowerCase();
  if (entry === '*') return { kind: 'any' };
  if (entry.includes('/')) {
    const [address, bits] = entry.split('/') as [string, string];
    const prefix = Number(bits);
    const kind = family(address);
    if (!net.isIP(address) || !/^\d{1,3}$/.test(bits) || prefix > (kind === 'ipv4' ? 32 : 128)) throw new Error(`${JSON.stringify(raw)} is not a CIDR block such as 10.0.0.0/8`);
    const block = new net.BlockList();
    block.addSubnet(address, prefix, kind);
    return { kind: 'block', block, text: entry };
  }
  if (net.isIP(entry)) {
    const block = new net.BlockList();
    block.addAddress(entry, family(entry));
    return { kind: 'block', block, text: entry };
  }
  if (entry.startsWith('*.') && HOST_NAME.test(entry.slice(2))) return { kind: 'suffix', suffix: entry.slice(1) };
  if (HOST_NAME.test(entry)) return { kind: 'host', host: entry.replace(/\.$/, '') };
  throw new Error(`${JSON.stringify(raw)} is not a host name, *.domain, an IP address, a CIDR block or *`);
}

export class CallbackAllowList {
  private readonly rules: Rule[];

  /** Throws on an entry that is not one (the flag's check says so first). */
  constructor(readonly entries: readonly string[]) {
    this.rules = entries.map(parseEntry);
  }

  get empty(): boolean {
    return this.rules.length === 0;
  }

  private addressListed(address: string): boolean {
    const ip = plain(address);
    return this.rules.some((rule) => rule.kind === 'block' && rule.block.check(ip, family(ip)));
  }

  /**
   * Why the callback URL's host is not allowed, or undefined when it is (the name or address as written;
   * what a name resolves to is checkAddress's, at delivery).
   */
  refusal(url: URL): string | undefined {
    if (this.empty) return `callbacks are off on this cluster: its operator allows no callback host (${CALLBACK_ALLOW_FLAG})`;
    const host = hostOf(url);
    if (net.isIP(host)) {
      if (this.addressListed(host)) return undefined;
      if (GUARDED.check(plain(host), family(plain(host)))) return `callback_url names ${host}, an address callbacks may reach only when ${CALLBACK_ALLOW_FLAG} lists it`;
      if (this.rules.some((rule) => rule.kind === 'any')) return undefined;
      return `callback_url names ${host}, which ${CALLBACK_ALLOW_FLAG} does not allow`;
    }
    const allowed = this.rules.some(
      (rule) => rule.kind === 'any' || (rule.kind === 'host' && rule.host === host) || (rule.kind === 'suffix' && host.endsWith(rule.suffix)),
    );
    return allowed ? undefined : `callback_url names ${host}, which ${CALLBACK_ALLOW_FLAG} does not allow`;
  }

  /** Why a callback may not connect to `address` (one its host resolved to), or undefined when it may. */
  checkAddress(address: string): string | undefined {
    const ip = plain(address);
    if (!GUARDED.check(ip, family(ip)) || this.addressListed(ip)) return undefined;
    return `it resolves to ${ip}, an address callbacks may reach only when ${CALLBACK_ALLOW_FLAG} lists it`;
  }
}
