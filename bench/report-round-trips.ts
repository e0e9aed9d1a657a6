// `npx tsx bench/report-round-trips.ts` (not part of `npm test`): how many etcd calls one executor report
// costs the judicator (src/judicator/scheduler.ts over the etcd store), and how many of them write (each
// write is a raft entry and an fsync), for the shapes reports take. Prints the figures; asserts nothing.
//   steady:  the report carries the executor's 4 results and gets 4 tasks back
//   mixed:   1 result, 3 running tasks (unchanged), 1 task back
//   running: 4 running tasks (unchanged), no free slot: a heartbeat
//   started: 4 tasks newly running (acknowledged), no free slot
import type { Etcd3 } from 'etcd3';
import { createEtcdClient } from '../src/cluster/etcd-client';
import { createLogger } from '../src/common/logging';
import { Scheduler } from '../src/judicator/scheduler';
import { EtcdTaskStore } from '../src/store/etcd/store';
import { packText } from '../src/task/codec';
import { TaskStatus, type TaskInput } from '../src/task/types';
import { EtcdServer } from '../test/helpers/etcd';

const REPORTS = Number(process.env.BENCH_REPORTS ?? 200);
const SLOTS = 4;

const cleanups: (() => unknown)[] = [];
const hooks = { after: (fn: () => unknown) => cleanups.push(fn) };
const task: TaskInput = {
  user: 1,
  compile: { source: Buffer.alloc(0), command: packText(''), timeout: 1 },
  execute: { input: packText(''), data: Buffer.alloc(0), command: packText('echo hello'), timeout: 1, standard: packText('') },
};
const result = { compile_output: packText(''), compile_error: packText(''), execute_output: packText('hello\n'), execute_error: packText('') };

async function main(): Promise<void> {
  const etcd = await EtcdServer.start(hooks);
  const logger = createLogger('bench', { maxBytes: 1e6, keep: 1, printToStdout: true, level: 'warn' });
  const client = createEtcdClient([etcd.endpoint]);
  cleanups.push(() => client.close());
  const calls = countCalls(client);
  const store = await new EtcdTaskStore({ client, keyPrefix: 'bench/store/', maxTaskSize: 16_252_928, logger }).open();
  cleanups.push(() => store.close());
  const scheduler = new Scheduler(store, { maxRetries: 3, maxWaitMs: 0, heartbeatEveryMs: 1_000 }, logger);
  cleanups.push(() => scheduler.close());
  const never = new AbortController().signal;
  for (let i = 0; i < REPORTS * SLOTS * 2 + SLOTS; i++) await store.add(task);

  type Held = { id: string; status: TaskStatus }[];
  const report = async (name: string, complete: Held, executing: Held, vacant: number) => {
    const answer = await scheduler.report(
      {
        executor: name,
        complete: complete.map((t) => ({ id: t.id, status: TaskStatus.SUCCESS, result })),
        executing,
        vacant,
        release: [],
        waitMs: 0,
        fresh: false,
      },
      never,
    );
    return answer.assign.map((t) => ({ id: t.id, status: t.status }));
  };
  const shapes: [string, (held: Held) => Promise<Held>][] = [
    ['steady', async (held) => report('steady', held, [], SLOTS)],
    [
      'mixed',
      async (held) => {
        const running = held.slice(1).map((t) => ({ id: t.id, status: TaskStatus.RUNNING }));
        return [...running, ...(await report('mixed', held.slice(0, 1), running, 1))];
      },
    ],
    ['running', async (held) => (await report('running', [], held, 0), held)],
  ];
  for (const [name, step] of shapes) {
    // Warm up: the executor holds SLOTS running tasks.
    let held = await report(name, [], [], SLOTS);
    held = held.map((t) => ({ id: t.id, status: TaskStatus.RUNNING }));
    await report(name, [], held, 0);
    calls.reset();
    const started = performance.now();
    for (let i = 0; i < REPORTS; i++) held = await step(held);
    const ms = (performance.now() - started) / REPORTS;
    console.log(`${name.padEnd(8)} ${calls.summary(REPORTS)} per report (${ms.toFixed(2)} ms each)`);
  }
  // Tasks just assigned and now reported running (their first acknowledgement): a write each.
  let startedTotal = { reads: 0, writes: 0 };
  for (let i = 0; i < 20; i++) {
    const held = await report(`started${i}`, [], [], SLOTS);
    calls.reset();
    await report(`started${i}`, [], held.map((t) => ({ id: t.id, status: TaskStatus.COMPILING })), 0);
    const counted = calls.counts();
    startedTotal = { reads: startedTotal.reads + counted.reads, writes: startedTotal.writes + counted.writes };
  }
  console.log(`${'started'.padEnd(8)} ${((startedTotal.reads + startedTotal.writes) / 20).toFixed(2)} calls (${(startedTotal.writes / 20).toFixed(2)} writing) per report`);
}

/** Counts the store's etcd calls: all of them, and those that write. */
function countCalls(client: Etcd3) {
  let reads = 0;
  let writes = 0;
  const kv = client.kv as unknown as Record<string, (req: Record<string, unknown>, options?: unknown) => Promise<unknown>>;
  for (const method of ['range', 'txn', 'put', 'deleteRange']) {
    const original = kv[method]!.bind(client.kv);
    kv[method] = (req, options) => {
      const writing = method === 'put' || method === 'deleteRange' || (method === 'txn' && /"request_(put|delete_range)"/.test(JSON.stringify(req, (k, v) => (k === 'value' ? undefined : v))));
      if (writing) writes++;
      else reads++;
      return original(req, options);
    };
  }
  return {
    reset: () => {
      reads = 0;
      writes = 0;
    },
    counts: () => ({ reads, writes }),
    summary: (n: number) => `${((reads + writes) / n).toFixed(2)} calls (${(writes / n).toFixed(2)} writing)`,
  };
}

async function cleanUp(): Promise<void> {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    void cleanUp().finally(() => process.exit(130));
  });
}

main()
  .catch((error) => {
    console.error(error);
    process.exitCode = 1;
  })
  .finally(cleanUp);
