// The executor in a real cluster: the built kv2 running a judicator and an executor, tasks added and
// read over the real judicator RPC. Tasks are assigned, run and completed; a cancel stops a running
// step at once; slots are respected; SIGINT hands tasks back (Retrying, no retry counted) and SIGTERM
// lets them finish; a module killed with SIGKILL leaves no step running once it is back. A short task
// costs the judicator no report but its result; a longer one's statuses are seen while it runs.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { before, test, type TestContext } from 'node:test';
import { JudicatorRpcClient } from '../../src/rpc/client';
import type { WireTask } from '../../src/rpc/contract';
import { inputToWire } from '../../src/rpc/wire';
import { packText, unpackText } from '../../src/task/codec';
import { TaskStatus, type TaskInput } from '../../src/task/types';
import { issueIdentity, judicatorMetrics, startJudicators, type ClusterNode } from '../helpers/cluster';
import type { NodeFiles } from '../../src/pki/identity-files';
import { isRunning, readPid, startNode, type Kv2Node } from '../helpers/kv2';
import { processesMentioning } from '../helpers/process-table';
import { executorArgs } from '../helpers/system';
import { makeTempDir } from '../helpers/temp';
import { waitFor } from '../helpers/wait';
import { fileHooks } from '../helpers/file-hooks';

const hooks = fileHooks();

let judicator: ClusterNode;
let rpc: JudicatorRpcClient;
/** The test's own certificate: a gateway's (it adds, reads and cancels tasks as a gateway would). */
let gatewayFiles: NodeFiles;

before(async () => {
  judicator = (await startJudicators(hooks, 1))[0]!;
  gatewayFiles = (await issueIdentity(hooks, judicator, 'gateway', 'test-gateway')).files;
  rpc = new JudicatorRpcClient({ source: { addresses: async () => [judicator.rpcAddress] }, identity: { current: gatewayFiles, onChange: () => () => undefined }, timeoutMs: 10_000 });
  hooks.after(() => rpc.close());
});

interface Executor {
  name: string;
  dir: string;
  node: Kv2Node;
}

/** An executor stopped at the end of the test `t` (passed or failed), so it never runs the next test's tasks. */
function startExecutor(t: TestContext, name: string, extra: string[] = [], dir = makeTempDir(t, `kv2-${name}-`)): Executor {
  const args = executorArgs(name, judicator, ['--main-report-interval', '1', ...extra], dir);
  return { name, dir, node: startNode(t, dir, args) };
}

async function waitForExecutor(name: string): Promise<void> {
  await waitFor(
    async () => {
      const answer = await rpc.call('executors', {});
      return answer.executors.some((e) => e.id === name && Date.now() - Date.parse(e.report_time) < 5_000);
    },
    { what: `executor ${name} to report`, timeoutMs: 30_000 },
  );
}

function input(spec: { compile?: string; execute?: string; input?: string; standard?: string; compileTimeout?: number; executeTimeout?: number }): TaskInput {
  return {
    user: 0,
    compile: { source: Buffer.alloc(0), command: packText(spec.compile ?? ''), timeout: spec.compileTimeout ?? 0 },
    execute: {
      input: packText(spec.input ?? ''),
      data: Buffer.alloc(0),
      command: packText(spec.execute ?? ''),
      timeout: spec.executeTimeout ?? 0,
      standard: spec.standard ? packText(spec.standard) : Buffer.alloc(0),
    },
  };
}

async function add(task: TaskInput): Promise<string> {
  const answer = await rpc.call('add', { task: inputToWire(task) });
  assert.equal(answer.result, 0, answer.message);
  return answer.id!;
}

async function get(id: string): Promise<WireTask> {
  const answer = await rpc.call('get', { id });
  assert.equal(answer.result, 0, answer.message);
  return answer.task!;
}

function waitStatus(id: string, statuses: number[], timeoutMs = 20_000): Promise<WireTask> {
  return waitFor(
    async () => {
      const task = await get(id);
      return statuses.includes(task.status) ? task : undefined;
    },
    { what: `task ${id} to reach status ${statuses.join(' or ')}`, timeoutMs, intervalMs: 20 },
  );
}

const wireText = (base64: string | undefined) => unpackText(Buffer.from(base64 ?? '', 'base64'));

function marker(): string {
  return String(800_000 + Math.floor(Math.random() * 99_999));
}

