// The gateway's server in-process, against three real judicators (the built kv2): a judicator that
// stops answering (SIGSTOP) costs one RPC timeout and the call is answered by another; a judicator
// that is killed outright (its registration still in etcd) costs nothing that the client sees.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { createLogger } from '../../src/common/logging';
import { JudicatorLink as GatewayCluster } from '../../src/gateway/judicator-link';
import { createGatewayServer } from '../../src/gateway/server';
import { issueIdentity, startJudicators, type ClusterNode } from '../helpers/cluster';
import { readPid } from '../helpers/kv2';
import { killNode } from '../helpers/system';
import { waitFor } from '../helpers/wait';
import { fileHooks } from '../helpers/file-hooks';

const hooks = fileHooks();

/** Milliseconds one judicator gets before the gateway asks another (short, for the test). */
const RPC_TIMEOUT_MS = 1_500;

let judicators: ClusterNode[];
let cluster: GatewayCluster;
let app: FastifyInstance;

before(async () => {
  judicators = await startJudicators(hooks, 3);
  const logger = createLogger('gateway-test', { maxBytes: 1 << 20, keep: 0, printToStdout: false, level: 'warn' });
  // The gateway in this process joined already: a gateway certificate made from the cluster's CA.
  const { dir } = await issueIdentity(hooks, judicators[0]!, 'gateway', 'test-gateway');
  cluster = new GatewayCluster({ join: judicators.map((j) => j.rpcAddress), identityDir: dir, rpc: { timeout_ms: RPC_TIMEOUT_MS, attempts: 3, avoid_ms: 60_000 } }, logger);
  const controller = new AbortController();
  const running = cluster.run(controller.signal);
  hooks.after(async () => {
    controller.abort();
    await running;
    cluster.close();
  });
  ({ app } = await createGatewayServer({
    rpc: cluster.rpc,
    judicators: () => cluster.judicators(),
    logger,
    limits: { body_bytes: 1 << 20, task_max_size: 16_252_928, batch_max: 100, batch_concurrency: 4 },
    tokens: [],
    ui: { get: async () => undefined },
  }));
  hooks.after(() => app.close());
  await waitFor(async () => (await app.inject('/api/judicators')).json().judicators.length === 3, { what: 'three judicators listed', timeoutMs: 30_000 });
});

/** The judicator the RPC client now prefers (the one it used last). */
function preferredJudicator(): ClusterNode {
  const address = (cluster.rpc as unknown as { preferred?: string }).preferred;
  const found = judicators.find((j) => `127.0.0.1:${j.ports.rpc}` === address);
  assert.ok(found, `the client prefers ${address}`);
  return found;
}

async function addAndSearch(user: number): Promise<number> {
  const started = Date.now();
  const added = await app.inject({ method: 'POST', url: '/api/task', payload: { user, compile_timeout: 0, execute_timeout: 1, execute_command: 'true' } });
  assert.equal(added.json().result, 0, added.body);
  const listed = await app.inject(`/api/task/list?user=${user}`);
  assert.equal(listed.json().result, 0, listed.body);
  assert.ok(listed.json().tasks.some((t: { id: string }) => t.id === added.json().id));
  return Date.now() - started;
}

describe('gateway failover between judicators', () => {
  it('lists the three judicators with exactly one leader', async () => {
    const { judicators: listed } = (await app.inject('/api/judicators')).json();
    assert.deepEqual(listed.map((j: { name: string }) => j.name).sort(), ['/judicator/service/j1', '/judicator/service/j2', '/judicator/service/j3']);
    await waitFor(async () => (await app.inject('/api/judicators')).json().judicators.filter((j: { leader: boolean }) => j.leader).length === 1, { what: 'one leader', timeoutMs: 30_000 });
  });

  it('a judicator that hangs costs one timeout, then another answers', async () => {
    await addAndSearch(1);
    const hung = preferredJudicator();
    const pid = readPid(path.join(hung.dir, 'judicator', 'data', 'main.pid'));
    assert.ok(pid, 'the main module runs');
    process.kill(pid, 'SIGSTOP');
    try {
      const first = await addAndSearch(2);
      assert.ok(first < RPC_TIMEOUT_MS * 3, `answered in ${first} ms despite a hung judicator`);
      assert.notEqual(preferredJudicator(), hung);
      // The hung one is avoided now: no more timeouts.
      for (let i = 0; i < 5; i++) assert.ok((await addAndSearch(3)) < RPC_TIMEOUT_MS, 'no timeout once the hung judicator is avoided');
    } finally {
      process.kill(pid, 'SIGCONT');
    }
  });

  it('a judicator killed outright (its registration still in etcd) is failed over', async () => {
    const dead = preferredJudicator();
    await killNode(dead);
    for (let i = 0; i < 10; i++) await addAndSearch(4);
    const health = await app.inject('/api/health');
    assert.equal(health.statusCode, 200);
    assert.notEqual(preferredJudicator(), dead);
  });
});
