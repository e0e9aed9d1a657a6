// --cluster-token: judicators refuse RPC calls without it, executors and gateways that carry it work,
// and an executor may only report for its own name (the key it registered in etcd).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startJudicators } from '../helpers/cluster';
import { GatewayClient, startExecutor, startGateway } from '../helpers/system';

const TOKEN = 'correct-horse-battery-staple';

async function rpc(port: number, method: string, body: unknown, token?: string) {
  const response = await fetch(`http://127.0.0.1:${port}/rpc/${method}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as { result: number; message?: string } };
}

test('with --cluster-token, RPC calls need it and executors may only report for their own name', async (t) => {
  const [judicator] = await startJudicators(t, 1, ['--cluster-token', TOKEN]);
  const port = judicator!.ports.rpc;

  const anonymous = await rpc(port, 'search', { limit: 1 });
  assert.equal(anonymous.status, 401);
  assert.equal(anonymous.body.result, 5);
  assert.match(anonymous.body.message!, /cluster token/);
  assert.equal((await rpc(port, 'search', { limit: 1 }, 'wrong-token')).status, 401);
  assert.equal((await rpc(port, 'search', { limit: 1 }, TOKEN)).body.result, 0);

  // An executor without the token gets no work; a gateway and an executor with it work end to end.
  startExecutor(t, 'e1', judicator!.clientUrl, ['--main-task-sandbox', 'none']);
  const gateway = await startGateway(t, judicator!.clientUrl, ['--cluster-token', TOKEN]);
  const api = new GatewayClient(gateway.url);
  const queued = await api.submit({ user: 1, execute_command: 'echo with-token', execute_timeout: 10 });
  assert.equal(queued.result, 0);
  startExecutor(t, 'e2', judicator!.clientUrl, ['--main-task-sandbox', 'none', '--cluster-token', TOKEN]);
  const done = await api.waitDone(queued.id!, 60_000);
  assert.equal(done.status, 5);
  assert.equal(done.result?.execute_output, 'with-token\n');
  assert.equal(done.executor, null);
  const executors = (await rpc(port, 'executors', {}, TOKEN)).body as unknown as { executors: { id: string }[] };
  assert.deepEqual(executors.executors.map((e) => e.id), ['e2'], 'the executor without the token never reported');

  // Someone with the token but not e2's registered key cannot report as e2 (steal or fail its tasks).
  const impostor = await rpc(port, 'report', { executor: 'e2', complete: [], executing: [], vacant: 3, key: 'not-e2s-key' }, TOKEN);
  assert.equal(impostor.body.result, 5);
  assert.match(impostor.body.message!, /registered by another executor process|does not carry that executor's key/);
  const unregistered = await rpc(port, 'report', { executor: 'nobody', complete: [], executing: [], vacant: 3 }, TOKEN);
  assert.equal(unregistered.body.result, 5);
  assert.match(unregistered.body.message!, /not registered/);
});
