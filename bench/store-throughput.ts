// `npx tsx bench/store-throughput.ts` (not part of `npm test`): how many tasks per second the etcd task
// store carries through add -> assign -> complete against one local etcd (fsync on, as judicators run
// it), with the store call a report makes (src/judicator/scheduler.ts: TaskStore.report) and several
// executors at once; then how many etcd calls one report costs through the scheduler, and how many of
// them write (each write is a raft entry and an fsync), for the shapes reports take:
//   steady:  the report carries the executor's 4 results and gets 4 tasks back
//   mixed:   1 result, 3 running tasks (unchanged), 1 task back
//   running: 4 running tasks (unchanged), no free slot: a heartbeat
//   started: 4 tasks newly running (their first acknowledgement), no free slot
// Prints the figures; asserts nothing.
import fs from 'node:fs';
import os from 'node:os';
import type { Etcd3 } from 'etcd3';
import { createEtcdClient } from '../src/etcd/client';
import { createLogger } from '../src/common/logging';
import { Scheduler } from '../src/judicator/scheduler';
import { EtcdTaskStore } from '../src/store/etcd/store';
import { packText } from '../src/task/codec';
import { TaskStatus, type TaskInput } from '../src/task/types';
import { EtcdServer } from '../test/helpers/etcd';

const TASKS = Number(process.env.BENCH_TASKS ?? 3000);
const EXECUTORS = Number(process.env.BENCH_EXECUTORS ?? 4);
const SLOTS = Number(process.env.BENCH_SLOTS ?? 4);
const ADDERS = Number(process.env.BENCH_ADDERS ?? 32);
/** Reports measured per shape in section 4. */
const REPORTS = Number(process.env.BENCH_REPORTS ?? 200);

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

  // 1. adds alone, ADDERS at a time (the gateway's concurrent submissions).
  let started = performance.now();
  calls.reset();
  await runConcurrently(ADDERS, TASKS, () => store.add(task));
  console.log(`  etcd calls per task: ${calls.summary(TASKS)}`);
  const addRate = TASKS / ((performance.now() - started) / 1000);
  console.log(`add:                         ${addRate.toFixed(0)} tasks/s (${ADDERS} at a time)`);

  // 2. report cycles alone: every executor takes SLOTS tasks, then completes them, until none are left.
  calls.reset();
  started = performance.now();
  const done = await Promise.all(Array.from({ length: EXECUTORS }, (_, i) => executorLoop(store, `e${i}`, () => false)));
  const cycleRate = done.reduce((a, b) => a + b, 0) / ((performance.now() - started) / 1000);
  console.log(`assign+complete:             ${cycleRate.toFixed(0)} tasks/s (${EXECUTORS} executors x ${SLOTS} slots, scheduler's calls per report)`);
  console.log(`  etcd calls per task: ${calls.summary(TASKS)}`);

  // 3. both at once, end to end: adds while executors drain the queue.
  let adding = true;
  calls.reset();
  const cpuBefore = process.cpuUsage();
  const etcdBefore = etcdCpuSeconds(etcd);
  started = performance.now();
  const adders = runConcurrently(ADDERS, TASKS, () => store.add(task)).then(() => {
    adding = false;
  });
  const finished = await Promise.all(Array.from({ length: EXECUTORS }, (_, i) => executorLoop(store, `e${i}`, () => adding)));
  await adders;
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  console.log(`add+assign+complete:         ${(TASKS / seconds).toFixed(0)} tasks/s end to end (${finished.reduce((a, b) => a + b, 0)} tasks in ${seconds.toFixed(2)} s)`);
  console.log(
    `  CPU: this process ${(((cpu.user + cpu.system) / 1e6 / seconds) * 100).toFixed(0)}%, etcd ${(((etcdCpuSeconds(etcd) - etcdBefore) / seconds) * 100).toFixed(0)}% (load average ${os.loadavg()[0]!.toFixed(1)} on ${os.cpus().length} cores)`,
  );
  console.log(`  etcd calls per task: ${calls.summary(TASKS)}`);
  const counts = await store.countByStatus();
  console.log(`store afterwards: ${counts[TaskStatus.SUCCESS]} succeeded, ${counts[TaskStatus.PENDING]} pending`);

  // 4. etcd calls per report, through the scheduler, by shape.
  await reportShapes(store, calls);
}

