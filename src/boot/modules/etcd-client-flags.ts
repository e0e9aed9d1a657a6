// The flags of a node that is an etcd client, not a member (executor, gateway): where the judicators'
// etcd is, the key prefix, the cluster token. And the endpoints such a node bootstraps from: the flag,
// or in `kv2 standalone` the local judicator's etcd.
import { UsageError } from '../../common/errors';
import { resolveAddress, type FlagSpec } from '../flags';
import type { RenderContext } from '../module-definition';
import { localClientUrl } from './etcd';
import { DEFAULT_PREFIX } from '../../etcd/keys';

/** The original's flag name; `--etcd-endpoints` is the clearer alias. */
export const ENDPOINTS_FLAG = 'etcd-cluster-join-member-client';

export const clusterClientFlags: FlagSpec[] = [
  {
    name: ENDPOINTS_FLAG,
    aliases: ['etcd-endpoints'],
    type: 'string',
    description: "client URLs of the judicators' etcd, comma-separated (http://judicator:2001); required",
    placeholder: 'urls',
  },
  { name: 'etcd-prefix', type: 'string', default: DEFAULT_PREFIX, description: 'prefix of every kv2 key in etcd', placeholder: 'prefix' },
  { name: 'cluster-token', type: 'string', env: 'KV2_CLUSTER_TOKEN', description: 'token every RPC call carries (the judicators must have the same)', placeholder: 'token' },
];

/** The etcd endpoints an executor or gateway starts from. */
export function clientEndpoints(context: Pick<RenderContext, 'command' | 'flags'>, role: string): string[] {
  const { flags } = context;
  if (context.command === 'standalone') {
    return [
      localClientUrl({
        listen: {
          address: resolveAddress(String(flags['etcd-listen-address'] ?? '127.0.0.1')),
          peer_port: Number(flags['etcd-listen-peer-port'] ?? 2000),
          client_port: Number(flags['etcd-listen-client-port'] ?? 2001),
        },
      }),
    ];
  }
  const endpoints = String(flags[ENDPOINTS_FLAG] ?? '')
    .split(',')
    .map((e) => e.trim())
    .filter(Boolean);
  if (endpoints.length === 0) {
    throw new UsageError(`kv2 ${role} needs the judicators' etcd: give --etcd-endpoints http://<judicator host>:2001 (alias --${ENDPOINTS_FLAG})`);
  }
  return endpoints;
}
