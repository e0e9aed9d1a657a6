// The command-line client (`kv2 task ...`, `kv2 status`) and API tokens, against the built kv2: a real
// judicator, executor and gateways. Verdicts come first (tables, counts); exit codes tell the verdict;
// `submit --wait` / `wait --follow` show the output as the task prints it; a gateway with tokens refuses
// calls without one (401, JSON) and the CLI passes --token. `kv2 standalone` says where its web UI is.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { startJudicators, type ClusterNode } from '../helpers/cluster';
import { judicatorPortFlags, judicatorPorts, kv2Binary, runKv2, startNode } from '../helpers/kv2';
import { freePort } from '../helpers/ports';
import { joinFlags, startExecutor, startGateway, type GatewayNode } from '../helpers/system';
import { makeTaskSharedDir, makeTempDir } from '../helpers/temp';
import { waitFor } from '../helpers/wait';
import { fileHooks } from '../helpers/file-hooks';

const hooks = fileHooks();

let gateway: GatewayNode;
let secured: GatewayNode;
let work: string;
let tokensFile: string;
const TOKENS_FILE = '# API tokens\nfrom-file\n\n  spaced  # comment\n0123\nboss admin\nuser-7 7\nuser-8 8\n';

before(async () => {
  const judicator = (await startJudicators(hooks, 1))[0]!;
  startExecutor(hooks, 'e1', judicator, ['--main-task-vacant', '3']);
  work = makeTempDir(hooks, 'kv2-cli-');
  tokensFile = path.join(work, 'tokens');
  fs.writeFileSync(tokensFile, TOKENS_FILE);
  [gateway, secured] = await Promise.all([
    startGateway(hooks, judicator),
    // The secured gateway's /api/health needs a token too, so it is waited for with one.
    startSecuredGateway(judicator, tokensFile),
  ]);
});

async function startSecuredGateway(judicator: ClusterNode, tokensFile: string): Promise<GatewayNode> {
  const { freePort } = await import('../helpers/ports');
  const { startNode } = await import('../helpers/kv2');
  const dir = makeTempDir(hooks, 'kv2-gw-secured-');
  const port = await freePort();
  const args = ['gateway', '--server-port', String(port), '--server-host', '127.0.0.1', ...joinFlags(judicator, dir), '--server-token', 'alpha', '--server-token', 'beta', '--server-tokens-file', tokensFile, '--boot-check-interval', '0.5'];
  const node = startNode(hooks, dir, args);
  const url = `http://127.0.0.1:${port}`;
  await waitFor(
    async () => {
      if (node.exited) throw new Error(`gateway exited:\n${node.tail()}`);
      return (await fetch(`${url}/api/health`, { headers: { authorization: 'Bearer alpha' }, signal: AbortSignal.timeout(2_000) })).ok;
    },
    { what: 'the secured gateway', timeoutMs: 60_000 },
  );
  return { dir, port, url, args, node };
}

function kv2(args: string[], env: NodeJS.ProcessEnv = {}) {
  return runKv2(args, { cwd: work, env: { KV2_GATEWAY: gateway.url, KV2_API_TOKEN: '', ...env }, timeoutMs: 120_000 });
}

