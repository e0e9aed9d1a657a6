// The gateway's HTTP API over real HTTP against the built kv2: a real judicator, gateway and (from the
// second part on) executor. The original's system-test scenarios (test_system 000-002 and the shapes of
// 003), then every route's bad input: result codes with messages, never an HTTP 500.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { unzipSync, zipSync } from 'fflate';
import { startJudicators, type ClusterNode } from '../helpers/cluster';
import { startExecutor, startGateway, type GatewayNode } from '../helpers/system';
import { waitFor } from '../helpers/wait';
import { fileHooks } from '../helpers/file-hooks';

const hooks = fileHooks();

interface Answer {
  status: number;
  type: string;
  body: any;
}

async function call(url: string, init: RequestInit = {}): Promise<Answer> {
  const response = await fetch(url, { ...init, signal: AbortSignal.timeout(30_000) });
  const type = response.headers.get('content-type') ?? '';
  const text = await response.text();
  assert.notEqual(response.status, 500, `HTTP 500 from ${init.method ?? 'GET'} ${url}: ${text.slice(0, 300)}`);
  return { status: response.status, type, body: type.includes('json') ? JSON.parse(text) : text };
}

function form(fields: Record<string, string>): URLSearchParams {
  const defaults = { user: '0', compile_command: '', compile_timeout: '10', execute_input: '', execute_command: 'true', execute_timeout: '10', execute_standard: '' };
  return new URLSearchParams({ ...defaults, ...fields });
}

