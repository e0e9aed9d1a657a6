// The etcd store beyond the conformance suite: its held views (one read of an executor's tasks serving
// its next reports) never answer from stale data when another judicator changed the tasks meanwhile, and
// its round trips per report stay what the store promises.
import assert from 'node:assert/strict';
import { after, before, describe, test, type TestContext } from 'node:test';
import type { Etcd3 } from 'etcd3';
import { createEtcdClient } from '../../src/etcd/client';
import { createLogger } from '../../src/common/logging';
import { EtcdTaskStore } from '../../src/store/etcd/store';
import { packText, unpackText } from '../../src/task/codec';
import { DEFAULT_TASK_MAX_SIZE } from '../../src/task/limits';
import { TaskStatus, type TaskInput } from '../../src/task/types';
import { EtcdServer, etcdBinary } from '../helpers/etcd';

const logger = createLogger('etcd-store-test', { maxBytes: 1, keep: 0, printToStdout: true, level: 'error' });
const task: TaskInput = {
  user: 1,
  compile: { source: Buffer.alloc(0), command: packText(''), timeout: 1 },
  execute: { input: packText(''), data: Buffer.alloc(0), command: packText('echo hello'), timeout: 1, standard: packText('') },
};
const result = (text: string) => ({ compile_output: packText(''), compile_error: packText(''), execute_output: packText(text), execute_error: packText('') });

const missing = etcdBinary();
describe('etcd store', { skip: 'missing' in missing ? missing.missing : undefined }, () => {
  const cleanups: (() => unknown)[] = [];
  let server: EtcdServer;
  let namespaces = 0;
  before(async () => {
    server = await EtcdServer.start({ after: (fn) => cleanups.push(fn) });
  });
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  /** Store instances (judicators) on a fresh prefix, each with its own client and call counter. */
  async function open(t: TestContext, count: number, heldViewMs: number) {
    const prefix = `etcd-store-${process.pid}-${++namespaces}/store/`;
    const out: { store: EtcdTaskStore; calls: () => number }[] = [];
    for (let i = 0; i < count; i++) {
      const client = createEtcdClient([server.endpoint]);
      const calls = countCalls(client);
      const store = await new EtcdTaskStore({ client, keyPrefix: prefix, maxTaskSize: DEFAULT_TASK_MAX_SIZE, logger, heldViewMs }).open();
      t.after(async () => {
        await store.close();
        client.close();
      });
      out.push({ store, calls });
    }
    return out;
  }

  test('a held view never answers for tasks another judicator changed since', async (t) => {
    // Views that never expire: every answer below comes from a view unless the store reads again.
    const [first, second] = await open(t, 2, 3_600_000);
    const a = first!.store;
    const b = second!.store;
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) ids.push(await a.add(task));
    await a.requeueUnreported('e1', new Set(), 3); // a reads e1's (empty) held tasks: its view
    await a.assign('e1', 4);
    const running = ids.map((id) => ({ id, status: TaskStatus.RUNNING }));
    assert.deepEqual(await a.updateExecuting('e1', running), { notHeld: [] });
    assert.deepEqual(await a.updateExecuting('e1', running), { notHeld: [] });

    await b.cancel(ids[0]!);
    assert.deepEqual((await b.complete('e1', [{ id: ids[1]!, status: TaskStatus.SUCCESS, result: result('b') }])).accepted, [ids[1]!]);
    await b.requeueHeldBy('e1', { reason: 'executor-gone', maxRetries: 3 });
    // ids[2] and ids[3] are Retrying now; b assigns one of them to e1 again (a's view does not know).
    const [again] = await b.assign('e1', 1);
    assert.ok(again);

    const { notHeld } = await a.updateExecuting('e1', running);
    assert.deepEqual(notHeld.sort(), ids.filter((id) => id !== again.id).sort());
    const late = await a.complete('e1', ids.map((id) => ({ id, status: TaskStatus.SUCCESS, result: result('a') })));
    assert.deepEqual(late.accepted, [again.id]);
    assert.equal(unpackText((await a.get(ids[1]!))!.result!.execute_output), 'b');
    assert.equal((await a.get(again.id))!.status, TaskStatus.SUCCESS);
  });

  test('an executor reporting to one judicator costs no read per report, and results one write', async (t) => {
    const { store, calls } = (await open(t, 1, 3_600_000))[0]!;
    for (let i = 0; i < 40; i++) await store.add(task);
    await store.requeueUnreported('e1', new Set(), 3);
    let holding = (await store.assign('e1', 4)).map((task) => task.id);
    const before = calls();
    let reports = 0;
    while (holding.length > 0) {
      reports++;
      const { accepted } = await store.complete('e1', holding.map((id) => ({ id, status: TaskStatus.SUCCESS, result: result('ok') })));
      assert.equal(accepted.length, holding.length);
      const reported = new Set(holding);
      await store.requeueUnreported('e1', reported, 3);
      const redelivered = await store.unacknowledged('e1', reported, 4);
      holding = [...redelivered, ...(await store.assign('e1', 4 - redelivered.length))].map((task) => task.id);
    }
    // Per report: the results (1), the queue (1), the claim (1); the last report finds the queue empty.
    assert.equal(reports, 10);
    assert.equal(calls() - before, 3 * reports - 1);
  });
});

function countCalls(client: Etcd3): () => number {
  let count = 0;
  const kv = client.kv as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
  for (const method of ['range', 'txn', 'put', 'deleteRange']) {
    const original = kv[method]!.bind(client.kv);
    kv[method] = (...args) => {
      count++;
      return original(...args);
    };
  }
  return () => count;
}
