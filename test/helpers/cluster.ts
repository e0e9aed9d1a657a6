// Clusters of judicators (the built kv2) on loopback for tests: each node in its own work dir with its
// own ports, all stopped when the test ends.
import path from 'node:path';
import type { Etcd3 } from 'etcd3';
import { createEtcdClient } from '../../src/etcd/client';
import { judicatorPortFlags, judicatorPorts, startNode, waitForJudicator, type JudicatorPorts, type Kv2Node } from './kv2';
import { makeTempDir } from './temp';
import { waitFor } from './wait';

type Hooks = { after: (fn: () => unknown) => void };

export interface ClusterNode {
  name: string;
  dir: string;
  ports: JudicatorPorts;
  node: Kv2Node;
  clientUrl: string;
  args: string[];
}

export const FAST_JUDICATOR_FLAGS = [
  '--boot-check-interval', '0.5',
  '--boot-grace-period', '15',
  '--main-lead-interval', '0.5',
];

export function judicatorArgs(name: string, ports: JudicatorPorts, extra: string[] = []): string[] {
  return ['judicator', ...judicatorPortFlags(ports), '--etcd-name', name, '--main-name', name, ...FAST_JUDICATOR_FLAGS, ...extra];
}

/**
 * Starts `count` judicators at the same moment, each told every member's client URL
 * (--etcd-cluster-join-member-client): the first URL founds the cluster and the others join it.
 */
export async function startJudicators(hooks: Hooks, count: number, extra: string[] = []): Promise<ClusterNode[]> {
  const specs = [];
  for (let i = 0; i < count; i++) {
    const ports = await judicatorPorts();
    specs.push({ name: `j${i + 1}`, dir: makeTempDir(hooks, `kv2-j${i + 1}-`), ports, clientUrl: `http://127.0.0.1:${ports.client}` });
  }
  const join = specs.map((s) => s.clientUrl).join(',');
  const nodes = specs.map((spec) => {
    const args = judicatorArgs(spec.name, spec.ports, ['--etcd-cluster-join-member-client', join, ...extra]);
    return { ...spec, args, node: startNode(hooks, spec.dir, args) };
  });
  await Promise.all(nodes.map((n) => waitForJudicator(n.node, n.ports.rpc, 90_000)));
  return nodes;
}

/** Starts a judicator again in its old work dir, with its old flags. */
export function restartJudicator(hooks: Hooks, node: ClusterNode): ClusterNode {
  return { ...node, node: startNode(hooks, node.dir, node.args) };
}

export function etcdClient(hooks: Hooks, urls: string[]): Etcd3 {
  const client = createEtcdClient(urls, { dialTimeoutMs: 2_000, callTimeoutMs: 3_000 });
  hooks.after(() => client.close());
  return client;
}

/** Names of the cluster's members (started ones have a name), as seen through `client`. */
export async function memberNames(client: Etcd3): Promise<string[]> {
  const { members } = await client.cluster.memberList({});
  return members.map((m) => m.name || '(unstarted)').sort();
}

export async function waitForMembers(client: Etcd3, expected: string[], timeoutMs = 60_000): Promise<void> {
  const want = [...expected].sort().join(',');
  let seen = '';
  await waitFor(
    async () => {
      seen = (await memberNames(client)).join(',');
      return seen === want;
    },
    { what: () => `etcd members to be ${want} (last seen: ${seen})`, timeoutMs, intervalMs: 250 },
  );
}

export function dataDir(node: ClusterNode): string {
  return path.join(node.dir, 'judicator', 'data', 'etcd');
}
