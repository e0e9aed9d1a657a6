// Where a judicator's ports listen when the operator does not say: a judicator advertised at a local
// address (the default `localhost`: one machine, `kv2 standalone`, tests) listens on loopback only, so a
// single-machine cluster is not reachable from the network at all; one advertised at a network address
// (`--etcd-advertise-address host1`, swarm's DOCKER) listens on every interface. TLS is on either way.
import net from 'node:net';
import type { FlagSpec, FlagValue, FlagValues } from './flags';
import { optionalNumber, resolveAddress } from './flags';

/** Whether `address` names this machine's loopback (localhost, 127.0.0.0/8, ::1). */
export function isLoopback(address: string): boolean {
  if (address === 'localhost') return true;
  if (net.isIPv4(address)) return address.startsWith('127.');
  return net.isIPv6(address) && (address === '::1' || address === '0:0:0:0:0:0:0:1');
}

/** The listen address: the flag when given; else the advertised address if it is a loopback IP, 127.0.0.1 for localhost, 0.0.0.0 otherwise. */
export function listenAddress(flag: FlagValue, advertised: string): string {
  if (flag !== undefined && flag !== '') return resolveAddress(String(flag));
  if (!isLoopback(advertised)) return '0.0.0.0';
  return advertised === 'localhost' ? '127.0.0.1' : advertised;
}

/** The `--<prefix>-listen-address` flag of a judicator's module, its default (listenAddress) said in its help. */
export function listenAddressFlag(prefix: string, description: string): FlagSpec {
  return {
    name: `${prefix}-listen-address`,
    type: 'string',
    defaultText: `127.0.0.1 while --${prefix}-advertise-address is local (localhost, a loopback address), else 0.0.0.0`,
    description,
    placeholder: 'address',
  };
}

/**
 * Where a judicator's module (`main`, `mongodb`) listens and is reached, from its
 * `--<prefix>-{listen,advertise}-{address,port}` flags: the advertised port is the listen port unless given.
 */
export function listenAndAdvertise(flags: FlagValues, prefix: string): { listen: HostPort; advertise: HostPort } {
  const port = Number(flags[`${prefix}-listen-port`]);
  const advertise = resolveAddress(String(flags[`${prefix}-advertise-address`]));
  return {
    listen: { address: listenAddress(flags[`${prefix}-listen-address`], advertise), port },
    advertise: { address: advertise, port: optionalNumber(flags[`${prefix}-advertise-port`]) ?? port },
  };
}

export interface HostPort {
  address: string;
  port: number;
}
