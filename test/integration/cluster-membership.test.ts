// etcd membership of judicators (real clusters of the built kv2 on loopback): concurrent joins, leaving
// on SIGINT (revoking its certificate), collection of a member killed with SIGKILL (revoked too) and its
// clean rejoin with a certificate issued after that.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { etcdClient, memberNames, restartJudicator, startJudicators, waitForMembers } from '../helpers/cluster';
import { killLeftovers, waitForJudicator } from '../helpers/kv2';

test('two judicators joining the first at the same moment end as one three-member cluster', async (t) => {
  const nodes = await startJudicators(t, 3);
  for (const node of nodes) {
    // Every member sees the same three members: one cluster, not three.
    const client = await etcdClient(t, [node.clientUrl], nodes[0]!);
    await waitForMembers(client, ['j1', 'j2', 'j3']);
  }
});

test('a judicator stopped with SIGINT leaves the member list, and joins again when restarted', async (t) => {
  const nodes = await startJudicators(t, 3);
  const client = await etcdClient(t, nodes.slice(0, 2).map((n) => n.clientUrl), nodes[0]!);
  await waitForMembers(client, ['j1', 'j2', 'j3']);
  const leaving = nodes[2]!;
  assert.equal(await leaving.node.stop('SIGINT'), 0);
  await waitForMembers(client, ['j1', 'j2'], 20_000);
  const back = restartJudicator(t, leaving);
  await waitForJudicator(back.node, back.ports.rpc, 90_000);
  await waitForMembers(client, ['j1', 'j2', 'j3']);
});

test('a judicator killed with SIGKILL is collected after the grace period and rejoins when started again', async (t) => {
  const nodes = await startJudicators(t, 3, ['--etcd-member-gc-after', '3']);
  const client = await etcdClient(t, nodes.slice(0, 2).map((n) => n.clientUrl), nodes[0]!);
  await waitForMembers(client, ['j1', 'j2', 'j3']);
  const victim = nodes[2]!;
  // The whole node dies at once (a lost machine): supervisor, modules and etcd, with no chance to leave.
  killLeftovers(victim.dir);
  await victim.node.waitExit();
  await waitForMembers(client, ['j1', 'j2'], 60_000);
  assert.deepEqual(await memberNames(client), ['j1', 'j2']);
  const back = restartJudicator(t, victim);
  await waitForJudicator(back.node, back.ports.rpc, 120_000);
  await waitForMembers(client, ['j1', 'j2', 'j3'], 90_000);
});
