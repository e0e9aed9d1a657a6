// A rolling update through the built kv2 (SPEC §9): every node of a running 3-judicator cluster with two
// executors and a gateway is stopped with SIGTERM and started again in its work dir with its flags, one
// at a time, each waited for until healthy, while tasks keep coming; afterwards every accepted task is
// done, successfully, with its own output.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { etcdClient, waitForMembers } from '../helpers/cluster';
import { startNode, waitForJudicator, type Kv2Node } from '../helpers/kv2';
import { GatewayClient, startSystem } from '../helpers/system';
import { waitFor } from '../helpers/wait';

/** A task that runs a little while (so executors have tasks in hand when they drain) and prints its own n. */
function taskFields(n: number): Record<string, string | number> {
  return {
    user: n % 2,
    compile_command: `echo compiling ${n}`,
    compile_timeout: 30,
    execute_input: `input ${n}`,
    execute_command: 'sleep 0.3; cat',
    execute_timeout: 30,
    execute_standard: `input ${n}`,
  };
}

/** Submits tasks at a steady pace until stopped; a submission the gateway could not take is only counted. */
function startProducer(gateway: GatewayClient) {
  const accepted: { id: string; n: number }[] = [];
  let refused = 0;
  let running = true;
  const done = (async () => {
    for (let n = 0; running; n++) {
      try {
        const answer = await gateway.submit(taskFields(n));
        if (answer.result === 0 && answer.id) accepted.push({ id: answer.id, n });
        else refused++;
      } catch {
        refused++; // the gateway is being replaced
      }
      await new Promise((r) => setTimeout(r, 150));
    }
  })();
  return {
    accepted,
    refused: () => refused,
    async stop() {
      running = false;
      await done;
    },
  };
}

/** When the executor process now registered under `name` started (its reports say), as the gateway lists it. */
async function executorStarted(url: string, name: string): Promise<string | undefined> {
  const response = await fetch(`${url}/api/executors`, { signal: AbortSignal.timeout(10_000) });
  const body = (await response.json()) as { executors: { id: string; started?: string; alive?: boolean }[] };
  const found = body.executors.find((e) => e.id === name && e.alive !== false);
  return found?.started;
}

async function doneCount(url: string): Promise<number> {
  const response = await fetch(`${url}/api/task/list`, { signal: AbortSignal.timeout(10_000) });
  const body = (await response.json()) as { tasks: { done: boolean }[] };
  return body.tasks.filter((task) => task.done).length;
}

test('replacing every node of a running cluster one at a time, with SIGTERM, loses no task', async (t) => {
  const system = await startSystem(t, { judicators: 3, executors: 2, slots: 2 });
  const gatewayUrl = system.gateways[0]!.url;
  const gateway = new GatewayClient(gatewayUrl);
  const etcd = await etcdClient(t, system.judicators.map((j) => j.clientUrl), system.judicators[0]!);
  const names = system.judicators.map((j) => j.name);
  const producer = startProducer(gateway);

  /** Tasks keep being accepted and finished: the system is working again. */
  const flowing = async (what: string) => {
    const accepted = producer.accepted.length;
    const done = await doneCount(gatewayUrl).catch(() => 0);
    await waitFor(async () => producer.accepted.length >= accepted + 3 && (await doneCount(gatewayUrl)) >= done + 3, {
      what: `tasks flowing after ${what}`,
      timeoutMs: 90_000,
    });
  };
  const stopped = async (node: Kv2Node, what: string) => {
    assert.equal(await node.stop('SIGTERM', 90_000), 0, `${what} exits 0 on SIGTERM:\n${node.tail()}`);
  };

  try {
    await flowing('start');
    for (const judicator of system.judicators) {
      await stopped(judicator.node, judicator.name);
      // It left the etcd cluster on its way out.
      const survivors = system.judicators.filter((j) => j !== judicator).map((j) => j.clientUrl);
      await waitForMembers(await etcdClient(t, survivors, system.judicators[0]!), names.filter((n) => n !== judicator.name));
      judicator.node = startNode(t, judicator.dir, judicator.args);
      await waitForJudicator(judicator.node, judicator.ports.rpc, 120_000);
      await waitForMembers(etcd, names, 120_000);
      await flowing(`replacing ${judicator.name}`);
    }

    for (const executor of system.executors) {
      const before = await executorStarted(gatewayUrl, executor.name);
      assert.ok(before, `${executor.name} is registered`);
      await stopped(executor.node, executor.name);
      assert.match(fs.readFileSync(path.join(executor.dir, 'executor/log/main/main.log'), 'utf8'), /SIGTERM: draining/);
      executor.node = startNode(t, executor.dir, executor.args);
      // Its new process registers with its first report (a new start time).
      await waitFor(async () => {
        const started = await executorStarted(gatewayUrl, executor.name);
        return started !== undefined && started !== before;
      }, { what: `${executor.name} registered again`, timeoutMs: 60_000 });
      await flowing(`replacing ${executor.name}`);
    }

    const gatewayNode = system.gateways[0]!;
    await stopped(gatewayNode.node, 'the gateway');
    gatewayNode.node = startNode(t, gatewayNode.dir, gatewayNode.args);
    await waitFor(async () => (await fetch(`${gatewayUrl}/api/health`, { signal: AbortSignal.timeout(2_000) })).ok, { what: 'the gateway back', timeoutMs: 60_000 });
    await flowing('replacing the gateway');
  } finally {
    await producer.stop();
  }

  // No accepted task is lost: each is done, successfully, with the output of its own input.
  assert.ok(producer.accepted.length >= 30, `a steady stream of tasks (${producer.accepted.length} accepted)`);
  for (const { id, n } of producer.accepted) {
    const task = await gateway.waitDone(id, 180_000);
    assert.equal(task.status, 5, `task ${id} ends in Success: ${JSON.stringify(task)}`);
    assert.equal(task.result?.execute_output, `input ${n}`, `task ${id} ran its own input`);
    assert.equal(task.result?.accepted, true);
  }
});
