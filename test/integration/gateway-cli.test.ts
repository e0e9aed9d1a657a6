// The command-line client (`kv2 task ...`, `kv2 status`) and API tokens, against the built kv2: a real
// judicator, executor and gateways. Exit codes tell the task's outcome; a gateway with tokens refuses
// calls without one (401, JSON) and the CLI passes --token.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { startJudicators, type ClusterNode } from '../helpers/cluster';
import { runKv2 } from '../helpers/kv2';
import { joinFlags, startExecutor, startGateway, type GatewayNode } from '../helpers/system';
import { makeTempDir } from '../helpers/temp';
import { waitFor } from '../helpers/wait';
import { fileHooks } from '../helpers/file-hooks';

const hooks = fileHooks();

let gateway: GatewayNode;
let secured: GatewayNode;
let work: string;

before(async () => {
  const judicator = (await startJudicators(hooks, 1))[0]!;
  startExecutor(hooks, 'e1', judicator, ['--main-task-vacant', '3']);
  work = makeTempDir(hooks, 'kv2-cli-');
  const tokensFile = path.join(work, 'tokens');
  fs.writeFileSync(tokensFile, '# API tokens\nfrom-file\n\n  spaced  # comment\n0123\n');
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
  it('submit --wait runs the C++ example and exits 0; the output is printed', () => {
    const source = path.join(work, 'main.cpp');
    fs.writeFileSync(source, '#include <iostream>\n#include <string>\nint main() { std::string n; std::cin >> n; std::cout << "Hello, " << n << "!" << std::endl; }\n');
    const run = kv2(['task', 'submit', '--source', source, '--compile', 'g++ -O2 -o main main.cpp', '--input', 'World', '--execute', './main', '--standard', 'Hello, World!', '--wait']);
    assert.equal(run.status, 0, run.stderr + run.stdout);
    assert.match(run.stdout, /Success \(accepted\)/);
    assert.match(run.stdout, /Hello, World!/);
    assert.match(run.stderr, /submitted task [a-f0-9]{24}/);
  });

  it('exit codes tell the outcome: compile failed 3, run failed 4, wrong answer 5, cancelled 6, wait timeout 8', () => {
    assert.equal(kv2(['task', 'submit', '--compile', 'exit 1', '--execute', 'true', '--wait']).status, 3);
    assert.equal(kv2(['task', 'submit', '--execute', 'exit 3', '--wait']).status, 4);
    assert.equal(kv2(['task', 'submit', '--execute', 'echo a', '--standard', 'b', '--wait']).status, 5);
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
    assert.match(listed.stdout, /^ID\s+USER\s+ADDED\s+STATUS/);
    assert.match(listed.stdout, new RegExp(`${task.id}\\s+77\\s+\\S+\\s+Success`));
    const json = JSON.parse(kv2(['task', 'list', '--user', '77', '--json']).stdout);
    assert.deepEqual(json.tasks.map((t: { id: string }) => t.id), [task.id]);
    const got = kv2(['task', 'get', task.id]);
    assert.match(got.stdout, /status\s+Success/);
  });

  it('status shows the leader, the executor and tasks by status', () => {
    const status = kv2(['status']);
    assert.equal(status.status, 0, status.stderr);
    assert.match(status.stdout, /Judicators \(1\)\n.*\nj1\s+127\.0\.0\.1:\d+\s+leader/);
    assert.match(status.stdout, /Executors \(1\)\n.*\ne1\s/);
    assert.match(status.stdout, /Success\s+\d+/);
    const json = JSON.parse(kv2(['status', '--json']).stdout);
    assert.equal(json.judicators[0].leader, true);
    assert.equal(json.executors[0].id, 'e1');
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
