// GET /api/task/events (issue 17) over real HTTP against the built kv2 (two judicators, an executor, a
// gateway): one `task` event per change in order, ending with the task done; `?id=` follows one running
// task with its progress and its output as it prints (recorded by whichever judicator the executor
// reports to, read through whichever the gateway asks), then ends; a client that reconnects with its
// Last-Event-ID gets what it missed, one whose id is too old is told to reset; bad input is refused; and,
// with an in-process gateway, the stream limit and the API token hold and a client that does not read is
// dropped. The executors list shows what each executor says of itself (slots, host, start).
import assert from 'node:assert/strict';
import net from 'node:net';
import os from 'node:os';
import { before, describe, it } from 'node:test';
import { createLogger } from '../../src/common/logging';
import { JudicatorLink } from '../../src/gateway/judicator-link';
import { TokenCheck } from '../../src/gateway/api/auth';
import { createGatewayServer } from '../../src/gateway/server';
import { issueIdentity, startJudicators, type ClusterNode } from '../helpers/cluster';
import { fileHooks } from '../helpers/file-hooks';
import { EventStreamReader } from '../helpers/sse';
import { startExecutor, startGateway, waitForExecutors, type GatewayNode } from '../helpers/system';
import { waitFor } from '../helpers/wait';

const hooks = fileHooks();

async function submit(base: string, command: string, fields: Record<string, string> = {}): Promise<string> {
  const body = new URLSearchParams({
    user: '7',
    compile_command: '',
    compile_timeout: '10',
    execute_input: '',
    execute_command: command,
    execute_timeout: '30',
    execute_standard: '',
    ...fields,
  });
  const response = await fetch(`${base}/api/task`, { method: 'POST', body, signal: AbortSignal.timeout(30_000) });
  const answer = (await response.json()) as { result: number; id: string; message?: string };
  assert.equal(answer.result, 0, answer.message);
  return answer.id;
}

async function waitDone(base: string, id: string): Promise<any> {
  const response = await fetch(`${base}/api/task?id=${id}&wait=60`, { signal: AbortSignal.timeout(90_000) });
  const answer = (await response.json()) as { task: { done: boolean } };
  assert.ok(answer.task.done, `task ${id} is done`);
  return answer.task;
}

/**
 * A gateway server in this process (its events limits and tokens as given), linked to the test's
 * judicators with a gateway certificate of their CA; stopped when the file's tests end. Its URL.
 */
async function inProcessGateway(name: string, options: { tokens: Parameters<typeof createGatewayServer>[0]['tokens']; eventsMaxStreams: number }): Promise<string> {
  const logger = createLogger(name, { maxBytes: 1 << 20, keep: 0, printToStdout: false, level: 'warn' });
  const { dir } = await issueIdentity(hooks, judicators[0]!, 'gateway', name);
  const link = new JudicatorLink({ join: judicators.map((j) => j.rpcAddress), identityDir: dir, rpc: { timeout_ms: 5_000, attempts: 3, avoid_ms: 5_000 } }, logger);
  const controller = new AbortController();
  const running = link.run(controller.signal);
  hooks.after(async () => {
    controller.abort();
    await running;
    link.close();
  });
  const { app } = await createGatewayServer({
    rpc: link.rpc,
    waitRpc: link.waitRpc,
    judicators: () => link.judicators(),
    logger,
    limits: { body_bytes: 1 << 20, task_max_size: 16_252_928, batch_max: 10, batch_concurrency: 2, events_max_streams: options.eventsMaxStreams, events_buffer_bytes: 64 * 1024 },
    tokens: options.tokens,
    ui: { get: async () => undefined },
  });
  hooks.after(() => app.close());
  return app.listen({ host: '127.0.0.1', port: 0 });
}

let judicators: ClusterNode[];