describe('gateway API (the original system test and the [BUG] fixes)', () => {
  let judicator: ClusterNode;
  let gateway: GatewayNode;
  let base: string;
  let pendingId: string;
  before(async () => {
    judicator = (await startJudicators(hooks, 1))[0]!;
    gateway = await startGateway(hooks, judicator);
    base = gateway.url;
  });

  it('000: /api/test answers the original text', async () => {
    const answer = await call(`${base}/api/test`);
    assert.equal(answer.status, 200);
    assert.equal(answer.body, 'Khala gateway server is working.');
    assert.match(answer.type, /^text\/plain/);
  });

  it('001: invalid add, add, search, get, cancel (no executor yet)', async () => {
    // Invalid input: HTTP 400 (issue 17; the original answered 200) with the original's result code.
    const invalid = await call(`${base}/api/task`, { method: 'POST', body: form({ compile_timeout: '-1' }) });
    assert.equal(invalid.status, 400);
    assert.equal(invalid.body.result, 4);
    assert.equal(invalid.body.id, null);
    assert.match(invalid.body.message, /compile_timeout/);
    assert.deepEqual(invalid.body.errors.map((e: { field: string }) => e.field), ['compile_timeout']);
    // Every bad field at once, not one a time.
    const many = await call(`${base}/api/task`, { method: 'POST', body: form({ user: 'me', execute_timeout: 'soon', test_mode: 'best', callback_url: 'https://example.com/' }) });
    assert.equal(many.status, 400);
    assert.deepEqual(many.body.errors.map((e: { field: string }) => e.field), ['user', 'execute_timeout', 'test_mode', 'callback_url']);
    assert.match(many.body.errors[3].message, /--task-callback-allow/);
    for (const error of many.body.errors) assert.equal(typeof error.message, 'string');

    const added = await call(`${base}/api/task`, { method: 'POST', body: form({ compile_command: 'echo hi', execute_command: 'cat' }) });
    assert.equal(added.body.result, 0);
    assert.match(added.body.id, /^[a-f0-9]{24}$/);
    const id = added.body.id as string;

    const day = new Date().toISOString().slice(0, 10);
    const search = await call(`${base}/api/task/list?user=0&start_time=${day}T00:00:00&end_time=${day}T23:59:59.999&limit=10&page=0`);
    assert.equal(search.body.result, 0);
    assert.equal(search.body.pages, 1);
    assert.deepEqual(search.body.tasks.map((t: { id: string }) => t.id), [id]);
    // The original's brief, and the verdict (issue 17: null until the task is done).
    assert.deepEqual(Object.keys(search.body.tasks[0]), ['id', 'user', 'add_time', 'done', 'status', 'executor', 'report_time', 'verdict']);

    const got = await call(`${base}/api/task?id=${id}`);
    assert.equal(got.body.result, 0);
    const task = got.body.task;
    assert.equal(task.status, 0);
    assert.equal(task.executor, null);
    assert.equal(task.done, false);
    assert.equal(task.result, null);
    assert.deepEqual(task.compile, { source: false, command: 'echo hi', timeout: 10 });
    assert.deepEqual(task.execute, { input: '', data: false, command: 'cat', timeout: 10, standard: '' });

    const cancelled = await call(`${base}/api/task?id=${id}`, { method: 'DELETE' });
    assert.deepEqual(cancelled.body, { result: 0 });
    const after = await call(`${base}/api/task?id=${id}`);
    assert.equal(after.body.task.status, 7);
    assert.equal(after.body.task.done, true);
    // Cancelling a task that is done: NOT_EXIST, with a message.
    const again = await call(`${base}/api/task?id=${id}`, { method: 'DELETE' });
    assert.equal(again.body.result, 2);
    assert.ok(again.body.message);

    // A task left pending for the later tests' executor.
    pendingId = (await call(`${base}/api/task`, { method: 'POST', body: form({ execute_command: 'echo later' }) })).body.id;
  });

  it('002: judicators (with the leader) and executors', async () => {
    const judicators = await call(`${base}/api/judicators`);
    assert.deepEqual(judicators.body, { result: 0, judicators: [{ name: '/judicator/service/j1', address: `127.0.0.1:${judicator.ports.rpc}`, leader: true }] });
    assert.deepEqual((await call(`${base}/api/executors`)).body, { result: 0, executors: [] });
    startExecutor(hooks, 'e1', judicator, ['--main-task-vacant', '3']);
    const executors = await waitFor(
      async () => {
        const answer = await call(`${base}/api/executors`);
        return answer.body.executors.length === 1 ? answer.body.executors : undefined;
      },
      { what: 'the executor to be listed', timeoutMs: 60_000 },
    );
    assert.equal(executors[0].hostname, 'e1');
    assert.equal(executors[0].id, 'e1');
    // The task added before the executor came is run now.
    const done = await waitFor(async () => ((await call(`${base}/api/task?id=${pendingId}`)).body.task.done ? true : undefined), { what: 'the pending task', timeoutMs: 60_000 });
    assert.ok(done);
  });

  it('003: truncation at 1000 characters, no_truncate as 1/true, downloads of raw bytes', async () => {
    const id = (
      await call(`${base}/api/task`, {
        method: 'POST',
        body: form({ compile_command: "printf 'a%.0s' $(seq 1500); echo", execute_command: "printf 'ok\\xff\\xfe'" }),
      })
    ).body.id as string;
    await waitFor(async () => ((await call(`${base}/api/task?id=${id}`)).body.task.done ? true : undefined), { what: 'the task', timeoutMs: 60_000 });
    const truncated = (await call(`${base}/api/task?id=${id}`)).body.task;
    assert.equal(truncated.status, 5);
    assert.equal(truncated.result.compile_output, `${'a'.repeat(1000)}...`);
    for (const yes of ['1', 'true', 'TRUE']) {
      assert.equal((await call(`${base}/api/task?id=${id}&no_truncate=${yes}`)).body.task.result.compile_output, `${'a'.repeat(1500)}\n`);
    }
    for (const no of ['0', 'false']) {
      assert.equal((await call(`${base}/api/task?id=${id}&no_truncate=${no}`)).body.task.result.compile_output, `${'a'.repeat(1000)}...`);
    }
    // Output that is not UTF-8 is shown with replacement characters; the download gives the bytes.
    assert.equal(truncated.result.execute_output, 'ok\uFFFD\uFFFD');
    const response = await fetch(`${base}/api/task?id=${id}&file=execute_output`);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('content-type'), 'text/plain; charset=utf-8');
    assert.equal(response.headers.get('content-disposition'), `attachment; filename="${id}_execute_output.txt"`);
    assert.deepEqual(Buffer.from(await response.arrayBuffer()), Buffer.from([0x6f, 0x6b, 0xff, 0xfe]));
    // An empty result file: 404 as the original, but JSON with a message.
    const empty = await call(`${base}/api/task?id=${id}&file=execute_error`);
    assert.equal(empty.status, 404);
    assert.equal(empty.body.result, 2);
  });

  it('003: the source-zip and data-zip template (name+text pairs and uploaded zips)', async () => {
    const body = new FormData();
    for (const [k, v] of Object.entries({
      user: '0',
      compile_source_name: 'source',
      compile_source_str: 'bebebe\r\n',
      compile_command: 'cat source; echo compiled.',
      compile_timeout: '10',
      execute_input: '',
      execute_data_name: 'raw.dat',
      execute_data_str: 'nrnrnr',
      execute_command: 'cat data/raw.dat; echo; echo executed.',
      execute_timeout: '10',
      execute_standard: '',
    })) body.set(k, v);
    const id = (await call(`${base}/api/task`, { method: 'POST', body })).body.id as string;
    await waitFor(async () => ((await call(`${base}/api/task?id=${id}`)).body.task.done ? true : undefined), { what: 'the template task', timeoutMs: 60_000 });
    const task = (await call(`${base}/api/task?id=${id}`)).body.task;
    assert.equal(task.status, 5);
    assert.equal(task.compile.source, true);
    assert.equal(task.execute.data, true);
    assert.equal(task.result.compile_output, 'bebebe\ncompiled.\n');
    assert.equal(task.result.execute_output, 'nrnrnr\nexecuted.\n');
    const zip = await fetch(`${base}/api/task?id=${id}&file=compile_source`);
    assert.equal(zip.headers.get('content-type'), 'application/zip');
    assert.equal(zip.headers.get('content-disposition'), `attachment; filename="${id}_compile_source.zip"`);
    assert.deepEqual(Object.keys(unzipSync(new Uint8Array(await zip.arrayBuffer()))), ['source']);

    // An uploaded zip (multipart file) is used as it is.
    const upload = new FormData();
    for (const [k, v] of Object.entries({ user: '1', compile_command: 'ls sub', compile_timeout: '10', execute_input: '', execute_command: 'cat sub/f.txt', execute_timeout: '10', execute_standard: 'zipped' })) upload.set(k, v);
    upload.set('compile_source', new Blob([zipSync({ 'sub/f.txt': new TextEncoder().encode('zipped') })]), 'src.zip');
    const zipped = (await call(`${base}/api/task`, { method: 'POST', body: upload })).body;
    assert.equal(zipped.result, 0, zipped.message);
    await waitFor(async () => ((await call(`${base}/api/task?id=${zipped.id}`)).body.task.done ? true : undefined), { what: 'the zip task', timeoutMs: 60_000 });
    const result = (await call(`${base}/api/task?id=${zipped.id}`)).body.task.result;
    assert.equal(result.execute_output, 'zipped');
    assert.equal(result.accepted, true);
  });

  it('accepts JSON bodies and batches of up to 100 tasks', async () => {
    const json = await call(`${base}/api/task`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ user: 5, compile_timeout: 0, execute_timeout: 5, execute_command: 'echo json', execute_standard: 'json' }),
    });
    assert.equal(json.body.result, 0, json.body.message);
    const batch = await call(`${base}/api/task/batch`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        tasks: [
          { user: 6, compile_timeout: 0, execute_timeout: 5, execute_command: 'echo 1' },
          { user: 6, compile_timeout: -1, execute_timeout: 5, execute_command: 'echo 2' },
          'not a task',
          { user: 6, compile_timeout: 0, execute_timeout: 5, execute_command: 'echo 3', compile_source_name: '../evil', compile_source_str: 'x' },
        ],
      }),
    });
    assert.equal(batch.body.result, 0);
    assert.equal(batch.status, 200);
    assert.deepEqual(batch.body.results.map((r: { result: number }) => r.result), [0, 4, 4, 4]);
    assert.deepEqual(batch.body.results[1].errors, [{ field: 'compile_timeout', message: batch.body.results[1].message }]);
    assert.match(batch.body.results[0].id, /^[a-f0-9]{24}$/);
    assert.equal(batch.body.results[1].id, null);
    assert.match(batch.body.results[1].message, /compile_timeout/);
    const listed = await call(`${base}/api/task/list?user=6`);
    assert.equal(listed.body.tasks.length, 1);

    const tooMany = await call(`${base}/api/task/batch`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(Array.from({ length: 101 }, () => ({ user: 6, compile_timeout: 0, execute_timeout: 5, execute_command: 'true' }))),
    });
    assert.equal(tooMany.status, 400);
    assert.equal(tooMany.body.result, 4);
    assert.match(tooMany.body.message, /at most 100/);
    assert.deepEqual(tooMany.body.results, []);
    const allBad = await call(`${base}/api/task/batch`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify([{ user: -1 }, 'x']) });
    assert.equal(allBad.status, 400);
    assert.equal(allBad.body.result, 4);
    assert.deepEqual(allBad.body.results.map((r: { errors: { field: string }[] }) => r.errors.map((e) => e.field)), [['user', 'compile_timeout', 'execute_timeout', 'execute_command'], ['tasks[1]']]);
  });

  it('answers every bad input with a result code and a message, never HTTP 500', async () => {
    const json = (body: unknown) => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body) });
    const cases: [string, RequestInit, number, Record<string, unknown>][] = [
      ['/api/task?id=zzz', {}, 200, { result: 4, task: null }],
      ['/api/task', {}, 200, { result: 4, task: null }],
      ['/api/task?id=0123456789abcdef01234567', {}, 200, { result: 2, task: null }],
      ['/api/task?id=0123456789abcdef01234567&file=execute_output', {}, 404, { result: 2 }],
      [`/api/task?id=${pendingId}&file=passwd`, {}, 200, { result: 4 }],
      [`/api/task?id=${pendingId}&no_truncate=yes`, {}, 200, { result: 4, task: null }],
      ['/api/task?id=ABCDEF0123456789ABCDEF01', { method: 'DELETE' }, 200, { result: 4 }],
      ['/api/task', { method: 'DELETE' }, 200, { result: 4 }],
      ['/api/task/list?old_to_new=yes', {}, 200, { result: 4, pages: 0, tasks: [] }],
      ['/api/task/list?user=-1', {}, 200, { result: 4, pages: 0, tasks: [] }],
      ['/api/task/list?start_time=yesterday', {}, 200, { result: 4, pages: 0, tasks: [] }],
      ['/api/task/list?limit=1e3', {}, 200, { result: 4, pages: 0, tasks: [] }],
      ['/api/task/list?id=123', {}, 200, { result: 4, pages: 0, tasks: [] }],
      ['/api/task', json('{"user": 1,'), 400, { result: 4, id: null }],
      ['/api/task', json([1, 2]), 400, { result: 4, id: null }],
      ['/api/task', json({ user: '1', compile_timeout: 0, execute_timeout: 0, execute_command: 'x', extra: 1 }), 400, { result: 4, id: null }],
      ['/api/task', json({ user: 1, compile_timeout: 0, execute_timeout: 0, execute_command: 'x', compile_memory: 0 }), 400, { result: 4, id: null }],
      ['/api/task', json({ user: 1, compile_timeout: 0, execute_timeout: 0, execute_command: 'x', network: 'maybe' }), 400, { result: 4, id: null }],
      ['/api/task', json({ user: 1, compile_timeout: 0, execute_timeout: 0, execute_command: 'x', execute_data: 'bm90IGEgemlw' }), 400, { result: 4, id: null }],
      ['/api/task', { method: 'POST', body: form({ compile_source_name: '/etc/passwd', compile_source_str: 'x' }) }, 400, { result: 4, id: null }],
      ['/api/task', { method: 'POST', body: form({ execute_data_name: 'a/../../b', execute_data_str: 'x' }) }, 400, { result: 4, id: null }],
      ['/api/task', { method: 'POST', body: form({ execute_data_name: 'x\u0000y', execute_data_str: 'x' }) }, 400, { result: 4, id: null }],
      ['/api/task', { method: 'POST', body: form({ user: '2147483648' }) }, 400, { result: 4, id: null }],
      ['/api/task', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'hello' }, 400, { result: 4, id: null }],
      ['/api/task', { method: 'POST', headers: { 'content-type': 'application/xml' }, body: '<task/>' }, 415, { result: 4, id: null }],
      ['/api/task/batch', { method: 'POST', body: form({}) }, 400, { result: 4, results: [] }],
      ['/api/nothing', {}, 404, { result: 2 }],
    ];
    for (const [path, init, status, expected] of cases) {
      const answer = await call(`${base}${path}`, init);
      assert.equal(answer.status, status, `${init.method ?? 'GET'} ${path}: HTTP ${answer.status} ${JSON.stringify(answer.body)}`);
      assert.match(answer.type, /application\/json/, path);
      for (const [key, value] of Object.entries(expected)) assert.deepEqual(answer.body[key], value, `${path}: ${key} in ${JSON.stringify(answer.body)}`);
      assert.equal(typeof answer.body.message, 'string', `${path} has a message`);
    }
  });

  it('refuses oversize bodies and tasks with TOO_LARGE (JSON)', async () => {
    // Over the body limit (24 MiB): 413 with a JSON answer, sent before the body is read.
    // The gateway reads the rest of the body before answering, so fetch (a browser too) sees the answer.
    const huge = await call(`${base}/api/task`, { method: 'POST', body: form({ execute_input: 'x'.repeat(25 * 1024 * 1024) }) });
    assert.equal(huge.status, 413);
    assert.equal(huge.body.result, 3);
    assert.equal(huge.body.id, null);
    assert.match(huge.body.message, /too large/);
    const hugeFile = new FormData();
    for (const [k, v] of Object.entries({ user: '0', compile_command: '', compile_timeout: '1', execute_input: '', execute_command: 'true', execute_timeout: '1', execute_standard: '' })) hugeFile.set(k, v);
    hugeFile.set('compile_source', new Blob([new Uint8Array(25 * 1024 * 1024)]), 'huge.zip');
    const hugeUpload = await call(`${base}/api/task`, { method: 'POST', body: hugeFile });
    assert.equal(hugeUpload.status, 413);
    assert.equal(hugeUpload.body.result, 3);
    // Under the body limit but over the task size limit once packed (random data does not compress).
    const random = new Uint8Array(16 * 1024 * 1024);
    for (let i = 0; i < random.length; i += 65536) crypto.getRandomValues(random.subarray(i, i + 65536));
    const body = new FormData();
    for (const [k, v] of Object.entries({ user: '0', compile_command: '', compile_timeout: '1', execute_input: '', execute_command: 'true', execute_timeout: '1', execute_standard: '' })) body.set(k, v);
    body.set('execute_data', new Blob([zipSync({ 'big.bin': [random, { level: 0 }] })]), 'big.zip');
    const large = await call(`${base}/api/task`, { method: 'POST', body });
    assert.equal(large.body.result, 3);
    assert.equal(large.body.id, null);
    assert.match(large.body.message, /limit/);
  });

  it('health and metrics', async () => {
    const health = await call(`${base}/api/health`);
    assert.equal(health.status, 200);
    assert.equal(health.body.healthy, true);
    const metrics = await call(`${base}/metrics`);
    assert.equal(metrics.status, 200);
    assert.match(metrics.body, /kv2_gateway_http_requests_total\{method="GET",route="\/api\/task",code="200"\} \d+/);
    assert.match(metrics.body, /kv2_gateway_rpc_duration_seconds_count\{method="add",outcome="ok"\} \d+/);
    assert.match(metrics.body, /kv2_gateway_tasks_submitted_total\{outcome="invalid_input"\} \d+/);
    assert.match(metrics.body, /kv2_cluster_judicators 1/);
    assert.match(metrics.body, /kv2_cluster_executors 1/);
    assert.match(metrics.body, /kv2_gateway_process_cpu_seconds_total/);
  });

  it('a gateway that finds no judicator answers JSON errors (result 1), and health says why', async () => {
    const lonely = await startGatewayWithoutJudicators(judicator);
    const list = await call(`${lonely}/api/task/list`);
    assert.equal(list.status, 503);
    assert.equal(list.body.result, 1);
    assert.deepEqual(list.body.tasks, []);
    assert.match(list.body.message, /failed on every judicator tried .*ECONNREFUSED/);
    const add = await call(`${lonely}/api/task`, { method: 'POST', body: form({}) });
    assert.equal(add.body.result, 1);
    assert.equal(add.body.id, null);
    const judicators = await call(`${lonely}/api/judicators`);
    assert.equal(judicators.body.result, 1);
    assert.deepEqual(judicators.body.judicators, []);
    const health = await call(`${lonely}/api/health`);
    assert.equal(health.status, 503);
    assert.equal(health.body.healthy, false);
    assert.match(health.body.reason, /failed on every judicator tried/);
  });
});