describe('kv2 task and kv2 status', () => {
  it('submit --wait runs the C++ example and exits 0; the verdict comes first, the output is printed', () => {
    const source = path.join(work, 'main.cpp');
    fs.writeFileSync(source, '#include <iostream>\n#include <string>\nint main() { std::string n; std::cin >> n; std::cout << "Hello, " << n << "!" << std::endl; }\n');
    const run = kv2(['task', 'submit', '--source', source, '--compile', 'g++ -O2 -o main main.cpp', '--input', 'World', '--execute', './main', '--standard', 'Hello, World!', '--wait']);
    assert.equal(run.status, 0, run.stderr + run.stdout);
    assert.match(run.stdout, /^verdict\s+Accepted \(AC\)\nstatus\s+Success\n/m);
    assert.match(run.stdout, /^time\s+\d+ ms CPU, \d+ ms wall, [\d.]+ (KiB|MiB) peak$/m);
    assert.match(run.stdout, /Hello, World!/);
    assert.match(run.stderr, /submitted task [a-f0-9]{24}/);
  });

  it('exit codes tell the verdict: compilation error 3, runtime error 4, wrong answer 5, time limit 9, cancelled 6, wait timeout 8', () => {
    assert.equal(kv2(['task', 'submit', '--compile', 'exit 1', '--execute', 'true', '--wait']).status, 3);
    const crashed = kv2(['task', 'submit', '--execute', 'exit 42', '--wait']);
    assert.equal(crashed.status, 4);
    assert.match(crashed.stdout, /^verdict\s+Runtime error \(RE\)$/m);
    // The tests table: exit code, signal, time and memory per test.
    assert.match(crashed.stdout, /^#\s+TEST\s+VERDICT\s+TIME\s+WALL\s+MEMORY\s+EXIT\s+SIGNAL\s+MESSAGE$/m);
    assert.match(crashed.stdout, /^1\s+1\s+RE\s+\d+ ms\s+\d+ ms\s+\S+ \S+\s+42\s+-/m);
    assert.equal(kv2(['task', 'submit', '--execute', 'echo a', '--standard', 'b', '--wait']).status, 5);
    const slow = kv2(['task', 'submit', '--execute', 'sleep 5', '--execute-timeout', '1', '--wait']);
    assert.equal(slow.status, 9, slow.stdout);
    assert.match(slow.stdout, /^verdict\s+Time limit exceeded \(TLE\)$/m);
    const long = kv2(['task', 'submit', '--execute', 'sleep 60', '--execute-timeout', '100']);
    assert.equal(long.status, 0, long.stderr);
    const id = long.stdout.trim();
    assert.match(id, /^[a-f0-9]{24}$/);
    assert.equal(kv2(['task', 'wait', id, '--wait-timeout', '0.5']).status, 8);
    const cancel = kv2(['task', 'cancel', id]);
    assert.equal(cancel.status, 0, cancel.stderr);
    assert.match(cancel.stdout, new RegExp(`cancelled ${id}`));
    assert.equal(kv2(['task', 'wait', id]).status, 6);
    // Cancelling it again fails: it is done.
    assert.equal(kv2(['task', 'cancel', id]).status, 1);
  });

  it('wait --follow shows the output as the task prints it, then its verdict', async () => {
    // The task prints its first line, then waits for a marker the test makes only once the CLI has shown
    // that line: the line must have come live, whatever the load (at most 30 s, then it goes on anyway).
    const shared = makeTaskSharedDir(hooks, 'kv2-follow-');
    const marker = path.join(shared, 'seen');
    const script = `echo line 1; n=0; while [ ! -e ${marker} ] && [ $n -lt 300 ]; do sleep 0.1; n=$((n+1)); done; [ -e ${marker} ] || echo never saw the marker >&2; for i in 2 3 4 5 6 7 8; do echo line $i; done; echo oops >&2`;
    const submitted = kv2(['task', 'submit', '--execute', script]);
    const id = submitted.stdout.trim();
    const child = spawn(kv2Binary(), ['task', 'wait', '--follow', id], { cwd: work, env: { ...process.env, KV2_GATEWAY: gateway.url, KV2_API_TOKEN: '' } });
    hooks.after(() => void child.kill('SIGKILL'));
    let stdout = '';
    let stderr = '';
    let sawFirstLine = false;
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      if (!sawFirstLine && stdout.includes('line 1\n')) {
        sawFirstLine = true;
        fs.writeFileSync(marker, '');
      }
    });
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    assert.equal(code, 0, stderr);
    assert.ok(sawFirstLine, 'the first line came');
    assert.doesNotMatch(stderr, /never saw the marker/, 'the first line came while the task was still running');
    // Every line once, in order (what came live, then the rest from the result), then the summary.
    const lines = stdout.split('\n').filter((line) => line.startsWith('line '));
    assert.deepEqual(lines, [1, 2, 3, 4, 5, 6, 7, 8].map((i) => `line ${i}`));
    assert.match(stdout, /line 8\n(.|\n)*^verdict\s+OK \(OK\)$/m);
    assert.match(stderr, /oops/);
    assert.match(stderr, /task [a-f0-9]{24}: (Pending|Compiling|Running|OK)/);
  });

  it('zips directories, gets and lists tasks as tables or JSON, and prints raw files', () => {
    const dir = path.join(work, 'src');
    fs.mkdirSync(path.join(dir, 'lib'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'a.txt'), 'A');
    fs.writeFileSync(path.join(dir, 'lib', 'b.txt'), 'B');
    const submitted = kv2(['task', 'submit', '--user', '77', '--source', dir, '--data', path.join(dir, 'a.txt'), '--execute', 'cat a.txt lib/b.txt data/a.txt', '--wait', '--json']);
    assert.equal(submitted.status, 0, submitted.stderr);
    const task = JSON.parse(submitted.stdout);
    assert.equal(task.result.execute_output, 'ABA');
    const zip = runKv2(['task', 'get', task.id, '--file', 'compile_source'], { cwd: work, env: { KV2_GATEWAY: gateway.url }, timeoutMs: 30_000 });
    assert.equal(zip.status, 0);
    assert.ok(zip.stdout.startsWith('PK'), 'a zip on stdout');
    const output = kv2(['task', 'get', task.id, '--file', 'execute_output']);
    assert.equal(output.stdout, 'ABA');
    const listed = kv2(['task', 'list', '--user', '77']);
    assert.equal(listed.status, 0);
    assert.match(listed.stdout, /^VERDICT\s+STATUS\s+ID\s+USER\s+ADDED\s+EXECUTOR/);
    assert.match(listed.stdout, new RegExp(`^OK\\s+Success\\s+${task.id}\\s+77\\s`, 'm'));
    const json = JSON.parse(kv2(['task', 'list', '--user', '77', '--json']).stdout);
    assert.deepEqual(json.tasks.map((t: { id: string }) => t.id), [task.id]);
    assert.equal(json.tasks[0].verdict, 'ok');
    const got = kv2(['task', 'get', task.id]);
    assert.match(got.stdout, /^verdict\s+OK \(OK\)\nstatus\s+Success/);
  });

  it('status shows the leader, the executor (host, slots, start) and tasks by verdict', () => {
    const status = kv2(['status']);
    assert.equal(status.status, 0, status.stderr);
    assert.match(status.stdout, /Judicators \(1\)\n.*\nj1\s+127\.0\.0\.1:\d+\s+leader/);
    assert.match(status.stdout, /Executors \(1\)\n.*STARTED.*SANDBOX\ne1\s+\S+\s+3\s+\d+\s+\d{4}-.*\s(bwrap|NONE)/);
    assert.match(status.stdout, /by verdict\)\nVERDICT\s+COUNT\n/);
    for (const verdict of ['Accepted', 'Wrong answer', 'Runtime error', 'Time limit exceeded', 'Compilation error']) {
      assert.match(status.stdout, new RegExp(`^${verdict}\\s+\\d+$`, 'm'), verdict);
    }
    const json = JSON.parse(kv2(['status', '--json']).stdout);
    assert.equal(json.judicators[0].leader, true);
    assert.equal(json.executors[0].id, 'e1');
    assert.ok(json.tasks.by_verdict.accepted >= 1);
    assert.ok(json.tasks.by_status.Success >= 1);
    // Its sandbox as it registered it: what it is, how it is made, the network, what enforces each limit.
    assert.ok(['bwrap', 'none'].includes(json.executors[0].sandbox.kind));
    assert.match(json.executors[0].sandbox.network, /loopback/);
    assert.ok(json.executors[0].sandbox.limits.memory);
  });

  it('bad usage exits 2, an unreachable gateway 1, each with one line', () => {
    const badId = kv2(['task', 'get', 'nope']);
    assert.equal(badId.status, 2);
    assert.match(badId.stderr, /^kv2: id must be a task id/);
    assert.equal(kv2(['task', 'frobnicate']).status, 2);
    assert.equal(kv2(['task', 'submit']).status, 2);
    assert.equal(kv2(['task', 'submit', '--execute', 'true', '--compile-timeout', '-1']).status, 2);
    assert.equal(kv2(['task', 'list', '--bogus-flag']).status, 2);
    const down = kv2(['status', '--gateway', 'http://127.0.0.1:1']);
    assert.equal(down.status, 1);
    assert.match(down.stderr, /^kv2: cannot reach the gateway at http:\/\/127\.0\.0\.1:1/);
    assert.equal(down.stderr.trim().split('\n').length, 1);
  });
});