describe('task events: GET /api/task/events', () => {
  let gateway: GatewayNode;
  let base: string;

  before(async () => {
    judicators = await startJudicators(hooks, 2);
    const executor = startExecutor(hooks, 'e1', judicators, ['--main-task-vacant', '3', '--main-task-sandbox', 'none']);
    gateway = await startGateway(hooks, judicators);
    base = gateway.url;
    await waitForExecutors(base, [executor]);
  });

  it('sends one task event per change, in order, ending with the task done', async () => {
    const stream = new EventStreamReader(hooks, `${base}/api/task/events`);
    await stream.waitFor('the stream to be ready', (events) => events.some((e) => e.event === 'ready'));
    assert.equal(stream.status, 200);
    const id = await submit(base, 'sleep 0.3; echo hi', { execute_standard: 'hi' });
    await stream.waitFor(`task ${id} to be done`, (events) => events.some((e) => e.event === 'task' && e.json.id === id && e.json.done));
    const mine = stream.of('task').filter((t) => t.id === id);
    assert.deepEqual(Object.keys(mine[0]).sort(), ['done', 'executor', 'id', 'status', 'user', 'verdict']);
    assert.equal(mine[0].status, 0, 'first: Pending');
    assert.equal(mine[0].done, false);
    assert.equal(mine[0].user, 7);
    const last = mine[mine.length - 1];
    assert.equal(last.status, 5, 'last: Success');
    assert.equal(last.done, true);
    assert.equal(last.verdict, 'accepted', 'the verdict with the last change');
    assert.ok(mine.slice(0, -1).every((t) => t.verdict === null), 'no verdict before it is done');
    assert.equal(mine.filter((t) => t.done).length, 1, 'done once');
    // Each event is a change: no two in a row say the same.
    for (let i = 1; i < mine.length; i++) {
      const [a, b] = [mine[i - 1], mine[i]];
      assert.ok(a.status !== b.status || a.done !== b.done || a.verdict !== b.verdict || a.executor !== b.executor, `event ${i} changes something: ${JSON.stringify(mine)}`);
    }
    // Statuses only move forward for a task that ran once: Pending, (Compiling, Running), Success.
    const order = [0, 1, 3, 5];
    const positions = mine.map((t) => order.indexOf(t.status));
    assert.ok(positions.every((p, i) => p >= 0 && (i === 0 || p >= positions[i - 1]!)), `in order: ${JSON.stringify(mine.map((t) => t.status))}`);
    // The event id moves on with the events (what a reconnect sends).
    assert.match(stream.parser.lastEventId, /^[0-9a-f]{16}$/);
    stream.close();
  });

  it('follows one running task with ?id=: its progress and its output as it prints, then ends', async () => {
    const id = await submit(base, 'for i in 1 2 3 4 5 6 7 8; do echo line $i; echo err $i >&2; sleep 0.25; done');
    const stream = new EventStreamReader(hooks, `${base}/api/task/events?id=${id}`);
    await stream.done;
    const types = stream.events.map((e) => e.event);
    assert.equal(types[0], 'ready');
    assert.equal(types[1], 'task', 'the task as it is, first');
    const tasks = stream.of('task');
    assert.ok(tasks.every((t) => t.id === id));
    assert.equal(tasks[tasks.length - 1].done, true, 'the stream ends with the task done');
    const progress = stream.of('progress');
    assert.ok(progress.length >= 2, `progress while it ran: ${JSON.stringify(progress)}`);
    assert.ok(progress.every((p) => p.id === id && p.of >= 1 && typeof p.elapsed_ms === 'number'));
    assert.ok(progress.some((p) => p.step === 'execute' && p.test === 1));
    for (let i = 1; i < progress.length; i++) assert.ok(progress[i].elapsed_ms >= progress[i - 1].elapsed_ms, 'elapsed time goes up');
    const stdout = stream.of('output').filter((o) => o.stream === 'stdout').map((o) => o.text).join('');
    const stderr = stream.of('output').filter((o) => o.stream === 'stderr').map((o) => o.text).join('');
    const full = [1, 2, 3, 4, 5, 6, 7, 8].map((i) => `line ${i}\n`).join('');
    assert.ok(stdout.length >= 'line 1\nline 2\nline 3\n'.length && full.startsWith(stdout), `stdout so far is the output's start, in order: ${JSON.stringify(stdout)}`);
    assert.ok(stderr.startsWith('err 1\n'), `stderr too: ${JSON.stringify(stderr)}`);
    // Output came while the task ran, not with its result.
    const firstOutput = stream.events.find((e) => e.event === 'output')!;
    const doneEvent = stream.events.find((e) => e.event === 'task' && e.json.done)!;
    assert.ok(firstOutput.at < doneEvent.at - 500, `output arrived ${doneEvent.at - firstOutput.at} ms before the end`);
  });

  it('a task with tests: progress says test i of N as they run, the output is each test\'s own', async () => {
    const tests = JSON.stringify([1, 2, 3].map((i) => ({ name: `t${i}`, input: `${i}\n`, output: `${i}\n` })));
    const id = await submit(base, 'read n; echo start $n; sleep 1.2; echo $n', { tests, test_mode: 'all', checker: 'tokens' });
    const stream = new EventStreamReader(hooks, `${base}/api/task/events?id=${id}`);
    await stream.done;
    const progress = stream.of('progress').filter((p) => p.step === 'execute');
    assert.deepEqual([...new Set(progress.map((p) => p.test))], [1, 2, 3], `tests in order: ${JSON.stringify(progress)}`);
    assert.ok(progress.every((p) => p.of === 3));
    const outputs = stream.of('output').filter((o) => o.stream === 'stdout');
    for (const test of [1, 2, 3]) {
      const text = outputs.filter((o) => o.test === test).map((o) => o.text).join('');
      assert.ok(text.startsWith(`start ${test}\n`), `test ${test}'s own output: ${JSON.stringify(text)}`);
    }
    const done = stream.of('task').at(-1);
    // A checker that compares tokens: "start 1 1" is not "1".
    assert.equal(done.verdict, 'wrong_answer');
  });

  it('a finished task followed with ?id= is told at once, and the stream ends', async () => {
    const id = await submit(base, 'echo quick');
    await waitDone(base, id);
    const stream = new EventStreamReader(hooks, `${base}/api/task/events?id=${id}`);
    await stream.done;
    assert.deepEqual(stream.events.map((e) => e.event), ['ready', 'task']);
    assert.equal(stream.of('task')[0].done, true);
  });

  it('a client that reconnects with Last-Event-ID gets what it missed; one too old is told to reset', async () => {
    const first = new EventStreamReader(hooks, `${base}/api/task/events`);
    await first.waitFor('ready', (events) => events.some((e) => e.event === 'ready'));
    const a = await submit(base, 'true');
    await first.waitFor(`task ${a} done`, (events) => events.some((e) => e.event === 'task' && e.json.id === a && e.json.done));
    const seen = first.parser.lastEventId;
    first.close();
    // Missed while away: a whole task's life.
    const b = await submit(base, 'true');
    await waitDone(base, b);
    const again = new EventStreamReader(hooks, `${base}/api/task/events`, { 'last-event-id': seen });
    await again.waitFor(`task ${b}'s missed changes`, (events) => events.some((e) => e.event === 'task' && e.json.id === b && e.json.done));
    const missed = again.of('task').filter((t) => t.id === b);
    assert.equal(missed[0].status, 0, 'from its very first change');
    assert.equal(again.of('task').filter((t) => t.id === a).length, 0, 'nothing it had seen');
    assert.equal(again.of('reset').length, 0);

    const old = new EventStreamReader(hooks, `${base}/api/task/events`, { 'last-event-id': '0000000000000001' });
    await old.waitFor('a reset', (events) => events.some((e) => e.event === 'reset'));
    again.close();
    old.close();
  });

  it('refuses bad input with the API error', async () => {
    for (const [url, pattern] of [
      [`${base}/api/task/events?id=nothex`, /task id/],
      [`${base}/api/task/events?last_event_id=not-a-cursor`, /Last-Event-ID/],
    ] as const) {
      const response = await fetch(url, { signal: AbortSignal.timeout(10_000) });
      const answer = (await response.json()) as { result: number; message: string };
      assert.equal(answer.result, 4, url);
      assert.match(answer.message, pattern);
    }
    const missing = (await (await fetch(`${base}/api/task/events?id=${'0'.repeat(24)}`, { signal: AbortSignal.timeout(10_000) })).json()) as { result: number };
    assert.equal(missing.result, 2);
  });

  it('lists each executor with its slots, host and start time', async () => {
    const { executors } = (await (await fetch(`${base}/api/executors`, { signal: AbortSignal.timeout(10_000) })).json()) as { executors: any[] };
    const e1 = executors.find((e) => e.id === 'e1');
    assert.equal(e1.slots, 3);
    assert.equal(e1.host, os.hostname());
    assert.ok(Math.abs(Date.parse(e1.started) - Date.now()) < 10 * 60_000, `started ${e1.started}`);
  });

  it('in-process: a user token streams only its own user\'s tasks; an admin token sees every task', async () => {
    const tokens = new TokenCheck([
      { token: 'root-token', owner: 'admin' },
      { token: 'user-7-token', owner: 7 },
      { token: 'user-8-token', owner: 8 },
    ]);
    const url = await inProcessGateway('events-scope-test', { tokens: { current: tokens }, eventsMaxStreams: 8 });
    const as = (token: string) => ({ authorization: `Bearer ${token}` });
    const submitAs = async (token: string, user: number) => {
      const body = new URLSearchParams({ user: String(user), compile_command: '', compile_timeout: '10', execute_input: '', execute_command: 'echo hi', execute_timeout: '30', execute_standard: '' });
      const answer = (await (await fetch(`${url}/api/task`, { method: 'POST', body, headers: as(token), signal: AbortSignal.timeout(30_000) })).json()) as { result: number; id: string };
      assert.equal(answer.result, 0);
      return answer.id;
    };

    const seven = new EventStreamReader(hooks, `${url}/api/task/events`, as('user-7-token'));
    const admin = new EventStreamReader(hooks, `${url}/api/task/events`, as('root-token'));
    for (const stream of [seven, admin]) await stream.waitFor('ready', (events) => events.some((e) => e.event === 'ready'));
    const mine = await submitAs('user-7-token', 7);
    const theirs = await submitAs('user-8-token', 8);
    await admin.waitFor('both tasks done on the admin stream', (events) =>
      [mine, theirs].every((id) => events.some((e) => e.event === 'task' && e.json.id === id && e.json.done)),
    );
    await seven.waitFor('its own task done on the user stream', (events) => events.some((e) => e.event === 'task' && e.json.id === mine && e.json.done));
    const seen = seven.of('task');
    assert.ok(seen.length > 0);
    assert.ok(seen.every((t) => t.user === 7), `user 7 saw only user 7's tasks: ${JSON.stringify(seen.map((t) => [t.id, t.user]))}`);
    assert.ok(!seen.some((t) => t.id === theirs), "user 7 never saw user 8's task");
    seven.close();
    admin.close();

    // Following someone else's task by id is refused, as reading it is: 403 with the API's JSON error.
    const followed = await fetch(`${url}/api/task/events?id=${theirs}`, { headers: as('user-7-token'), signal: AbortSignal.timeout(10_000) });
    assert.equal(followed.status, 403);
    assert.equal(((await followed.json()) as { result: number }).result, 5);
    const read = await fetch(`${url}/api/task?id=${theirs}`, { headers: as('user-7-token'), signal: AbortSignal.timeout(10_000) });
    assert.equal(read.status, 403);
    await read.body?.cancel();
  });

  it('in-process: at most events_max_streams streams, and the API token applies', async () => {
    const url = await inProcessGateway('events-limit-test', { tokens: ['s3cret'], eventsMaxStreams: 2 });
    const auth = { authorization: 'Bearer s3cret' };

    const refused = await fetch(`${url}/api/task/events`, { signal: AbortSignal.timeout(10_000) });
    assert.equal(refused.status, 401);

    const streams = [new EventStreamReader(hooks, `${url}/api/task/events`, auth), new EventStreamReader(hooks, `${url}/api/task/events`, auth)];
    for (const stream of streams) await stream.waitFor('ready', (events) => events.some((e) => e.event === 'ready'));
    const third = await fetch(`${url}/api/task/events`, { headers: auth, signal: AbortSignal.timeout(10_000) });
    assert.equal(third.status, 503);
    assert.match(((await third.json()) as { message: string }).message, /at most 2 event streams/);
    streams[0]!.close();
    // Its slot is free again once the server sees it closed.
    await waitFor(async () => {
      const response = await fetch(`${url}/api/task/events`, { headers: auth, signal: AbortSignal.timeout(2_000) }).catch(() => undefined);
      const ok = response?.status === 200;
      await response?.body?.cancel();
      return ok;
    }, { what: 'a stream slot to be free again', timeoutMs: 10_000 });
    streams[1]!.close();

    // A client that does not read: once 64 KiB wait unsent for it (its socket's buffers full), it is dropped.
    const tests = JSON.stringify(Array.from({ length: 10 }, (_, i) => ({ name: `t${i}`, input: '', output: '' })));
    const noisy = 'head -c 65536 /dev/zero | tr "\\0" a; head -c 65536 /dev/zero | tr "\\0" b >&2; sleep 0.7';
    const added = await fetch(`${url}/api/task`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ user: 8, compile_timeout: 0, execute_timeout: 30, execute_command: noisy, tests, test_mode: 'all' }) });
    const { id } = (await added.json()) as { id: string };
    const { port } = new URL(url);
    const socket = net.connect(Number(port), '127.0.0.1');
    hooks.after(() => void socket.destroy());
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.write(`GET /api/task/events?id=${id} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer s3cret\r\n\r\n`);
    socket.pause();
    const done = await fetch(`${url}/api/task?id=${id}&wait=60`, { headers: auth, signal: AbortSignal.timeout(90_000) });
    assert.equal(((await done.json()) as { task: { done: boolean } }).task.done, true);
    // Read what was sent: the stream ended (the chunked answer's last chunk) without the task's last change.
    let received = '';
    socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
    socket.resume();
    await waitFor(() => received.endsWith('\r\n0\r\n\r\n'), { what: 'the dropped stream to end', timeoutMs: 20_000 });
    assert.ok(received.length > 64 * 1024, `it was sent ${received.length} bytes before it was dropped`);
    assert.ok(!/"done":true/.test(received), 'dropped before the task was done');
    const metrics = await (await fetch(`${url}/metrics`)).text();
    assert.match(metrics, /^kv2_gateway_event_streams 0$/m, 'its slot is free again');
  });
});