test('a task is assigned, compiled, executed and completed over the real RPC', async (t) => {
  const executor = startExecutor(t, 'exec-a');
  await waitForExecutor('exec-a');
  const started = Date.now();
  const id = await add(input({ compile: 'echo compiled', execute: 'echo hello; cat', input: 'world\n', standard: 'hello\nworld\n' }));
  const task = await waitStatus(id, [TaskStatus.SUCCESS, TaskStatus.COMPILE_FAILED, TaskStatus.RUN_FAILED]);
  const elapsed = Date.now() - started;
  assert.equal(task.status, TaskStatus.SUCCESS, wireText(task.result?.compile_error) + wireText(task.result?.execute_error));
  assert.equal(task.done, true);
  assert.equal(wireText(task.result!.compile_output), 'compiled\n');
  assert.equal(wireText(task.result!.execute_output), 'hello\nworld\n');
  assert.equal(task.result!.accepted, true);
  assert.equal(task.result!.execute!.exit_code, 0);
  // Timing is for bench/, not a verdict here (a loaded machine is slow); shown for the curious.
  t.diagnostic(`submit to result: ${elapsed} ms`);
  assert.ok(fs.existsSync(path.join(executor.dir, 'executor', 'data', 'main')));
  await executor.node.stop();
});

/** Report calls the judicator answered so far (its metrics). */
async function reportCalls(): Promise<number> {
  const text = await judicatorMetrics(judicator, gatewayFiles);
  return text
    .split('\n')
    .filter((line) => line.startsWith('kv2_rpc_calls_total{') && line.includes('method="report"'))
    .reduce((sum, line) => sum + Number(line.split(' ').pop()), 0);
}

test('a short task costs one report besides the poll that brought it: its result', async (t) => {
  // Status changes that must last 5 s before they are reported: none of these tasks lasts that long.
  const executor = startExecutor(t, 'exec-g', ['--main-report-status-delay', '5']);
  await waitForExecutor('exec-g');
  const tasks = 10;
  const before = await reportCalls();
  const started = Date.now();
  for (let i = 0; i < tasks; i++) {
    const id = await add(input({ compile: 'true', execute: `echo ${i}` }));
    assert.equal(wireText((await waitStatus(id, [TaskStatus.SUCCESS])).result!.execute_output), `${i}\n`);
  }
  const calls = (await reportCalls()) - before;
  // Per task: the poll that brought it, and its result; besides, one heartbeat per report interval (1 s)
  // and the poll waiting at each end. (Each status change aborting the poll made it about 5 per task.)
  const allowed = 2 * tasks + Math.ceil((Date.now() - started) / 1000) + 2;
  t.diagnostic(`${calls} report calls for ${tasks} tasks`);
  assert.ok(calls <= allowed, `${calls} report calls for ${tasks} tasks (at most ${allowed})`);
  await executor.node.stop();
});

test('a task that runs for a while is seen Compiling, then Running, before its result', async (t) => {
  const executor = startExecutor(t, 'exec-h');
  await waitForExecutor('exec-h');
  const id = await add(input({ compile: 'sleep 1.5', execute: 'sleep 1.5; echo late' }));
  await waitStatus(id, [TaskStatus.COMPILING]);
  await waitStatus(id, [TaskStatus.RUNNING]);
  assert.equal(wireText((await waitStatus(id, [TaskStatus.SUCCESS])).result!.execute_output), 'late\n');
  await executor.node.stop();
});

test('a cancel stops a running compile at once, background children included', async (t) => {
  const executor = startExecutor(t, 'exec-b');
  await waitForExecutor('exec-b');
  const mark = marker();
  const id = await add(input({ compile: `sleep ${mark} & sleep ${mark}`, compileTimeout: 100 }));
  await waitFor(() => processesMentioning(`sleep ${mark}`).length === 2, { what: 'the compile step to run' });
  // Reported once it has lasted --main-report-status-delay (0.1 s).
  await waitStatus(id, [TaskStatus.COMPILING], 5_000);
  const answer = await rpc.call('cancel', { id });
  assert.equal(answer.result, 0);
  await waitFor(() => processesMentioning(`sleep ${mark}`).length === 0, { what: 'the cancelled step to be killed', timeoutMs: 3_000, intervalMs: 20 });
  assert.equal((await get(id)).status, TaskStatus.CANCELLED);
  // The slot is free again.
  const next = await add(input({ execute: 'echo after' }));
  assert.equal((await waitStatus(next, [TaskStatus.SUCCESS])).status, TaskStatus.SUCCESS);
  await executor.node.stop();
});

test('six tasks on three slots: never more than three at once, all finish', async (t) => {
  const executor = startExecutor(t, 'exec-c', ['--main-task-vacant', '3']);
  await waitForExecutor('exec-c');
  const ids = await Promise.all(Array.from({ length: 6 }, () => add(input({ execute: 'date +%s%N; sleep 0.6; date +%s%N' }))));
  const tasks = await Promise.all(ids.map((id) => waitStatus(id, [TaskStatus.SUCCESS, TaskStatus.RUN_FAILED])));
  const spans = tasks.map((task) => {
    assert.equal(task.status, TaskStatus.SUCCESS);
    const [start, end] = wireText(task.result!.execute_output).trim().split('\n').map((n) => BigInt(n));
    return [start!, end!] as const;
  });
  const most = Math.max(...spans.map(([start]) => spans.filter(([s, e]) => s <= start && start < e).length));
  assert.ok(most <= 3, `${most} tasks ran at once`);
  assert.ok(most >= 2, `the slots were used in parallel (${most} at once)`);
  await executor.node.stop();
});