describe('kv2 standalone', () => {
  it('prints where its web UI is, one line on stdout, and the UI answers there', async () => {
    const dir = makeTempDir(hooks, 'kv2-standalone-');
    const [ports, uiPort] = [await judicatorPorts(), await freePort()];
    const node = startNode(hooks, dir, ['standalone', ...judicatorPortFlags(ports), '--server-port', String(uiPort), '--boot-check-interval', '0.5']);
    const line = await waitFor(
      () => {
        if (node.exited) throw new Error(`standalone exited:\n${node.tail()}`);
        return /^kv2 web UI: (http:\/\/\S+)/m.exec(node.log)?.[1];
      },
      { what: 'the web UI line', timeoutMs: 30_000 },
    );
    assert.equal(line, `http://localhost:${uiPort}/`);
    assert.match(node.log, /^kv2 web UI: http:\/\/localhost:\d+\/ \(and on every address of this machine\)$/m);
    await waitFor(async () => (await fetch(line, { signal: AbortSignal.timeout(2_000) }).catch(() => undefined))?.ok, { what: 'the web UI to answer', timeoutMs: 60_000 });
    const page = await (await fetch(line)).text();
    assert.match(page, /<title>kv2<\/title>/);
  });
});

describe('API tokens', () => {
  it('every /api call needs a token from the flags or the tokens file; 401 JSON otherwise', async () => {
    for (const [header, status] of [
      [undefined, 401],
      ['Bearer wrong', 401],
      ['Basic alpha', 401],
      ['Bearer alpha', 200],
      ['Bearer beta', 200],
      ['Bearer 0123', 200],
      ['Bearer 123', 401],
      ['bearer from-file', 200],
      ['Bearer spaced', 200],
      ['Bearer # API tokens', 401],
    ] as const) {
      for (const route of ['/api/test', '/api/task/list', '/api/executors', '/api/judicators', '/api/health']) {
        const response = await fetch(`${secured.url}${route}`, { headers: header ? { authorization: header } : {} });
        assert.equal(response.status, status, `${route} with ${header}`);
        if (status === 401) {
          const body = (await response.json()) as { result: number; message: string };
          assert.equal(body.result, 5);
          assert.match(body.message, /token/);
        } else await response.arrayBuffer();
      }
    }
    // Adding needs it too, and a refused add adds nothing.
    const refused = await fetch(`${secured.url}/api/task`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user: 91, compile_timeout: 0, execute_timeout: 1, execute_command: 'true' }) });
    assert.equal(refused.status, 401);
    const list = await fetch(`${secured.url}/api/task/list?user=91`, { headers: { authorization: 'Bearer alpha' } });
    assert.deepEqual(((await list.json()) as { tasks: unknown[] }).tasks, []);
    // The pages and /metrics stay open (the UI asks for the token itself).
    assert.equal((await fetch(`${secured.url}/search`)).status, 200);
    assert.equal((await fetch(`${secured.url}/res/app.js`)).status, 200);
    assert.equal((await fetch(`${secured.url}/metrics`)).status, 200);
  });

  it('the CLI sends --token or KV2_API_TOKEN; without it, it says what to do', () => {
    const without = kv2(['status', '--gateway', secured.url]);
    assert.equal(without.status, 1);
    assert.match(without.stderr, /--token or KV2_API_TOKEN/);
    // A token that looks like a number stays text ("0123", not 123).
    assert.equal(kv2(['status', '--gateway', secured.url, '--token', '0123']).status, 0);
    assert.equal(kv2(['status', '--gateway', secured.url, '--token', '123']).status, 1);
    assert.equal(kv2(['status', '--gateway', secured.url], { KV2_API_TOKEN: 'from-file' }).status, 0);
  });
});