/**
 * A gateway of the cluster (its certificate issued from the cluster's CA beforehand) pointed at a port
 * where no judicator answers; health is not waited for.
 */
async function startGatewayWithoutJudicators(cluster: ClusterNode): Promise<string> {
  const { freePort } = await import('../helpers/ports');
  const { makeTempDir } = await import('../helpers/temp');
  const { startNode } = await import('../helpers/kv2');
  const { issueIdentity } = await import('../helpers/cluster');
  const [port, nobody] = [await freePort(), await freePort()];
  const dir = makeTempDir(hooks, 'kv2-gw-lonely-');
  await issueIdentity(hooks, cluster, 'gateway', 'lonely', { dir: `${dir}/gateway/data/pki` });
  const node = startNode(hooks, dir, ['gateway', '--server-name', 'lonely', '--server-port', String(port), '--server-host', '127.0.0.1', '--join', `127.0.0.1:${nobody}`, '--boot-check-interval', '0.5']);
  const url = `http://127.0.0.1:${port}`;
  await waitFor(
    async () => {
      if (node.exited) throw new Error(`gateway exited:\n${node.tail()}`);
      return (await fetch(`${url}/api/test`, { signal: AbortSignal.timeout(2_000) })).ok;
    },
    { what: 'the lonely gateway', timeoutMs: 60_000 },
  );
  return url;
}
