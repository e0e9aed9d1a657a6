// One conformance suite for the TaskStore interface, run against every store kv2 has (a list of factories:
// etcd always; a factory whose backing service is missing prints one line and is skipped). Each test gets
// a fresh namespace, and opens two store instances on it where a test needs two judicators racing.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test, type TestContext } from 'node:test';
import { createEtcdClient } from '../../src/etcd/client';
import { TooLargeError } from '../../src/common/errors';
import { idPrefix, idTime, isId } from '../../src/common/ids';
import { createLogger } from '../../src/common/logging';
import { isoTime } from '../../src/common/time';
import { waitForTask } from '../../src/judicator/wait';
import { EtcdTaskStore } from '../../src/store/etcd/store';
import { openMongoStore } from '../../src/store/mongo/open';
import { etcdTransitions } from '../../src/store/etcd/transitions';
import { mongoTransitions } from '../../src/store/mongo/transitions';
import { TASK_TRANSITIONS, type StoreEvent, type TaskStore } from '../../src/store/task-store';
import { inputSize, packText, unpackText } from '../../src/task/codec';
import { DEFAULT_TASK_MAX_SIZE } from '../../src/task/limits';
import { TaskStatus, type TaskInput, type TaskResult } from '../../src/task/types';
import { EtcdServer, etcdBinary } from '../helpers/etcd';
import { startSingleNodeReplicaSet, testMongod } from '../helpers/mongod';
import { waitFor } from '../helpers/wait';

// ---------------------------------------------------------------------------------------------------
// The stores under test. To add one: a factory whose `start` brings up what it needs once for the suite
// and whose `open` returns a store instance on the given namespace (a second `open` on the same namespace
// is a second judicator on the same data).

type Hooks = { after: (fn: () => unknown) => void };

interface StoreBackend {
  open(options: { namespace: string; maxTaskSize?: number; now?: () => number }): Promise<TaskStore>;
  /** Restarts the backing service on its data (tests of the change feed across restarts), if it can. */
  restart?(): Promise<void>;
}

interface StoreFactory {
  name: string;
  /** The backend's transitions, one function each (etcd/transitions.ts, mongo/transitions.ts). */
  transitions: object;
  /** Why this store cannot be tested here, or undefined. */
  unavailable(): string | undefined;
  start(hooks: Hooks): Promise<StoreBackend>;
}

const logger = createLogger('store-test', { maxBytes: 1, keep: 0, printToStdout: true, level: (process.env.KV2_LOG_LEVEL as 'info') ?? 'error' });

const etcdFactory: StoreFactory = {
  name: 'etcd',
  transitions: etcdTransitions,
  unavailable: () => {
    const found = etcdBinary();
    return 'missing' in found ? found.missing : undefined;
  },
  async start(hooks) {
    const server = await EtcdServer.start(hooks);
    return {
      async open({ namespace, maxTaskSize, now }) {
        // Each store instance has its own client, as each judicator does.
        const client = createEtcdClient([server.endpoint]);
        const store = await new EtcdTaskStore({ client, keyPrefix: `${namespace}/store/`, maxTaskSize: maxTaskSize ?? DEFAULT_TASK_MAX_SIZE, logger, now }).open();
        const close = store.close.bind(store);
        store.close = async () => {
          await close();
          client.close();
        };
        return store;
      },
      restart: () => server.restart(),
    };
  },
};

// The MongoDB store: a one-member replica set of a real mongod (KV2_MONGOD_BINARY or the PATH; never
// downloaded), one database per namespace.
const mongodbFactory: StoreFactory = {
  name: 'mongodb',
  transitions: mongoTransitions,
  unavailable: () => {
    const found = testMongod();
    return 'missing' in found ? found.missing : undefined;
  },
  async start(hooks) {
    const { uri, mongod } = await startSingleNodeReplicaSet(hooks);
    return {
      open: ({ namespace, maxTaskSize, now }) =>
        openMongoStore({ uri, database: namespace, maxTaskSize: maxTaskSize ?? DEFAULT_TASK_MAX_SIZE, logger, now }),
      restart: () => mongod.restart(),
    };
  },
};

const factories: StoreFactory[] = [etcdFactory, mongodbFactory];

// ---------------------------------------------------------------------------------------------------
// Helpers

function makeTask(options: { user?: number; source?: Buffer; text?: string; limits?: boolean; network?: boolean } = {}): TaskInput {
  const task: TaskInput = {
    user: options.user ?? 1,
    compile: { source: options.source ?? Buffer.alloc(0), command: packText('g++ -O2 main.cpp'), timeout: 5 },
    execute: {
      input: packText(options.text ?? 'input'),
      data: Buffer.from([0x50, 0x4b, 0x05, 0x06, ...new Array(18).fill(0)]),
      command: packText('./a.out'),
      timeout: 7,
      standard: packText('expected'),
    },
  };
  if (options.limits) {
    task.compile.limits = { cpu_time: 3 };
    task.execute.limits = { memory: 1 << 28, output: 4096 };
  }
  if (options.network !== undefined) task.network = options.network;
  return task;
}

function makeResult(output: string, extra: Partial<TaskResult> = {}): TaskResult {
  return { compile_output: packText(''), compile_error: packText(''), execute_output: packText(output), execute_error: packText(''), ...extra };
}

/** An id created at `ms` (the store's clock is not used: ids at chosen times, ties included). */
function idAt(ms: number, n: number): string {
  return idPrefix(ms) + 'c0ffee' + n.toString(16).padStart(6, '0');
}

function recorder(store: TaskStore, t: TestContext): StoreEvent[] {
  const events: StoreEvent[] = [];
  const unsubscribe = store.subscribe((event) => events.push(event));
  t.after(unsubscribe);
  return events;
}

let namespaces = 0;

// ---------------------------------------------------------------------------------------------------

