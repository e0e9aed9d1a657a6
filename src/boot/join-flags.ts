// The flags of joining a cluster, which every role takes: where a judicator answers (`--join`), and the
// join token that lets this node in (`--join-token`, KV2_JOIN_TOKEN, `--join-token-file`). Also the flags
// that went away with the cluster PKI (`--cluster-token`; executors' and gateways' etcd flags), which
// now stop the role with one line naming what replaced them. boot/identity.ts uses the token; it never
// reaches a module's config or command line.
import fs from 'node:fs';
import path from 'node:path';
import { UsageError } from '../common/errors';
import { localHost } from '../etcd/config';
import { DEFAULT_RPC_PORT } from '../rpc/contract';
import { parseJudicatorAddress } from '../rpc/judicator-list';
import { resolveAddress, type FlagSpec, type FlagValues } from './flags';
import { listenAddress } from './listen-address';
import type { RenderContext } from './module-definition';

/** Where a role keeps its cluster identity, relative to its role dir (0700: private keys). */
export const IDENTITY_DIR = 'data/pki';
/** The judicator's join token file, relative to its role dir (kept valid by the judicator, 0600). */
export const JOIN_TOKEN_FILE = `${IDENTITY_DIR}/join-token`;

const checkAddresses = (value: NonNullable<FlagValues[string]>): string | undefined => {
  try {
    for (const address of (value as string[])) parseJudicatorAddress(address);
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
};

/** The environment variable a join token may come in (the child preparing an identity gets it there). */
export const JOIN_TOKEN_ENV = 'KV2_JOIN_TOKEN';

export const joinFlags: FlagSpec[] = [
  {
    name: 'join',
    type: 'strings',
    check: checkAddresses,
    description: `RPC address(es) of any judicator of the cluster to join, host[:port] (port ${DEFAULT_RPC_PORT} by default; a DNS name stands for all its addresses)`,
    placeholder: 'host[:port],...',
  },
  {
    name: 'join-token',
    type: 'string',
    secret: true,
    env: JOIN_TOKEN_ENV,
    description: "join token of the cluster (kv2 join-token create); needed only until this node has joined. kv2 hides the value from ps, but KV2_JOIN_TOKEN or --join-token-file keep it out of shell histories too",
    placeholder: 'token',
  },
  { name: 'join-token-file', type: 'string', description: 'file holding the join token (a judicator keeps one valid in judicator/data/pki/join-token)', placeholder: 'file' },
];

/** A flag that is gone: accepted by the parser only to stop with `message`. */
function removed(name: string, message: string, extra: Partial<FlagSpec> = {}): FlagSpec {
  return { name, type: 'string', hidden: true, description: message, check: () => message, ...extra };
}

export const CLUSTER_TOKEN_GONE =
  'is gone: the cluster uses mutual TLS now, and nodes join it with a join token instead (kv2 join-token create on a judicator; then --join-token-file or KV2_JOIN_TOKEN on the node)';

/** `--cluster-token` (and KV2_CLUSTER_TOKEN), on every role. */
export const removedClusterTokenFlags: FlagSpec[] = [removed('cluster-token', CLUSTER_TOKEN_GONE, { env: 'KV2_CLUSTER_TOKEN' })];

/** The etcd flags executors and gateways had: they reach the cluster through a judicator's RPC now. */
export function removedEtcdClientFlags(role: 'executor' | 'gateway'): FlagSpec[] {
  const why = `${role}s no longer talk to etcd (only judicators do): give --join <judicator host>[:${DEFAULT_RPC_PORT}], the judicators' RPC address, instead`;
  return [
    removed('etcd-cluster-join-member-client', why, { aliases: ['etcd-endpoints'] }),
    removed('etcd-prefix', `${role}s no longer talk to etcd: the key prefix is the judicators' (kv2 judicator --etcd-prefix)`),
  ];
}

/** The join addresses given, or none. */
export function joinAddresses(flags: FlagValues): string[] {
  return Array.isArray(flags.join) ? flags.join : [];
}

/**
 * The judicators an executor or a gateway starts from: in `kv2 standalone`, its own judicator; else
 * `--join`, or the judicator started in the same work dir when there is one (its config/main.json says where).
 */
export function bootstrapJudicators(context: Pick<RenderContext, 'command' | 'flags' | 'workDir'>, role: string): string[] {
  const { flags } = context;
  if (context.command === 'standalone') {
    const advertised = resolveAddress(String(flags['main-advertise-address'] ?? 'localhost'));
    return [`${localHost(listenAddress(flags['main-listen-address'], advertised))}:${Number(flags['main-listen-port'] ?? DEFAULT_RPC_PORT)}`];
  }
  const given = joinAddresses(flags);
  if (given.length) return given;
  const local = localJudicator(context.workDir);
  if (local) return [local];
  throw new UsageError(
    `kv2 ${role} needs the judicators: give --join <judicator host>[:${DEFAULT_RPC_PORT}] (or start it in the work dir of a judicator on this machine)`,
  );
}

/** The RPC address of the judicator whose role dir is in `workDir`, from its config; undefined when none. */
export function localJudicator(workDir: string): string | undefined {
  try {
    const config = JSON.parse(fs.readFileSync(path.join(workDir, 'judicator', 'config', 'main.json'), 'utf8')) as { listen?: { address?: string; port?: number } };
    if (typeof config.listen?.address !== 'string' || typeof config.listen.port !== 'number') return undefined;
    return `${localHost(config.listen.address)}:${config.listen.port}`;
  } catch {
    return undefined;
  }
}