/** The etcd calls one report costs through the scheduler, for each shape a report takes (see the top). */
async function reportShapes(store: EtcdTaskStore, calls: ReturnType<typeof countCalls>): Promise<void> {
  const logger = createLogger('bench', { maxBytes: 1e6, keep: 1, printToStdout: true, level: 'warn' });
  const scheduler = new Scheduler(store, { maxRetries: 3, maxWaitMs: 0, heartbeatEveryMs: 1_000 }, logger);
  cleanups.push(() => scheduler.close());
  const never = new AbortController().signal;
  for (let i = 0; i < REPORTS * SLOTS * 2 + 40 * SLOTS; i++) await store.add(task);
  type Held = { id: string; status: TaskStatus }[];
  const report = async (name: string, complete: Held, executing: Held, vacant: number): Promise<Held> => {
    const answer = await scheduler.report(
      { executor: name, complete: complete.map((t) => ({ id: t.id, status: TaskStatus.SUCCESS, result })), executing, vacant, release: [], waitMs: 0, fresh: false },
      never,
    );
    return answer.assign.map((t) => ({ id: t.id, status: t.status }));
  };
  const running = (held: Held): Held => held.map((t) => ({ id: t.id, status: TaskStatus.RUNNING }));
  const shapes: [string, (held: Held) => Promise<Held>][] = [
    ['steady', (held) => report('steady', held, [], SLOTS)],
    ['mixed', async (held) => [...running(held.slice(1)), ...(await report('mixed', held.slice(0, 1), running(held.slice(1)), 1))]],
    ['running', async (held) => (await report('running', [], held, 0), held)],
  ];
  for (const [name, step] of shapes) {
    // The executor holds SLOTS running tasks, acknowledged.
    let held = running(await report(name, [], [], SLOTS));
    await report(name, [], held, 0);
    calls.reset();
    for (let i = 0; i < REPORTS; i++) held = await step(held);
    console.log(`report ${name.padEnd(8)} etcd calls per report: ${calls.summary(REPORTS)}`);
  }
  calls.reset();
  for (let i = 0; i < 40; i++) {
    const held = await report(`started${i}`, [], [], SLOTS);
    await report(`started${i}`, [], held.map((t) => ({ id: t.id, status: TaskStatus.COMPILING })), 0);
  }
  // Each executor's first report (its assignment) counts too: the figure is per pair of reports.
  console.log(`report started  etcd calls per report pair (assigned, then started): ${calls.summary(40)}`);
}

/** CPU seconds etcd has used so far (from /proc). */
function etcdCpuSeconds(etcd: EtcdServer): number {
  const stat = fs.readFileSync(`/proc/${etcd.pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime and stime, in clock ticks (100 a second on Linux).
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** Counts the etcd calls the store makes, by kind (reads are served by the member; writes go through raft). */
function countCalls(client: Etcd3) {
  const counts = new Map<string, number>();
  const kv = client.kv as unknown as Record<string, (req: Record<string, unknown>, options?: unknown) => Promise<unknown>>;
  for (const method of ['range', 'txn', 'put']) {
    const original = kv[method]!.bind(client.kv);
    kv[method] = (req, options) => {
      const writes = method === 'put' || (method === 'txn' && JSON.stringify(req, (k, v) => (k === 'value' ? undefined : v)).includes('"request_put"'));
      const kind = method === 'range' ? 'read' : writes ? 'write' : method === 'txn' ? 'read' : 'write';
      counts.set(kind, (counts.get(kind) ?? 0) + 1);
      return original(req, options);
    };
  }
  return {
    reset: () => counts.clear(),
    summary: (tasks: number) => [...counts].map(([kind, n]) => `${(n / tasks).toFixed(2)} ${kind}s`).join(', '),
  };
}

/** One executor's reports, as the scheduler makes them (one store call each): finished tasks in, new ones out. */
async function executorLoop(store: EtcdTaskStore, name: string, more: () => boolean): Promise<number> {
  let holding: string[] = [];
  let finished = 0;
  for (;;) {
    await store.recordHeartbeat(name, { vacant: SLOTS });
    const outcome = await store.report(name, {
      complete: holding.map((id) => ({ id, status: TaskStatus.SUCCESS, result })),
      release: [],
      executing: [],
      maxRetries: 3,
      vacant: SLOTS,
    });
    finished += outcome.accepted.length;
    holding = outcome.assigned.map((t) => t.id);
    if (holding.length === 0) {
      if (!more()) return finished;
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
  }
}

async function runConcurrently(concurrency: number, total: number, job: () => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) {
        next++;
        await job();
      }
    }),
  );
}

async function cleanUp(): Promise<void> {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
}

// Ctrl-C and kills stop etcd and remove its dir too.
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