test('SIGINT hands running tasks back at once (Retrying, no retry counted); they finish when an executor returns', async (t) => {
  const dir = makeTempDir(t, 'kv2-exec-d-');
  const executor = startExecutor(t, 'exec-d', [], dir);
  await waitForExecutor('exec-d');
  const mark = marker();
  const id = await add(input({ execute: `sleep ${mark} & echo started; wait` }));
  await waitFor(() => processesMentioning(`sleep ${mark}`).length === 1, { what: 'the task to run' });
  const stopped = Date.now();
  assert.equal(await executor.node.stop('SIGINT'), 0);
  const left = processesMentioning(`sleep ${mark}`);
  assert.deepEqual(left, [], `the task was killed; left: ${JSON.stringify(left)}\n${fs.readFileSync(path.join(dir, 'executor', 'log', 'main', 'main.log'), 'utf8').split('\n').filter((l) => !l.includes('"debug"')).slice(-12).join('\n')}`);
  const back = await waitStatus(id, [TaskStatus.RETRYING], 10_000);
  assert.ok(Date.now() - stopped < 10_000);
  assert.equal(back.executor, null);
  assert.equal(back.retries, 0, 'a task handed back is not a failed try');

  const again = startExecutor(t, 'exec-d', [], dir);
  await waitFor(() => processesMentioning(`sleep ${mark}`).length === 1, { what: 'the task to run again' });
  processesMentioning(`sleep ${mark}`).forEach((p) => process.kill(p.pid, 'SIGKILL'));
  const done = await waitStatus(id, [TaskStatus.SUCCESS, TaskStatus.RUN_FAILED]);
  assert.equal(wireText(done.result!.execute_output), 'started\n');
  await again.node.stop();
});

test('SIGTERM drains: no new task is taken, the running one finishes and reports', async (t) => {
  const executor = startExecutor(t, 'exec-e', ['--drain-timeout', '20']);
  await waitForExecutor('exec-e');
  const id = await add(input({ execute: 'sleep 1.5; echo drained' }));
  await waitStatus(id, [TaskStatus.RUNNING]);
  const pidFile = path.join(executor.dir, 'executor', 'data', 'main.pid');
  const modulePid = readPid(pidFile)!;
  process.kill(modulePid, 'SIGTERM');
  // Added while draining: must not go to the draining executor.
  const later = await add(input({ execute: 'echo later' }));
  const done = await waitStatus(id, [TaskStatus.SUCCESS, TaskStatus.RUN_FAILED, TaskStatus.RETRYING]);
  assert.equal(done.status, TaskStatus.SUCCESS);
  assert.equal(wireText(done.result!.execute_output), 'drained\n');
  assert.equal(done.retries, 0);
  await waitFor(() => !isRunning(modulePid), { what: 'the drained module to exit' });
  // The supervisor starts the module again, which then takes the later task.
  const laterDone = await waitStatus(later, [TaskStatus.SUCCESS]);
  assert.equal(wireText(laterDone.result!.execute_output), 'later\n');
  await executor.node.stop();
});

test('a module killed with SIGKILL leaves no step running once it is back, and its task runs again', async (t) => {
  const executor = startExecutor(t, 'exec-f');
  await waitForExecutor('exec-f');
  const mark = marker();
  const id = await add(input({ execute: `sleep ${mark}`, executeTimeout: 3 }));
  const [first] = await waitFor(() => {
    const found = processesMentioning(`sleep ${mark}`);
    return found.length === 1 ? found : undefined;
  }, { what: 'the task to run' });
  const pidFile = path.join(executor.dir, 'executor', 'data', 'main.pid');
  const modulePid = readPid(pidFile)!;
  process.kill(modulePid, 'SIGKILL');
  // The step is in its own process group: it outlives the module until the module is back.
  await waitFor(() => {
    const pid = readPid(pidFile);
    return pid && pid !== modulePid && isRunning(pid);
  }, { what: 'the supervisor to restart the module', timeoutMs: 30_000 });
  await waitFor(() => !processesMentioning(`sleep ${mark}`).some((p) => p.pid === first!.pid), { what: 'the leftover step to be killed', timeoutMs: 10_000 });
  const done = await waitStatus(id, [TaskStatus.RUN_FAILED, TaskStatus.SUCCESS], 60_000);
  assert.equal(done.status, TaskStatus.RUN_FAILED);
  assert.equal(wireText(done.result!.execute_error), 'Execution time out.');
  assert.ok(done.retries >= 1);
  await executor.node.stop();
});