for (const factory of factories) {
  const reason = factory.unavailable();
  if (reason) {
    console.log(`# TaskStore conformance for the ${factory.name} store skipped: ${reason}`);
    describe(`TaskStore conformance: ${factory.name}`, { skip: reason }, () => undefined);
    continue;
  }

  describe(`TaskStore conformance: ${factory.name}`, () => {
    const cleanups: (() => unknown)[] = [];
    let backend: StoreBackend;

    before(async () => {
      backend = await factory.start({ after: (fn) => cleanups.push(fn) });
    });
    after(async () => {
      for (const cleanup of cleanups.reverse()) await cleanup();
    });

    /** Opens `count` store instances (judicators) on a fresh namespace, closed when the test ends. */
    async function open(t: TestContext, count = 1, options: { maxTaskSize?: number; now?: () => number } = {}): Promise<TaskStore[]> {
      const namespace = `conformance-${process.pid}-${++namespaces}`;
      const stores: TaskStore[] = [];
      for (let i = 0; i < count; i++) stores.push(await backend.open({ namespace, ...options }));
      t.after(async () => {
        for (const store of stores) await store.close();
      });
      return stores;
    }

    test('implements exactly the one list of transitions, each a function of its own', async (t) => {
      assert.deepEqual(Object.keys(factory.transitions).sort(), [...TASK_TRANSITIONS].sort());
      for (const name of TASK_TRANSITIONS) assert.equal(typeof (factory.transitions as Record<string, unknown>)[name], 'function', name);
      const [store] = await open(t);
      for (const name of TASK_TRANSITIONS) assert.equal(typeof store![name], 'function', name);
    });

    test('report: one call makes the transitions of a whole report, each with the outcome it has alone', async (t) => {
      const [a, b] = await open(t, 2);
      const ids: string[] = [];
      for (let i = 0; i < 8; i++) ids.push(await a!.add(makeTask({ text: `t${i}` })));
      const [t0, t1, t2, t3, t4, t5, t6, t7] = ids as [string, string, string, string, string, string, string, string];
      assert.equal((await a!.assign('e1', 6)).length, 6);
      await a!.updateExecuting('e1', [t0, t1, t2, t3, t4].map((id) => ({ id, status: TaskStatus.RUNNING })));
      await b!.cancel(t3);
      const result = makeResult('r0', { accepted: true });
      const outcome = await a!.report('e1', {
        complete: [{ id: t0, status: TaskStatus.SUCCESS, result }],
        release: [t1],
        // t1 also listed as running: the release counts. t3 was cancelled meanwhile.
        executing: [{ id: t1, status: TaskStatus.RUNNING }, { id: t2, status: TaskStatus.COMPILING }, { id: t3, status: TaskStatus.RUNNING }],
        maxRetries: 3,
        vacant: 3,
      });
      assert.deepEqual(outcome.accepted, [t0]);
      assert.deepEqual(outcome.released, [t1]);
      assert.deepEqual(outcome.notHeld, [t3]);
      // t4 was acknowledged and is not reported: lost. t5 was never acknowledged: handed again, first.
      assert.deepEqual(outcome.lost, { retried: [t4], abandoned: [] });
      assert.deepEqual(outcome.assigned.map((task) => task.id), [t5, t6, t7]);
      assert.equal(unpackText(outcome.assigned[1]!.execute.input), 't6');
      const state = async (id: string) => {
        const task = (await b!.get(id))!;
        return { status: task.status, done: task.done, executor: task.executor, retries: task.retries };
      };
      assert.deepEqual(await state(t0), { status: TaskStatus.SUCCESS, done: true, executor: null, retries: 0 });
      assert.deepEqual((await b!.get(t0))!.result, result);
      assert.deepEqual(await state(t1), { status: TaskStatus.RETRYING, done: false, executor: null, retries: 0 });
      assert.deepEqual(await state(t2), { status: TaskStatus.COMPILING, done: false, executor: 'e1', retries: 0 });
      assert.deepEqual(await state(t3), { status: TaskStatus.CANCELLED, done: true, executor: null, retries: 0 });
      assert.deepEqual(await state(t4), { status: TaskStatus.RETRYING, done: false, executor: null, retries: 1 });
      for (const id of [t5, t6, t7]) assert.deepEqual(await state(id), { status: TaskStatus.PENDING, done: false, executor: 'e1', retries: 0 });
      // What the report gave back is queued again, at its place; a report from another executor takes it.
      const other = await b!.report('e2', { complete: [{ id: t6, status: TaskStatus.SUCCESS, result }], release: [], executing: [], maxRetries: 3, vacant: 5 });
      assert.deepEqual(other.accepted, [], 'a result from an executor that does not hold the task');
      assert.deepEqual(other.assigned.map((task) => task.id), [t1, t4]);
      assert.deepEqual(await b!.holders().then((h) => h.map((x) => [x.executor, x.tasks]).sort()), [['e1', 4], ['e2', 2]]);
      // A report with nothing in it and no free slot changes nothing; the held tasks it does not name and
      // never acknowledged are not lost.
      assert.deepEqual(await a!.report('e2', { complete: [], release: [], executing: [], maxRetries: 3, vacant: 0 }), {
        accepted: [],
        released: [],
        notHeld: [],
        lost: { retried: [], abandoned: [] },
        assigned: [],
      });
      const counts = await a!.countByStatus();
      assert.equal(counts[TaskStatus.SUCCESS], 1);
      assert.equal(counts[TaskStatus.CANCELLED], 1);
      assert.equal(counts[TaskStatus.COMPILING], 1);
    });

    test('add then get: a Pending task with its input, add time from its id, nothing else', async (t) => {
      const [store] = await open(t);
      const input = makeTask({ user: 42, source: randomBytes(1000), limits: true, network: true });
      const before = Date.now();
      const id = await store!.add(input);
      assert.ok(isId(id), `${id} is a task id`);
      assert.ok(idTime(id) >= before - 1 && idTime(id) <= Date.now() + 1);
      const task = await store!.get(id);
      assert.ok(task);
      assert.equal(task.id, id);
      assert.equal(task.user, 42);
      assert.equal(task.add_time, isoTime(idTime(id)));
      assert.equal(task.report_time, task.add_time);
      assert.equal(task.status, TaskStatus.PENDING);
      assert.equal(task.done, false);
      assert.equal(task.executor, null);
      assert.equal(task.retries, 0);
      assert.equal(task.result, null);
      assert.equal(task.network, true);
      assert.deepEqual(task.compile, input.compile);
      assert.deepEqual(task.execute, input.execute);
      assert.equal(await store!.get(idAt(Date.now(), 1)), undefined);
    });

    test('issue 17: tests, test mode, checker and callback URL come back as added; assigned tasks carry them; results keep verdicts and tests', async (t) => {
      const [a, b] = await open(t, 2);
      const input: TaskInput = {
        ...makeTask(),
        judge: {
          mode: 'all',
          checker: { kind: 'program', source_name: 'check.cpp', source: packText('int main() { return 0; }') },
          tests: Array.from({ length: 30 }, (_, i) => ({ name: `t${i}`, input: packText(`${i}`.repeat(i + 1)), output: packText(`${2 * i}`) })),
        },
        callback_url: 'https://hooks.example.com/kv2',
      };
      const id = await a!.add(input);
      const got = (await b!.get(id))!;
      assert.deepEqual(got.judge, input.judge);
      assert.equal(got.callback_url, input.callback_url);
      const [assigned] = await b!.assign('e1', 1);
      assert.deepEqual(assigned!.judge, input.judge, 'the executor gets the tests');
      const result = makeResult('2', {
        accepted: false,
        verdict: 'wrong_answer',
        tests: [
          { name: 't0', verdict: 'accepted', time_ms: 1, wall_ms: 2, memory_kb: 1024, exit_code: 0, signal: null, message: 'ok' },
          { name: 't1', verdict: 'wrong_answer', time_ms: 3, wall_ms: 4, memory_kb: 1100, exit_code: 0, signal: null, message: 'expected 2, found 3' },
          { name: 't2', verdict: 'skipped', time_ms: null, wall_ms: null, memory_kb: null, exit_code: null, signal: null, message: '' },
        ],
      });
      assert.deepEqual((await b!.complete('e1', [{ id, status: TaskStatus.SUCCESS, result }])).accepted, [id]);
      assert.deepEqual((await a!.get(id))!.result, result);
    });

    test('issue 17: ending a task with a callback puts it in the outbox (complete, cancel, give-up alike); the outbox is settled or retried later', async (t) => {
      const [a, b] = await open(t, 2);
      const withCallback = (url: string): TaskInput => ({ ...makeTask(), callback_url: url });
      const done = await a!.add(withCallback('https://hooks.example.com/done'));
      const cancelled = await a!.add(withCallback('https://hooks.example.com/cancelled'));
      const quiet = await a!.add(makeTask());
      assert.deepEqual(await a!.dueCallbacks(Date.now(), 10), [], 'nothing before a task ends');
      await a!.assign('e1', 3);
      await a!.complete('e1', [{ id: done, status: TaskStatus.SUCCESS, result: makeResult('x') }, { id: quiet, status: TaskStatus.SUCCESS, result: makeResult('y') }]);
      await b!.cancel(cancelled);
      const due = await b!.dueCallbacks(Date.now() + 1, 10);
      assert.deepEqual(due.map((c) => [c.id, c.url, c.attempts]).sort(), [[done, 'https://hooks.example.com/done', 0], [cancelled, 'https://hooks.example.com/cancelled', 0]].sort());
      assert.equal((await b!.dueCallbacks(Date.now() + 1, 1)).length, 1, 'at most `limit`');
      // A failed delivery: one attempt more, due later; a delivered one leaves the outbox.
      const later = Date.now() + 60_000;
      await a!.settleCallback(done, { retryAtMs: later });
      await a!.settleCallback(cancelled, { done: true });
      assert.deepEqual(await b!.dueCallbacks(Date.now() + 1, 10), []);
      assert.deepEqual((await b!.dueCallbacks(later, 10)).map((c) => [c.id, c.attempts, c.dueMs]), [[done, 1, later]]);
      // Settling what is not there changes nothing.
      await a!.settleCallback(cancelled, { retryAtMs: later });
      await a!.settleCallback(idAt(Date.now(), 99), { done: true });
      assert.deepEqual((await b!.dueCallbacks(later, 10)).map((c) => c.id), [done]);
      // Retention takes a task's callback with it.
      assert.equal(await a!.deleteFinishedBefore(Date.now() + 1), 3);
      assert.deepEqual(await b!.dueCallbacks(later, 10), []);
    });

    test("an add with the client's own id is create-if-absent: the same id twice is one task", async (t) => {
      const [a, b] = await open(t, 2);
      const id = idAt(Date.now(), 7);
      assert.equal(await a!.add(makeTask({ text: 'first' }), id), id);
      assert.equal(await b!.add(makeTask({ text: 'second' }), id), id);
      const found = await a!.search({ limit: 0, page: 0 });
      assert.equal(found.total, 1);
      assert.equal(unpackText((await b!.get(id))!.execute.input), 'first');
      // Racing retries of one add still make one task.
      const raced = idAt(Date.now(), 8);
      await Promise.all([a!.add(makeTask(), raced), b!.add(makeTask(), raced), a!.add(makeTask(), raced)]);
      assert.equal((await a!.search({ limit: 0, page: 0 })).total, 2);
      assert.equal((await a!.countByStatus())[TaskStatus.PENDING], 2);
    });

    test('a task over the size limit is refused with TooLargeError and nothing is written', async (t) => {
      const small = makeTask();
      const [store] = await open(t, 1, { maxTaskSize: inputSize(small) + 100 });
      await assert.rejects(store!.add(makeTask({ source: Buffer.alloc(200) })), TooLargeError);
      await assert.rejects(store!.add(makeTask({ source: Buffer.alloc(200) }), idAt(Date.now(), 1)), TooLargeError);
      assert.deepEqual(await store!.search({ limit: 0, page: 0 }), { pages: 0, total: 0, tasks: [] });
      assert.equal((await store!.countByStatus())[TaskStatus.PENDING] ?? 0, 0);
      assert.deepEqual(await store!.assign('e1', 5), []);
      // At the limit exactly is fine.
      await store!.add(small);
    });

    test('a 15 MiB task and a 5 MiB result round-trip, and survive a restart of the service', async (t) => {
      const [store] = await open(t);
      const source = randomBytes(15 * 1024 * 1024);
      const id = await store!.add(makeTask({ source }));
      assert.ok(source.equals((await store!.get(id))!.compile.source));
      const [assigned] = await store!.assign('e1', 4);
      assert.equal(assigned?.id, id);
      assert.ok(source.equals(assigned!.compile.source));
      assert.deepEqual((await store!.complete('e1', [{ id, status: TaskStatus.SUCCESS, result: makeResult('ok') }])).accepted, [id]);
      // A large result too, and the same large task added twice under one id (one upload wins, whole).
      const data = randomBytes(3 * 1024 * 1024);
      const other = idAt(Date.now(), 1);
      await Promise.all([store!.add(makeTask({ source: data }), other), store!.add(makeTask({ source: randomBytes(3 * 1024 * 1024) }), other)]);
      const winner = (await store!.get(other))!.compile.source;
      assert.equal(winner.length, data.length);
      await store!.assign('e1', 1);
      const output = randomBytes(5 * 1024 * 1024);
      const result = makeResult('', { execute_output: output });
      assert.deepEqual((await store!.complete('e1', [{ id: other, status: TaskStatus.SUCCESS, result }])).accepted, [other]);
      const check = async () => {
        const done = await store!.get(id);
        assert.equal(done!.status, TaskStatus.SUCCESS);
        assert.equal(unpackText(done!.result!.execute_output), 'ok');
        assert.ok(source.equals(done!.compile.source));
        const big = await store!.get(other);
        assert.ok(winner.equals(big!.compile.source));
        assert.ok(output.equals(big!.result!.execute_output));
      };
      await check();
      if (backend.restart) {
        // etcd 3.4.22+ cannot start on a WAL entry of 10 MiB or more: large values must not make one.
        await backend.restart();
        await waitFor(() => store!.get(id).catch(() => undefined), { what: 'the store after the restart', timeoutMs: 30_000, intervalMs: 250 });
        await check();
      }
    });

    test('a result that would push the task over the limit ends it as Unknown error, saying why', async (t) => {
      const task = makeTask();
      const [store] = await open(t, 1, { maxTaskSize: inputSize(task) + 5000 });
      const id = await store!.add(task);
      await store!.assign('e1', 1);
      const huge = makeResult('', { execute_output: randomBytes(10_000) });
      assert.deepEqual((await store!.complete('e1', [{ id, status: TaskStatus.SUCCESS, result: huge }])).accepted, [id]);
      const done = await store!.get(id);
      assert.equal(done!.done, true);
      assert.equal(done!.status, TaskStatus.UNKNOWN_ERROR);
      assert.match(unpackText(done!.result!.execute_error), /too large/i);
    });

    test('assign hands out the oldest tasks first, each to one executor, leaving their status as it was', async (t) => {
      const [store] = await open(t);
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) ids.push(await store!.add(makeTask({ text: `t${i}` })));
      const before = Date.now();
      const first = await store!.assign('e1', 2);
      assert.deepEqual(first.map((task) => task.id), ids.slice(0, 2));
      for (const task of first) {
        assert.equal(task.executor, 'e1');
        assert.equal(task.status, TaskStatus.PENDING);
        assert.equal(task.done, false);
        assert.ok(Date.parse(task.report_time) >= before - 1);
        assert.equal(unpackText(task.execute.input), `t${ids.indexOf(task.id)}`);
      }
      const second = await store!.assign('e2', 10);
      assert.deepEqual(second.map((task) => task.id), ids.slice(2));
      assert.deepEqual(await store!.assign('e3', 10), []);
      assert.deepEqual(await store!.assign('e3', 0), []);
      const brief = (await store!.search({ id: ids[0]!, limit: 1, page: 0 })).tasks[0];
      assert.equal(brief?.executor, 'e1');
    });

    test('two judicators racing to assign the same tasks never give one task twice', async (t) => {
      const [a, b] = await open(t, 2);
      const total = 120;
      const added = new Set<string>();
      await Promise.all(Array.from({ length: 4 }, async (_, w) => {
        for (let i = w; i < total; i += 4) added.add(await (i % 2 ? a! : b!).add(makeTask()));
      }));
      const seen = new Map<string, string>();
      await Promise.all(
        ['x1', 'x2', 'x3', 'y1', 'y2', 'y3'].map(async (executor, n) => {
          const store = n < 3 ? a! : b!;
          for (;;) {
            const tasks = await store.assign(executor, 3);
            if (tasks.length === 0) return;
            for (const task of tasks) {
              assert.equal(seen.get(task.id), undefined, `task ${task.id} given to ${executor} and ${seen.get(task.id)}`);
              seen.set(task.id, executor);
            }
          }
        }),
      );
      assert.equal(seen.size, total);
      assert.deepEqual(new Set(seen.keys()), added);
      const holders = await a!.holders();
      assert.equal(holders.reduce((sum, h) => sum + h.tasks, 0), total);
    });

    test('a result is accepted only from the executor holding the task, once', async (t) => {
      const [a, b] = await open(t, 2);
      const id = await a!.add(makeTask());
      await a!.assign('e1', 1);
      assert.deepEqual((await b!.complete('e2', [{ id, status: TaskStatus.SUCCESS, result: makeResult('forged') }])).accepted, []);
      assert.deepEqual((await b!.complete('e2', [{ id: idAt(Date.now(), 3), status: TaskStatus.SUCCESS, result: makeResult('x') }])).accepted, []);
      const held = await a!.get(id);
      assert.equal(held!.executor, 'e1');
      assert.equal(held!.done, false);
      const before = Date.now();
      const result = makeResult('hello', { accepted: true, execute: { exit_code: 0, signal: null, wall_ms: 3, cpu_ms: 1, memory_kb: 900, stopped: null } });
      assert.deepEqual((await b!.complete('e1', [{ id, status: TaskStatus.RUN_FAILED, result }])).accepted, [id]);
      const done = await a!.get(id);
      assert.equal(done!.done, true);
      assert.equal(done!.status, TaskStatus.RUN_FAILED);
      assert.equal(done!.executor, null);
      assert.ok(Date.parse(done!.report_time) >= before - 1);
      assert.deepEqual(done!.result, result);
      // Done is final: the same result again is not accepted, nor is a cancel.
      assert.deepEqual((await a!.complete('e1', [{ id, status: TaskStatus.SUCCESS, result: makeResult('again') }])).accepted, []);
      assert.deepEqual(await a!.cancel(id), { found: false });
      assert.equal((await a!.get(id))!.status, TaskStatus.RUN_FAILED);
    });

    test('several results in one report: each accepted or dropped on its own', async (t) => {
      const [store] = await open(t);
      const ids: string[] = [];
      for (let i = 0; i < 6; i++) ids.push(await store!.add(makeTask()));
      await store!.assign('e1', 4);
      await store!.assign('e2', 2);
      await store!.cancel(ids[1]!);
      const report = ids.map((id, i) => ({ id, status: TaskStatus.SUCCESS, result: makeResult(`r${i}`) }));
      const { accepted } = await store!.complete('e1', report);
      assert.deepEqual(accepted.sort(), [ids[0]!, ids[2]!, ids[3]!].sort());
      for (const i of [0, 2, 3]) assert.equal(unpackText((await store!.get(ids[i]!))!.result!.execute_output), `r${i}`);
      assert.equal((await store!.get(ids[1]!))!.status, TaskStatus.CANCELLED);
      assert.equal((await store!.get(ids[4]!))!.executor, 'e2');
    });

    test('cancel racing complete: exactly one of them wins, every time', async (t) => {
      const [a, b] = await open(t, 2);
      const ids: string[] = [];
      for (let i = 0; i < 30; i++) ids.push(await a!.add(makeTask()));
      await a!.assign('e1', 30);
      const outcomes = await Promise.all(
        ids.map(async (id, i) => {
          const [cancelled, completed] = await Promise.all([
            (i % 2 ? a! : b!).cancel(id),
            (i % 2 ? b! : a!).complete('e1', [{ id, status: TaskStatus.SUCCESS, result: makeResult('done') }]),
          ]);
          return { id, cancelled: cancelled.found, completed: completed.accepted.includes(id) };
        }),
      );
      for (const outcome of outcomes) {
        assert.notEqual(outcome.cancelled, outcome.completed, `task ${outcome.id}: cancel ${outcome.cancelled}, complete ${outcome.completed}`);
        const task = await a!.get(outcome.id);
        assert.equal(task!.done, true);
        assert.equal(task!.status, outcome.cancelled ? TaskStatus.CANCELLED : TaskStatus.SUCCESS);
        assert.equal(task!.result === null, outcome.cancelled);
      }
      assert.equal((await a!.holders()).length, 0);
    });

    test('cancel: a queued task, a held one (announced as released), a done or unknown one', async (t) => {
      const [a, b] = await open(t, 2);
      const events = recorder(a!, t);
      const queued = await a!.add(makeTask());
      const held = await a!.add(makeTask());
      await a!.assign('e1', 1);
      const heldNow = (await a!.get(queued))!.executor === 'e1' ? queued : held;
      const queuedNow = heldNow === queued ? held : queued;
      assert.deepEqual(await b!.cancel(queuedNow), { found: true, executor: null });
      assert.deepEqual(await b!.cancel(heldNow), { found: true, executor: 'e1' });
      await waitFor(() => events.some((e) => e.type === 'released' && e.executor === 'e1' && e.id === heldNow), { what: 'a released event', timeoutMs: 10_000 });
      assert.ok(!events.some((e) => e.type === 'released' && e.id === queuedNow));
      for (const id of [queuedNow, heldNow]) {
        const task = await a!.get(id);
        assert.equal(task!.status, TaskStatus.CANCELLED);
        assert.equal(task!.done, true);
        assert.equal(task!.executor, null);
        assert.equal(task!.result, null);
      }
      assert.deepEqual(await a!.cancel(heldNow), { found: false });
      assert.deepEqual(await a!.cancel(idAt(Date.now(), 99)), { found: false });
      assert.deepEqual(await a!.assign('e2', 5), []);
      assert.deepEqual(await a!.updateExecuting('e1', [{ id: heldNow, status: TaskStatus.RUNNING }]), { notHeld: [heldNow] });
      assert.deepEqual(await a!.holders(), []);
    });

    test('updateExecuting records running statuses of held tasks and names the ones not held', async (t) => {
      const [a, b] = await open(t, 2);
      const ids: string[] = [];
      for (let i = 0; i < 3; i++) ids.push(await a!.add(makeTask()));
      await a!.assign('e1', 2);
      const unknown = idAt(Date.now(), 5);
      const before = Date.now();
      const { notHeld } = await b!.updateExecuting('e1', [
        { id: ids[0]!, status: TaskStatus.COMPILING },
        { id: ids[1]!, status: TaskStatus.RUNNING },
        { id: ids[2]!, status: TaskStatus.RUNNING },
        { id: unknown, status: TaskStatus.RUNNING },
      ]);
      assert.deepEqual(notHeld.sort(), [ids[2]!, unknown].sort());
      const compiling = await a!.get(ids[0]!);
      assert.equal(compiling!.status, TaskStatus.COMPILING);
      assert.ok(Date.parse(compiling!.report_time) >= before - 1);
      assert.equal((await a!.get(ids[1]!))!.status, TaskStatus.RUNNING);
      assert.equal((await a!.get(ids[2]!))!.status, TaskStatus.PENDING);
      assert.deepEqual((await a!.updateExecuting('e2', [{ id: ids[0]!, status: TaskStatus.RUNNING }])).notHeld, [ids[0]!]);
      const counts = await a!.countByStatus();
      assert.equal(counts[TaskStatus.COMPILING], 1);
      assert.equal(counts[TaskStatus.RUNNING], 1);
      assert.equal(counts[TaskStatus.PENDING], 1);
    });

    test('a change made through one judicator a moment ago holds when the executor reports to another', async (t) => {
      const [a, b] = await open(t, 2);
      const ids: string[] = [];
      for (let i = 0; i < 3; i++) ids.push(await a!.add(makeTask()));
      await a!.assign('e1', 3);
      const running = ids.map((id) => ({ id, status: TaskStatus.RUNNING }));
      assert.deepEqual(await a!.updateExecuting('e1', running), { notHeld: [] });
      // Through b: one task cancelled, one finished by e1, one taken back by the leader.
      await b!.cancel(ids[0]!);
      assert.deepEqual((await b!.complete('e1', [{ id: ids[1]!, status: TaskStatus.SUCCESS, result: makeResult('b') }])).accepted, [ids[1]!]);
      await b!.requeueHeldBy('e1', { reason: 'executor-gone', maxRetries: 3 });
      // At once through a: none of them is e1's any more.
      assert.deepEqual((await a!.updateExecuting('e1', running)).notHeld.sort(), [...ids].sort());
      const late = await a!.complete('e1', ids.map((id) => ({ id, status: TaskStatus.SUCCESS, result: makeResult('a') })));
      assert.deepEqual(late.accepted, []);
      assert.equal(unpackText((await a!.get(ids[1]!))!.result!.execute_output), 'b');
      assert.deepEqual(await a!.requeueUnreported('e1', new Set(), 3), { retried: [], abandoned: [] });
      assert.deepEqual(await a!.unacknowledged('e1', new Set(), 5), []);
      assert.deepEqual(await a!.release('e1', ids), []);
      assert.equal((await a!.get(ids[2]!))!.status, TaskStatus.RETRYING);
    });

    test('tasks an executor acknowledged but stopped reporting go back to Retrying, at their place in the queue', async (t) => {
      const [a, b] = await open(t, 2);
      const events = recorder(b!, t);
      const ids: string[] = [];
      for (let i = 0; i < 4; i++) ids.push(await a!.add(makeTask()));
      await a!.assign('e1', 3);
      await a!.updateExecuting('e1', [
        { id: ids[0]!, status: TaskStatus.RUNNING },
        { id: ids[1]!, status: TaskStatus.RUNNING },
      ]);
      const newer = await a!.add(makeTask());
      await waitFor(() => events.some((e) => e.type === 'pending'), { what: 'the pending event of an add', timeoutMs: 10_000 });
      events.length = 0;
      // ids[0] still reported; ids[1] lost; ids[2] never acknowledged (not this method's business).
      const outcome = await a!.requeueUnreported('e1', new Set([ids[0]!]), 3);
      assert.deepEqual(outcome, { retried: [ids[1]!], abandoned: [] });
      const requeued = await a!.get(ids[1]!);
      assert.equal(requeued!.status, TaskStatus.RETRYING);
      assert.equal(requeued!.executor, null);
      assert.equal(requeued!.retries, 1);
      assert.equal(requeued!.done, false);
      await waitFor(() => events.some((e) => e.type === 'pending'), { what: 'a pending event after the requeue', timeoutMs: 10_000 });
      assert.ok(!events.some((e) => e.type === 'released'), 'the executor itself is told, not the feed');
      assert.equal((await a!.get(ids[2]!))!.executor, 'e1');
      // Back at its original place: before ids[3] and the newer task.
      const next = await b!.assign('e2', 3);
      assert.deepEqual(next.map((task) => task.id), [ids[1]!, ids[3]!, newer]);
      assert.equal(next[0]!.status, TaskStatus.RETRYING);
      assert.deepEqual(await a!.requeueUnreported('e1', new Set([ids[0]!]), 3), { retried: [], abandoned: [] });
    });

    test('a task lost more than maxRetries times ends as Unknown error saying it gave up', async (t) => {
      const [store] = await open(t);
      const id = await store!.add(makeTask());
      for (let round = 0; round <= 3; round++) {
        const [task] = await store!.assign(`e${round}`, 1);
        assert.equal(task?.id, id);
        assert.equal(task!.retries, round);
        await store!.updateExecuting(`e${round}`, [{ id, status: TaskStatus.RUNNING }]);
        const outcome = await store!.requeueUnreported(`e${round}`, new Set(), 3);
        assert.deepEqual(outcome, round < 3 ? { retried: [id], abandoned: [] } : { retried: [], abandoned: [id] });
      }
      const task = await store!.get(id);
      assert.equal(task!.done, true);
      assert.equal(task!.status, TaskStatus.UNKNOWN_ERROR);
      assert.equal(task!.executor, null);
      assert.match(unpackText(task!.result!.execute_error), /Gave up after 3 retries: its executor lost it each time/);
      assert.deepEqual(await store!.assign('e9', 1), []);
      const counts = await store!.countByStatus();
      assert.equal(counts[TaskStatus.UNKNOWN_ERROR], 1);
      assert.equal(counts[TaskStatus.RETRYING] ?? 0, 0);
    });

    test('unacknowledged tasks are handed out again, unchanged', async (t) => {
      const [store] = await open(t);
      const ids: string[] = [];
      for (let i = 0; i < 4; i++) ids.push(await store!.add(makeTask({ text: `u${i}` })));
      await store!.assign('e1', 4);
      await store!.updateExecuting('e1', [{ id: ids[0]!, status: TaskStatus.RUNNING }]);
      const again = await store!.unacknowledged('e1', new Set([ids[1]!]), 10);
      assert.deepEqual(again.map((task) => task.id), [ids[2]!, ids[3]!]);
      assert.equal(unpackText(again[0]!.execute.input), 'u2');
      assert.equal(again[0]!.executor, 'e1');
      assert.deepEqual((await store!.unacknowledged('e1', new Set(), 1)).map((task) => task.id), [ids[1]!]);
      assert.deepEqual(await store!.unacknowledged('e2', new Set(), 10), []);
      assert.deepEqual(await store!.unacknowledged('e1', new Set(), 0), []);
      // Unchanged: still held, still unacknowledged, no retry counted.
      const task = await store!.get(ids[2]!);
      assert.equal(task!.executor, 'e1');
      assert.equal(task!.retries, 0);
      assert.deepEqual(await store!.requeueUnreported('e1', new Set(), 3), { retried: [ids[0]!], abandoned: [] });
    });

    test('release gives held tasks back to Retrying without counting a retry', async (t) => {
      const [store] = await open(t);
      const ids: string[] = [];
      for (let i = 0; i < 3; i++) ids.push(await store!.add(makeTask()));
      await store!.assign('e1', 2);
      await store!.updateExecuting('e1', [{ id: ids[0]!, status: TaskStatus.RUNNING }]);
      const released = await store!.release('e1', [ids[0]!, ids[1]!, ids[2]!, ids[0]!]);
      assert.deepEqual(released.sort(), [ids[0]!, ids[1]!].sort());
      for (const id of released) {
        const task = await store!.get(id);
        assert.equal(task!.status, TaskStatus.RETRYING);
        assert.equal(task!.retries, 0);
        assert.equal(task!.executor, null);
      }
      assert.deepEqual(await store!.release('e2', [ids[0]!]), []);
      assert.equal((await store!.assign('e2', 3)).length, 3);
    });

    test('search: newest first or oldest first, ties by id, time bounds inclusive, user and id filters, paging', async (t) => {
      const [store] = await open(t);
      const t0 = Date.UTC(2026, 0, 10, 12, 0, 0, 0);
      // Three tasks in the same millisecond (a tie), then one a second later, then one two seconds later.
      const plan = [
        { id: idAt(t0, 3), user: 1 },
        { id: idAt(t0, 1), user: 2 },
        { id: idAt(t0, 2), user: 1 },
        { id: idAt(t0 + 1000, 1), user: 1 },
        { id: idAt(t0 + 2000, 1), user: 2 },
      ];
      for (const p of plan) await store!.add(makeTask({ user: p.user }), p.id);
      const oldest = [idAt(t0, 1), idAt(t0, 2), idAt(t0, 3), idAt(t0 + 1000, 1), idAt(t0 + 2000, 1)];
      const newest = [...oldest].reverse();
      const ids = (r: { tasks: { id: string }[] }) => r.tasks.map((task) => task.id);

      const all = await store!.search({ limit: 0, page: 7 });
      assert.deepEqual(ids(all), newest);
      assert.equal(all.total, 5);
      assert.equal(all.pages, 1);
      assert.deepEqual(ids(await store!.search({ limit: 0, page: 0, oldToNew: true })), oldest);
      // Paging: ceil(5 / 2) = 3 pages; the last one short; past the end empty.
      assert.deepEqual(await store!.search({ limit: 2, page: 0 }).then((r) => [r.pages, r.total, ids(r)]), [3, 5, newest.slice(0, 2)]);
      assert.deepEqual(ids(await store!.search({ limit: 2, page: 1 })), newest.slice(2, 4));
      assert.deepEqual(ids(await store!.search({ limit: 2, page: 2 })), newest.slice(4));
      assert.deepEqual(await store!.search({ limit: 2, page: 3 }), { pages: 3, total: 5, tasks: [] });
      assert.deepEqual(ids(await store!.search({ limit: 2, page: 1, oldToNew: true })), oldest.slice(2, 4));
      // Time bounds are inclusive, to the millisecond.
      assert.deepEqual(ids(await store!.search({ startMs: t0, endMs: t0, limit: 0, page: 0, oldToNew: true })), oldest.slice(0, 3));
      assert.deepEqual(ids(await store!.search({ startMs: t0 + 1, limit: 0, page: 0 })), newest.slice(0, 2));
      assert.deepEqual(ids(await store!.search({ endMs: t0 + 1000, limit: 10, page: 0 })), newest.slice(1));
      assert.deepEqual(ids(await store!.search({ startMs: t0 + 1000, endMs: t0 + 1999, limit: 10, page: 0 })), [idAt(t0 + 1000, 1)]);
      assert.deepEqual(await store!.search({ startMs: t0 + 1, endMs: t0 + 999, limit: 10, page: 0 }), { pages: 0, total: 0, tasks: [] });
      assert.deepEqual(await store!.search({ startMs: t0 + 2000, endMs: t0, limit: 10, page: 0 }), { pages: 0, total: 0, tasks: [] });
      // By user, with and without time bounds and paging.
      const user1 = await store!.search({ user: 1, limit: 2, page: 0 });
      assert.deepEqual([user1.total, user1.pages, ids(user1)], [3, 2, [idAt(t0 + 1000, 1), idAt(t0, 3)]]);
      assert.deepEqual(ids(await store!.search({ user: 1, limit: 2, page: 1 })), [idAt(t0, 2)]);
      assert.deepEqual(ids(await store!.search({ user: 2, limit: 0, page: 0, oldToNew: true })), [idAt(t0, 1), idAt(t0 + 2000, 1)]);
      assert.deepEqual(ids(await store!.search({ user: 2, startMs: t0 + 1, limit: 0, page: 0 })), [idAt(t0 + 2000, 1)]);
      assert.equal((await store!.search({ user: 3, limit: 5, page: 0 })).total, 0);
      // By id: every other filter must match too.
      assert.deepEqual(ids(await store!.search({ id: idAt(t0, 2), limit: 10, page: 0 })), [idAt(t0, 2)]);
      assert.equal((await store!.search({ id: idAt(t0, 2), limit: 10, page: 0 })).pages, 1);
      assert.equal((await store!.search({ id: idAt(t0, 2), user: 2, limit: 10, page: 0 })).total, 0);
      assert.equal((await store!.search({ id: idAt(t0, 2), startMs: t0 + 1, limit: 10, page: 0 })).total, 0);
      assert.equal((await store!.search({ id: idAt(t0, 2), user: 1, startMs: t0, endMs: t0, limit: 10, page: 0 })).total, 1);
      assert.equal((await store!.search({ id: idAt(t0, 9), limit: 10, page: 0 })).total, 0);
      // Briefs carry the task's state.
      await store!.assign('e1', 1);
      const brief = (await store!.search({ id: oldest[0]!, limit: 1, page: 0 })).tasks[0]!;
      assert.deepEqual(Object.keys(brief).sort(), ['add_time', 'done', 'executor', 'id', 'report_time', 'status', 'user']);
      assert.equal(brief.executor, 'e1');
      assert.equal(brief.add_time, isoTime(t0));
    });

    test('executors: heartbeats are listed with their slots, and forgotten on request', async (t) => {
      const [a, b] = await open(t, 2);
      const before = Date.now();
      await a!.recordHeartbeat('exec/1', { vacant: 3, slots: 4, host: '10.0.0.5' });
      await a!.recordHeartbeat('e2', { vacant: 1 });
      const listed = (await b!.listExecutors()).sort((x, y) => x.id.localeCompare(y.id));
      assert.equal(listed.length, 2);
      assert.equal(listed[0]!.id, 'e2');
      assert.equal(listed[1]!.id, 'exec/1');
      assert.equal(listed[1]!.hostname, 'exec/1');
      assert.equal(listed[1]!.slots, 4);
      assert.equal(listed[1]!.vacant, 3);
      assert.equal(listed[1]!.host, '10.0.0.5');
      assert.ok(Date.parse(listed[1]!.report_time) >= before - 1);
      await b!.removeExecutor('exec/1');
      assert.deepEqual((await a!.listExecutors()).map((e) => e.id), ['e2']);
      await b!.removeExecutor('never-seen');

      // What an executor says of itself in its reports is kept; its process key is kept apart, never listed.
      const SANDBOX = { kind: 'bwrap' as const, how: 'bubblewrap', network: 'none', limits: { memory: 'cgroup' } };
      await a!.recordHeartbeat('e3', { vacant: 2, slots: 2, host: 'box', started: '2030-01-01T00:00:00.000Z', key: 'k1', languages: [{ name: 'C', version: '12.2.0' }], sandbox: SANDBOX });
      const e3 = (await b!.listExecutors()).find((e) => e.id === 'e3')!;
      assert.equal(e3.started, '2030-01-01T00:00:00.000Z');
      assert.deepEqual(e3.languages, [{ name: 'C', version: '12.2.0' }]);
      assert.deepEqual(e3.sandbox, SANDBOX);
      assert.ok(!JSON.stringify(e3).includes('k1'), 'the key is not listed');
      assert.equal(await b!.executorKey('e3'), 'k1');
      assert.equal(await b!.executorKey('never-seen'), undefined);
      // A new process of the name (a new key) is written at once, whatever the heartbeat refresh.
      await a!.recordHeartbeat('e3', { vacant: 2, slots: 2, host: 'box', started: '2030-01-01T00:00:01.000Z', key: 'k2', sandbox: SANDBOX });
      assert.equal(await b!.executorKey('e3'), 'k2');
    });

    test('leader duties: holders, and requeueHeldBy by age or for a gone executor, announced and idempotent', async (t) => {
      let clock = Date.now();
      const [a, b] = await open(t, 2, { now: () => clock });
      const events = recorder(a!, t);
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) ids.push(await a!.add(makeTask()));
      const early = clock;
      await a!.assign('e1', 2);
      clock += 10_000;
      await a!.assign('e1', 1);
      await a!.assign('e2', 2);
      const holders = (await b!.holders()).sort((x, y) => x.executor.localeCompare(y.executor));
      assert.deepEqual(holders, [
        { executor: 'e1', oldestReportMs: early, tasks: 3 },
        { executor: 'e2', oldestReportMs: clock, tasks: 2 },
      ]);
      // Only e1's two older tasks are past the cutoff; two leaders doing it at once requeue each once.
      const cutoff = early + 5_000;
      const [x, y] = await Promise.all([
        a!.requeueHeldBy('e1', { olderThanMs: cutoff, reason: 'expired', maxRetries: 3 }),
        b!.requeueHeldBy('e1', { olderThanMs: cutoff, reason: 'expired', maxRetries: 3 }),
      ]);
      assert.deepEqual([...x.retried, ...y.retried].sort(), ids.slice(0, 2).sort());
      assert.deepEqual([...x.abandoned, ...y.abandoned], []);
      for (const id of ids.slice(0, 2)) {
        const task = await a!.get(id);
        assert.equal(task!.status, TaskStatus.RETRYING);
        assert.equal(task!.retries, 1);
      }
      await waitFor(() => ids.slice(0, 2).every((id) => events.some((e) => e.type === 'released' && e.executor === 'e1' && e.id === id)), {
        what: 'released events for the requeued tasks',
        timeoutMs: 10_000,
      });
      assert.equal((await a!.get(ids[2]!))!.executor, 'e1');
      // e2 is gone: all of its tasks go, and with no retries left they are given up.
      const gone = await b!.requeueHeldBy('e2', { reason: 'executor-gone', maxRetries: 0 });
      assert.deepEqual(gone.retried, []);
      assert.deepEqual(gone.abandoned.sort(), ids.slice(3).sort());
      const given = await a!.get(ids[3]!);
      assert.equal(given!.status, TaskStatus.UNKNOWN_ERROR);
      assert.match(unpackText(given!.result!.execute_error), /Gave up after 0 retries: its executor went away/);
      assert.deepEqual(await b!.requeueHeldBy('e2', { reason: 'executor-gone', maxRetries: 0 }), { retried: [], abandoned: [] });
      assert.deepEqual((await a!.holders()).map((h) => [h.executor, h.tasks]), [['e1', 1]]);
    });

    test('leader duties are fenced: with the leader\'s election key gone, they change nothing', async (t) => {
      const [a] = await open(t, 1);
      const held = await a!.add(makeTask());
      await a!.assign('e1', 1);
      // A key that was never created stands for an election key whose lease etcd expired.
      const lost = { etcdKey: `kv2-conformance-fence/${Math.random().toString(16).slice(2)}`, holds: async () => false };
      await assert.rejects(a!.requeueHeldBy('e1', { reason: 'executor-gone', maxRetries: 3, fence: lost }));
      assert.equal((await a!.get(held))!.executor, 'e1', 'a deposed leader did not take the task back');
      await a!.recordHeartbeat('e9', { vacant: 1 });
      await a!.removeExecutor('e9', lost).catch(() => undefined);
      assert.ok((await a!.listExecutors()).some((e) => e.id === 'e9'), 'a deposed leader did not forget the executor');
    });

    test('deleteFinishedBefore deletes only done tasks finished before the cutoff, once', async (t) => {
      let clock = Date.now();
      const [a, b] = await open(t, 2, { now: () => clock });
      const ids: string[] = [];
      for (let i = 0; i < 7; i++) ids.push(await a!.add(makeTask({ user: 5 })));
      await a!.assign('e1', 4);
      await a!.complete('e1', ids.slice(0, 3).map((id) => ({ id, status: TaskStatus.SUCCESS, result: makeResult('x') })));
      await a!.cancel(ids[4]!);
      const finishedEarly = clock;
      clock += 60_000;
      await a!.complete('e1', [{ id: ids[3]!, status: TaskStatus.RUN_FAILED, result: makeResult('y') }]);
      // Two leaders at once, in small batches: each task is deleted exactly once.
      const [x, y] = await Promise.all([a!.deleteFinishedBefore(finishedEarly + 1, 2), b!.deleteFinishedBefore(finishedEarly + 1, 2)]);
      assert.equal(x + y, 4);
      for (const id of [...ids.slice(0, 3), ids[4]!]) assert.equal(await a!.get(id), undefined);
      for (const id of [ids[3]!, ids[5]!, ids[6]!]) assert.ok(await a!.get(id));
      const left = await a!.search({ user: 5, limit: 0, page: 0, oldToNew: true });
      assert.deepEqual(left.tasks.map((task) => task.id), [ids[3]!, ids[5]!, ids[6]!]);
      assert.equal((await a!.search({ limit: 0, page: 0 })).total, 3);
      const counts = await a!.countByStatus();
      assert.equal(counts[TaskStatus.SUCCESS] ?? 0, 0);
      assert.equal(counts[TaskStatus.CANCELLED] ?? 0, 0);
      assert.equal(counts[TaskStatus.RUN_FAILED], 1);
      assert.equal(counts[TaskStatus.PENDING], 2);
      assert.equal(await a!.deleteFinishedBefore(finishedEarly + 1), 0);
      assert.equal(await a!.deleteFinishedBefore(clock + 1), 1);
      // A deleted task's id can be used again by a client.
      assert.equal(await a!.add(makeTask(), ids[0]!), ids[0]!);
      assert.equal((await a!.get(ids[0]!))!.status, TaskStatus.PENDING);
    });

    test('countByStatus counts every status', async (t) => {
      const [store] = await open(t);
      const ids: string[] = [];
      for (let i = 0; i < 6; i++) ids.push(await store!.add(makeTask()));
      await store!.assign('e1', 4);
      await store!.updateExecuting('e1', [
        { id: ids[0]!, status: TaskStatus.COMPILING },
        { id: ids[1]!, status: TaskStatus.RUNNING },
      ]);
      await store!.complete('e1', [{ id: ids[2]!, status: TaskStatus.COMPILE_FAILED, result: makeResult('') }]);
      await store!.release('e1', [ids[3]!]);
      await store!.cancel(ids[4]!);
      const counts = await store!.countByStatus();
      const expected: Partial<Record<TaskStatus, number>> = {
        [TaskStatus.PENDING]: 1,
        [TaskStatus.COMPILING]: 1,
        [TaskStatus.COMPILE_FAILED]: 1,
        [TaskStatus.RUNNING]: 1,
        [TaskStatus.RETRYING]: 1,
        [TaskStatus.CANCELLED]: 1,
      };
      for (const status of Object.values(TaskStatus)) assert.equal(counts[status] ?? 0, expected[status] ?? 0, `status ${status}`);
    });

    test('the change feed wakes a subscriber when another judicator adds a task, and stops after unsubscribe', async (t) => {
      const [a, b] = await open(t, 2);
      const events: StoreEvent[] = [];
      const unsubscribe = a!.subscribe((event) => events.push(event));
      t.after(unsubscribe);
      await b!.add(makeTask());
      await waitFor(() => events.some((e) => e.type === 'pending'), { what: 'a pending event from the other judicator', timeoutMs: 10_000 });
      unsubscribe();
      const seen = events.length;
      const other: StoreEvent[] = [];
      t.after(b!.subscribe((event) => other.push(event)));
      await b!.add(makeTask());
      await waitFor(() => other.some((e) => e.type === 'pending'), { what: 'a pending event on the other subscriber', timeoutMs: 10_000 });
      assert.equal(events.length, seen);
    });

    test('the change feed announces every way a task becomes done, to every judicator, and nothing else as done', async (t) => {
      const [a, b] = await open(t, 2);
      const events = recorder(b!, t);
      const done = (id: string) => events.some((e) => e.type === 'done' && e.id === id);
      const [completed, cancelledQueued, cancelledHeld, abandoned, running] = [await a!.add(makeTask()), await a!.add(makeTask()), await a!.add(makeTask()), await a!.add(makeTask()), await a!.add(makeTask())];
      await a!.cancel(cancelledQueued);
      assert.deepEqual((await a!.assign('e1', 4)).map((task) => task.id), [completed, cancelledHeld, abandoned, running]);
      await a!.updateExecuting('e1', [{ id: running, status: TaskStatus.RUNNING }, { id: abandoned, status: TaskStatus.RUNNING }]);
      await a!.complete('e1', [{ id: completed, status: TaskStatus.SUCCESS, result: makeResult('ok') }]);
      await a!.cancel(cancelledHeld);
      // Lost with no retries left: given up (Unknown error), which is done too.
      assert.deepEqual(await a!.requeueUnreported('e1', new Set([running]), 0), { retried: [], abandoned: [abandoned] });
      await waitFor(() => [completed, cancelledQueued, cancelledHeld, abandoned].every(done), { what: 'a done event for each finished task', timeoutMs: 10_000 });
      // A task that only changed status, and one merely assigned, are not announced as done.
      await a!.add(makeTask());
      await waitFor(() => events.some((e) => e.type === 'pending'), { what: 'the pending event of a later add', timeoutMs: 10_000 });
      assert.ok(!done(running), 'a running task was announced as done');
      assert.equal(events.filter((e) => e.type === 'done').length, 4);
    });

    test("waitForTask (the judicator's wait RPC) answers when another judicator finishes the task, or when the wait ends", async (t) => {
      const [a, b] = await open(t, 2);
      const id = await a!.add(makeTask());
      const never = new AbortController().signal;
      // A wait that ends first: the task as it is then.
      const started = Date.now();
      const pending = await waitForTask(b!, id, 300, never);
      assert.ok(Date.now() - started >= 290, `answered after ${Date.now() - started} ms`);
      assert.equal(pending!.status, TaskStatus.PENDING);
      assert.equal(await waitForTask(b!, idAt(Date.now(), 3), 5_000, never), undefined);
      // The feed, not the recheck timer (an hour here), ends a wait.
      await a!.assign('e1', 1);
      const waiting = waitForTask(b!, id, 30_000, never, 3_600_000);
      await new Promise((resolve) => setTimeout(resolve, 100));
      const finished = Date.now();
      await a!.complete('e1', [{ id, status: TaskStatus.SUCCESS, result: makeResult('waited') }]);
      const task = await waiting;
      assert.equal(task!.done, true);
      assert.equal(unpackText(task!.result!.execute_output), 'waited');
      assert.ok(Date.now() - finished < 2_000, `the wait ended ${Date.now() - finished} ms after the result`);
      // Already done: at once. A caller that hangs up ends its wait.
      assert.equal((await waitForTask(b!, id, 30_000, never))!.status, TaskStatus.SUCCESS);
      const other = await a!.add(makeTask());
      const hangUp = new AbortController();
      const abandoned = waitForTask(b!, other, 30_000, hangUp.signal, 3_600_000);
      setTimeout(() => hangUp.abort(), 100);
      const hungUpAt = Date.now();
      assert.equal((await abandoned)!.done, false);
      assert.ok(Date.now() - hungUpAt < 2_000);
    });

    test('the change feed comes back after its service restarts', async (t) => {
      if (!backend.restart) {
        t.skip(`the ${factory.name} factory cannot restart its service`);
        return;
      }
      const [a, b] = await open(t, 2);
      const events = recorder(a!, t);
      await backend.restart();
      // Calls fail while the service comes back; the add is retried under one id, so it adds one task.
      const id = idAt(Date.now(), 1);
      await waitFor(() => b!.add(makeTask(), id).catch(() => undefined), { what: 'an add after the restart', timeoutMs: 30_000, intervalMs: 250 });
      // A released event comes only from the feed's own data (a reconnection announces only 'pending').
      assert.deepEqual((await b!.assign('e1', 1)).map((task) => task.id), [id]);
      assert.deepEqual(await b!.cancel(id), { found: true, executor: 'e1' });
      await waitFor(() => events.some((e) => e.type === 'released' && e.id === id), { what: 'a released event after the restart', timeoutMs: 15_000 });
    });
  });
}