/** One raw HTTP/1.1 exchange: fetch would normalize the request line these tests are about. */
function rawRequest(port: number, requestLine: string, headers: string[] = []): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let data = '';
    socket.setTimeout(10_000, () => socket.destroy(new Error('no answer')));
    socket.on('data', (chunk) => (data += chunk.toString('latin1')));
    socket.on('error', reject);
    socket.on('close', () => {
      const status = Number(/^HTTP\/1\.1 (\d+)/.exec(data)?.[1] ?? 0);
      resolve({ status, body: data.slice(data.indexOf('\r\n\r\n') + 4) });
    });
    socket.write(`${requestLine}\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n${headers.map((h) => `${h}\r\n`).join('')}\r\n`);
  });
}

interface Called {
  status: number;
  body: any;
}

async function as(token: string, method: string, route: string, body?: unknown): Promise<Called> {
  const response = await fetch(`${secured.url}${route}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await response.text();
  return { status: response.status, body: /json/.test(response.headers.get('content-type') ?? '') ? JSON.parse(text) : text };
}

describe('tokens that own tasks', () => {
  it('the token check follows the routed path: encoded and absolute-form request lines need a token too', async () => {
    const port = secured.port;
    for (const line of [
      'GET /%61pi/task/list HTTP/1.1',
      'GET /ap%69/task/list HTTP/1.1',
      'GET /%61%70%69/executors HTTP/1.1',
      `GET http://127.0.0.1:${port}/api/task/list HTTP/1.1`,
      `GET http://127.0.0.1:${port}/%61pi/task/list HTTP/1.1`,
      'GET //api/task/list HTTP/1.1',
      'GET /api/task/list/ HTTP/1.1',
      'GET /api//task/list HTTP/1.1',
      'GET /API/task/list HTTP/1.1',
      'POST /%61pi/task HTTP/1.1',
    ]) {
      const answer = await rawRequest(port, line);
      assert.ok(answer.status === 401 || answer.status === 404 || answer.status === 400, `${line}: HTTP ${answer.status} ${answer.body.slice(0, 200)}`);
      assert.doesNotMatch(answer.body, /"tasks"\s*:\s*\[\s*\{/, line);
      if (answer.status === 401) assert.match(answer.body, /"result":5/, line);
    }
    // With a token, the same forms are routed as usual.
    const routed = await rawRequest(port, `GET http://127.0.0.1:${port}/%61pi/task/list HTTP/1.1`, ['Authorization: Bearer boss']);
    assert.equal(routed.status, 200, routed.body);
  });

  it("a user token submits as its user, sees only its user's tasks, and gets 403 for another's", async () => {
    const task = { compile_timeout: 0, execute_timeout: 5, execute_command: 'echo owned' };
    const own = await as('user-7', 'POST', '/api/task', task);
    assert.equal(own.status, 200, JSON.stringify(own.body));
    assert.equal(own.body.result, 0);
    const id7 = own.body.id as string;
    const spoofed = await as('user-7', 'POST', '/api/task', { ...task, user: 8 });
    assert.equal(spoofed.status, 403);
    assert.deepEqual([spoofed.body.result, spoofed.body.id], [5, null]);
    assert.match(spoofed.body.message, /user 7/);
    assert.equal((await as('user-7', 'POST', '/api/task', { ...task, user: '7' })).body.result, 0);
    const id8 = (await as('user-8', 'POST', '/api/task', task)).body.id as string;
    const byAdmin = (await as('boss', 'POST', '/api/task', { ...task, user: 8 })).body.id as string;

    // Read, download, wait, cancel: 403 for someone else's task, the API's JSON error each time.
    for (const [method, route] of [
      ['GET', `/api/task?id=${id8}`],
      ['GET', `/api/task?id=${id8}&file=execute_output`],
      ['GET', `/api/task?id=${id8}&wait=5`],
      ['DELETE', `/api/task?id=${id8}`],
      ['GET', '/api/task/list?user=8'],
    ] as const) {
      const answer = await as('user-7', method, route);
      assert.equal(answer.status, 403, `${method} ${route}: ${JSON.stringify(answer.body)}`);
      assert.equal(answer.body.result, 5);
      assert.match(answer.body.message, /user 7/);
    }
    assert.equal((await as('user-7', 'GET', `/api/task?id=${id7}`)).body.task.user, 7);
    const waited = await as('user-7', 'GET', `/api/task?id=${id7}&wait=30`);
    assert.equal(waited.body.task.done, true);
    assert.equal((await as('user-7', 'GET', `/api/task?id=${id7}&file=execute_output`)).body, 'owned\n');

    // Lists are cut to the caller's tasks; an admin sees everyone's.
    const list7 = await as('user-7', 'GET', '/api/task/list?limit=100');
    assert.ok(list7.body.tasks.length >= 2);
    assert.ok(list7.body.tasks.every((t: { user: number }) => t.user === 7), JSON.stringify(list7.body.tasks));
    const ids = (await as('boss', 'GET', '/api/task/list?limit=100')).body.tasks.map((t: { id: string }) => t.id);
    for (const id of [id7, id8, byAdmin]) assert.ok(ids.includes(id), id);

    // A batch: each task checked on its own.
    const batch = await as('user-8', 'POST', '/api/task/batch', [task, { ...task, user: 7 }, { ...task, user: 8 }]);
    assert.equal(batch.status, 200);
    assert.deepEqual(batch.body.results.map((r: { result: number }) => r.result), [0, 5, 0]);

    // The owner cancels its own; an admin may cancel anyone's.
    const slow = (await as('user-8', 'POST', '/api/task', { ...task, execute_command: 'sleep 30' })).body.id as string;
    assert.equal((await as('user-7', 'DELETE', `/api/task?id=${slow}`)).status, 403);
    assert.equal((await as('boss', 'DELETE', `/api/task?id=${slow}`)).body.result, 0);

    assert.deepEqual((await as('user-8', 'GET', '/api/whoami')).body, { result: 0, admin: false, user: 8, tokens_required: true });
    assert.equal((await as('alpha', 'GET', '/api/whoami')).body.admin, true);
  });

  it('the tokens file is read again when it changes and on SIGHUP; a broken file keeps the tokens in force', async () => {
    const status = async (token: string) => (await as(token, 'GET', '/api/task/list')).status;
    assert.equal(await status('late-comer'), 401);
    fs.writeFileSync(tokensFile, `${TOKENS_FILE}late-comer 9\n`);
    await waitFor(async () => (await status('late-comer')) === 200, { what: 'the new token', timeoutMs: 15_000 });
    // Broken: the tokens in force stay, and the log says why.
    fs.writeFileSync(tokensFile, `${TOKENS_FILE}late-comer 9\nbroken line here\n`);
    const log = path.join(secured.dir, 'gateway', 'log', 'server', 'server.log');
    await waitFor(() => fs.readFileSync(log, 'utf8').includes('cannot be used'), { what: 'the error about the broken file', timeoutMs: 15_000 });
    assert.match(fs.readFileSync(log, 'utf8'), /line \d+: expected/);
    assert.equal(await status('late-comer'), 200);
    assert.equal(await status('user-7'), 200);
    // A rename over the file (an editor's save) while the watch may miss it: SIGHUP to the supervisor.
    const next = `${tokensFile}.new`;
    fs.writeFileSync(next, TOKENS_FILE);
    fs.renameSync(next, tokensFile);
    secured.node.process.kill('SIGHUP');
    await waitFor(async () => (await status('late-comer')) === 401, { what: 'the removed token refused', timeoutMs: 15_000 });
    assert.equal(await status('user-7'), 200);
    assert.equal(secured.node.exited, false, 'SIGHUP does not stop the gateway');
  });

  it('no token is in any process command line', () => {
    const pids = fs.readdirSync('/proc').filter((name) => /^\d+$/.test(name));
    let seen = 0;
    for (const pid of pids) {
      let cmdline: string;
      try {
        cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      } catch {
        continue;
      }
      if (!cmdline.includes(secured.dir)) continue;
      seen++;
      assert.doesNotMatch(cmdline, /alpha|beta/, `pid ${pid}: ${cmdline.replace(/\0/g, ' ')}`);
    }
    assert.ok(seen >= 1, 'the secured gateway\'s processes were found');
  });
});
