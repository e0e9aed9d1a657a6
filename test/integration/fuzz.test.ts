// Hostile input, bounded (issue 14): every HTTP route of the gateway and every RPC method of a judicator,
// fed malformed methods, fields, multipart bodies, encoded paths, ids, zips and oversized bodies, from a
// seeded generator (the same requests every run; KV2_FUZZ_SEED picks others). Prints the status
// histogram; fails on any 5xx, on a "the gateway failed" answer (a body the gateway could not tell was
// bad), on a crash and on a module restart (the supervisors' boot logs count the starts).
// The RPC is fuzzed over its HTTPS with no certificate and with an executor's, a gateway's and an
// operator's certificate of the cluster: refusals (401, 403) are answers, a 5xx is a failure.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { after, before, beforeEach, describe, it } from 'node:test';
import { zipSync } from 'fflate';
import type { NodeFiles } from '../../src/pki/identity-files';
import { issueIdentity } from '../helpers/cluster';
import { startSystem, type System } from '../helpers/system';
import { fileHooks } from '../helpers/file-hooks';

const hooks = fileHooks();
/** Requests per generator family; the whole file stays within a few minutes on a loaded 2-core machine. */
const ROUNDS = Number(process.env.KV2_FUZZ_ROUNDS ?? 80);
const SEED = Number(process.env.KV2_FUZZ_SEED ?? 14);
const MiB = 1024 * 1024;

/** A small deterministic generator (mulberry32): a failure can be replayed with its seed. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rand = random(SEED);
const pick = <T>(items: readonly T[]): T => items[Math.floor(rand() * items.length)]!;
const int = (max: number) => Math.floor(rand() * max);

const VALUES: readonly unknown[] = [
  '', ' ', '0', '-1', '1', '2147483647', '2147483648', '1e3', '0x10', 'NaN', 'null', 'true', 'yes', '\u0000', '%00', '../../etc/passwd',
  '/etc/passwd', 'a'.repeat(5000), '\u202e\ud83d\ude00', '<script>alert(1)</script>', "' OR 1=1 --", '{"$gt":""}', '__proto__', 'constructor',
  0, -1, 1.5, 2 ** 53, null, true, false, [], [1, 2], {}, { $gt: '' }, { __proto__: { polluted: 1 } },
];
const IDS = ['', 'zzz', '0123456789abcdef01234567', 'ABCDEF0123456789ABCDEF01', '0123456789abcdef0123456', '0123456789abcdef012345678', '%00', '../', 'a'.repeat(2000)];
const FIELDS = [
  'user', 'compile_command', 'compile_timeout', 'execute_input', 'execute_command', 'execute_timeout', 'execute_standard', 'compile_source',
  'execute_data', 'compile_source_name', 'compile_source_str', 'execute_data_name', 'execute_data_str', 'network', 'execute_memory',
  'compile_cpu_time', 'execute_output', '__proto__', 'constructor', 'extra',
];

function randomFields(): Record<string, unknown> {
  const fields: Record<string, unknown> = {};
  for (let i = int(12); i >= 0; i--) fields[pick(FIELDS)] = pick(VALUES);
  return fields;
}

function randomQuery(): string {
  const names = ['id', 'file', 'no_truncate', 'wait', 'user', 'limit', 'page', 'old_to_new', 'start_time', 'end_time', 'id[]', 'id[$gt]'];
  const parts: string[] = [];
  for (let i = int(5); i >= 0; i--) {
    const name = pick(names);
    const value = name === 'id' ? pick(IDS) : String(pick(VALUES));
    parts.push(`${encodeURIComponent(name)}=${rand() < 0.2 ? value : encodeURIComponent(value)}`);
  }
  return parts.join('&');
}

/** Zips a task might carry, hostile ones among them. */
function hostileZip(): Uint8Array {
  switch (int(6)) {
    case 0:
      return zipSync({ '../escape.txt': new TextEncoder().encode('x') });
    case 1:
      return zipSync({ '/abs/path': new TextEncoder().encode('x') });
    case 2:
      // A bomb: 64 MiB of zeros, a few KiB packed.
      return zipSync({ 'zeros.bin': [new Uint8Array(64 * MiB), { level: 9 }] });
    case 3:
      return zipSync(Object.fromEntries(Array.from({ length: 3000 }, (_, i) => [`f${i}`, new Uint8Array(1)])));
    case 4: {
      const bytes = zipSync({ 'a.txt': new TextEncoder().encode('hello') });
      const at = int(bytes.length);
      bytes[at] = (bytes[at] ?? 0) ^ 0xff;
      return bytes;
    }
    default:
      return Uint8Array.from({ length: 1 + int(4096) }, () => int(256));
  }
}

/** A multipart body, broken in one of several ways. */
function hostileMultipart(): { body: Buffer; contentType: string } {
  const boundary = `----kv2fuzz${int(1e9)}`;
  const part = (name: string, value: Buffer | string, filename?: string) =>
    Buffer.concat([
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${name}"${filename ? `; filename="${filename}"` : ''}\r\n\r\n`),
      Buffer.isBuffer(value) ? value : Buffer.from(value),
      Buffer.from('\r\n'),
    ]);
  const end = Buffer.from(`--${boundary}--\r\n`);
  const good = () => Object.entries({ user: '1', compile_command: '', compile_timeout: '1', execute_input: '', execute_command: 'true', execute_timeout: '1', execute_standard: '' }).map(([k, v]) => part(k, v));
  const contentType = `multipart/form-data; boundary=${boundary}`;
  switch (int(10)) {
    case 0: // truncated in the middle of a part
      return { body: Buffer.concat(good()).subarray(0, 90), contentType };
    case 1: // no closing boundary
      return { body: Buffer.concat(good()), contentType };
    case 2: // a boundary the body does not use
      return { body: Buffer.concat([...good(), end]), contentType: 'multipart/form-data; boundary=nope' };
    case 3: // no boundary at all
      return { body: Buffer.concat([...good(), end]), contentType: 'multipart/form-data' };
    case 4: // garbage headers
      return { body: Buffer.from(`--${boundary}\r\nContent-Disposition: ${'x'.repeat(100)}\r\n\0\0\r\n\r\n--${boundary}--\r\n`), contentType };
    case 5: // too many fields
      return { body: Buffer.concat([...Array.from({ length: 300 }, (_, i) => part(`f${i}`, 'v')), end]), contentType };
    case 6: // too many files
      return { body: Buffer.concat([...good(), ...Array.from({ length: 40 }, (_, i) => part('execute_data', 'x', `f${i}.zip`)), end]), contentType };
    case 7: // many large fields: over the whole-request cap, under the per-field one
      return { body: Buffer.concat([...Array.from({ length: 30 }, (_, i) => part(`big${i}`, Buffer.alloc(MiB, 97))), end]), contentType };
    case 8: // a hostile zip as a file
      return { body: Buffer.concat([...good(), part(pick(['compile_source', 'execute_data']), Buffer.from(hostileZip()), 'x.zip'), end]), contentType };
    default: // random field values
      return { body: Buffer.concat([...Object.entries(randomFields()).map(([k, v]) => part(k, typeof v === 'string' ? v : JSON.stringify(v) ?? '')), end]), contentType };
  }
}

interface Outcome {
  status: number;
  body: string;
}

const histogram = new Map<string, number>();
const failures: string[] = [];

function record(what: string, outcome: Outcome): void {
  const key = `${outcome.status}`;
  histogram.set(key, (histogram.get(key) ?? 0) + 1);
  if (outcome.status >= 500 || outcome.status === 0) failures.push(`${what}: HTTP ${outcome.status} ${outcome.body.slice(0, 200)}`);
  // A body the gateway could not tell was bad answers "the gateway failed" (result 1, error-level log).
  else if (/the gateway failed/.test(outcome.body)) failures.push(`${what}: ${outcome.body.slice(0, 200)}`);
}

async function send(url: string, init: RequestInit, what: string): Promise<void> {
  let outcome: Outcome;
  try {
    const response = await fetch(url, { ...init, redirect: 'manual', signal: AbortSignal.timeout(60_000) });
    outcome = { status: response.status, body: init.method === 'HEAD' ? '' : await response.text() };
  } catch (error) {
    // A refused oversize upload may end with a reset once the answer is sent: the answer is what counts.
    const cause = (error as { cause?: { code?: string } }).cause?.code;
    if (cause === 'UND_ERR_SOCKET' || cause === 'EPIPE' || cause === 'ECONNRESET') outcome = { status: 413, body: '(connection closed after the refusal)' };
    else outcome = { status: 0, body: String(error) };
  }
  record(what, outcome);
}

/** TLS options presenting `files`' certificate to a judicator (none: no certificate at all). */
function rpcTls(files: NodeFiles | undefined): tls.ConnectionOptions {
  return { ...(files ? { ca: files.caPem, cert: files.certPem, key: files.keyPem } : { rejectUnauthorized: false }), checkServerIdentity: () => undefined };
}

/** One request to a judicator's RPC (HTTPS) as the holder of `files`, recorded like send's. */
function sendRpc(port: number, pathname: string, init: { method: string; contentType: string; body?: string }, files: NodeFiles | undefined, what: string): Promise<void> {
  return new Promise((resolve) => {
    const request = https.request(
      { host: '127.0.0.1', port, path: pathname, method: init.method, agent: false, headers: { 'content-type': init.contentType }, timeout: 60_000, ...rpcTls(files) },
      (response) => {
        let body = '';
        response.on('data', (chunk: Buffer) => (body += chunk.toString()));
        response.on('end', () => {
          record(what, { status: response.statusCode ?? 0, body });
          resolve();
        });
      },
    );
    request.on('error', (error: NodeJS.ErrnoException) => {
      // A refused oversize upload may end with a reset once the answer is sent: the answer is what counts.
      if (error.code === 'EPIPE' || error.code === 'ECONNRESET') record(what, { status: 413, body: '(connection closed after the refusal)' });
      else record(what, { status: 0, body: String(error) });
      resolve();
    });
    request.end(init.body);
  });
}

function raw(port: number, request: string, what: string, files?: NodeFiles | 'no certificate'): Promise<void> {
  return new Promise((resolve) => {
    const socket = files ? tls.connect({ host: '127.0.0.1', port, ...rpcTls(files === 'no certificate' ? undefined : files) }) : net.connect(port, '127.0.0.1');
    let data = '';
    socket.setTimeout(20_000, () => socket.destroy());
    socket.on('data', (chunk) => (data += chunk.toString('latin1')));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      const status = Number(/^HTTP\/1\.[01] (\d+)/.exec(data)?.[1] ?? 0);
      // The server may close a request it cannot parse without an answer: that is no 5xx.
      record(what, { status: status || 400, body: data.slice(data.indexOf('\r\n\r\n') + 4) });
      resolve();
    });
    socket.write(request);
  });
}

/** How many times each module of a node was started: its supervisor says so in its boot log. */
function moduleStarts(dir: string): number {
  let count = 0;
  for (const role of ['judicator', 'executor', 'gateway']) {
    const log = path.join(dir, role, 'log', 'boot', 'boot.log');
    if (fs.existsSync(log)) count += (fs.readFileSync(log, 'utf8').match(/is down; started it/g) ?? []).length;
  }
  return count;
}

describe('hostile input', () => {
  let system: System;
  let base: string;
  let taskId: string;
  let startsBefore: Map<string, number>;

  before(async () => {
    system = await startSystem(hooks, { judicators: 1, executors: 1, slots: 2 });
    base = system.gateways[0]!.url;
    const added = await fetch(`${base}/api/task`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ user: 1, compile_timeout: 1, execute_timeout: 1, execute_command: 'echo fuzz' }),
    });
    taskId = ((await added.json()) as { id: string }).id;
    const dirs = [...system.judicators, ...system.executors, ...system.gateways].map((n) => n.dir);
    startsBefore = new Map(dirs.map((dir) => [dir, moduleStarts(dir)]));
  });

  // Each test answers for its own requests.
  beforeEach(() => {
    failures.length = 0;
  });

  after(() => {
    const sorted = [...histogram.entries()].sort(([a], [b]) => Number(a) - Number(b));
    console.log(`fuzz (seed ${SEED}, ${[...histogram.values()].reduce((a, b) => a + b, 0)} requests) status histogram: ${sorted.map(([s, n]) => `${s}: ${n}`).join(', ')}`);
  });

  it('every gateway route answers malformed queries, paths and methods with a 4xx or its JSON result, never a 5xx', async () => {
    const routes = ['/api/test', '/api/executors', '/api/judicators', '/api/health', '/api/languages', '/api/whoami', '/api/task', '/api/task/list', '/api/task/batch', '/metrics', '/', '/search', '/add', '/get', '/executors', '/judicators', '/res/app.js', '/res/..%2f..%2fetc%2fpasswd', '/favicon.ico'];
    const methods = ['GET', 'POST', 'DELETE', 'PUT', 'PATCH', 'OPTIONS', 'HEAD'];
    for (let i = 0; i < ROUNDS * 6; i++) {
      const route = pick(routes);
      const method = pick(methods);
      const query = randomQuery().replace(/0123456789abcdef01234567/, taskId);
      const body = method === 'GET' || method === 'HEAD' ? undefined : pick([undefined, '{', '[]', 'null', JSON.stringify(randomFields()), 'a=1&a=2&user[]=3', '\u0000\u0001']);
      await send(`${base}${route}?${query}`, { method, body, headers: body ? { 'content-type': pick(['application/json', 'application/x-www-form-urlencoded', 'text/plain', 'application/xml', 'multipart/form-data']) } : {} }, `${method} ${route}?${query}`);
    }
    assert.deepEqual(failures, []);
  });

  it('submissions: JSON, forms and batches of wrong types, hostile zips, deep and huge bodies', async () => {
    const json = (body: string) => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body });
    for (let i = 0; i < ROUNDS * 2; i++) {
      await send(`${base}/api/task`, json(JSON.stringify(randomFields())), 'POST /api/task random JSON');
      await send(`${base}/api/task`, { method: 'POST', body: new URLSearchParams(Object.entries(randomFields()).map(([k, v]) => [k, String(v)])) }, 'POST /api/task random form');
      await send(`${base}/api/task/batch`, json(JSON.stringify(Array.from({ length: 1 + int(5) }, () => (rand() < 0.2 ? pick(VALUES) : randomFields())))), 'POST /api/task/batch random');
    }
    for (let i = 0; i < ROUNDS / 2; i++) {
      const zip = Buffer.from(hostileZip()).toString('base64');
      await send(`${base}/api/task`, json(JSON.stringify({ user: 1, compile_timeout: 1, execute_timeout: 1, execute_command: 'true', [pick(['compile_source', 'execute_data'])]: zip })), 'POST /api/task hostile zip');
    }
    await send(`${base}/api/task`, json(`${'['.repeat(100_000)}${']'.repeat(100_000)}`), 'deeply nested JSON');
    await send(`${base}/api/task`, json(`{"user":1,"execute_input":"${'x'.repeat(25 * MiB)}"}`), 'JSON over the body limit');
    await send(`${base}/api/task/batch`, json(JSON.stringify(Array.from({ length: 5000 }, () => ({ user: 1 })))), 'batch over its count');
    assert.deepEqual(failures, []);
  });

  it('multipart bodies: broken, truncated, too many parts, and too large as a whole are 4xx, not "the gateway failed"', async () => {
    for (let i = 0; i < ROUNDS * 2; i++) {
      const { body, contentType } = hostileMultipart();
      await send(`${base}/api/task`, { method: 'POST', headers: { 'content-type': contentType }, body: new Uint8Array(body) }, `multipart ${contentType.slice(0, 40)} ${body.length} bytes`);
    }
    // 40 fields of 1 MiB: each under the per-field limit, the whole over the request's: refused at once.
    const boundary = 'kv2wholecap';
    const parts = Array.from({ length: 40 }, (_, i) => `--${boundary}\r\nContent-Disposition: form-data; name="f${i}"\r\n\r\n${'y'.repeat(MiB)}\r\n`).join('');
    const response = await fetch(`${base}/api/task`, { method: 'POST', headers: { 'content-type': `multipart/form-data; boundary=${boundary}` }, body: `${parts}--${boundary}--\r\n` });
    assert.equal(response.status, 413);
    assert.equal(((await response.json()) as { result: number }).result, 3);
    // The same without a Content-Length (chunked, 160 MiB offered): cut off at the cap as it streams, so
    // the gateway's memory stays bounded (195 fields of 23 MiB once ran it out of heap).
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent >= 160) {
          controller.enqueue(new TextEncoder().encode(`--${boundary}--\r\n`));
          controller.close();
          return;
        }
        controller.enqueue(new TextEncoder().encode(`--${boundary}\r\nContent-Disposition: form-data; name="s${sent++}"\r\n\r\n${'z'.repeat(MiB)}\r\n`));
      },
    });
    const streamed = await fetch(`${base}/api/task`, { method: 'POST', headers: { 'content-type': `multipart/form-data; boundary=${boundary}` }, body: stream, duplex: 'half' } as RequestInit).catch(() => undefined);
    if (streamed) assert.equal(streamed.status, 413);
    const pid = Number(fs.readFileSync(path.join(system.gateways[0]!.dir, 'gateway', 'data', 'server.pid'), 'utf8'));
    const peakKb = Number(/VmHWM:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
    assert.ok(peakKb < 512 * 1024, `the gateway's peak memory stayed bounded (${Math.round(peakKb / 1024)} MiB)`);
    assert.deepEqual(failures, []);
  });

  it('request lines and headers: encoded and absolute-form paths, bad versions, huge headers', async () => {
    const port = system.gateways[0]!.port;
    const lines = [
      'GET /%61pi/task/list HTTP/1.1', `GET http://127.0.0.1:${port}/api/task/list HTTP/1.1`, 'GET /api/task?id=%zz HTTP/1.1', 'GET /%2e%2e/%2e%2e/etc/passwd HTTP/1.1',
      'GET /res/%2e%2e%2fconfig HTTP/1.1', 'GET * HTTP/1.1', 'GET /api/task HTTP/9.9', 'BREW /api/task HTTP/1.1', 'GET /api/task\u0000 HTTP/1.1', `GET /${'a'.repeat(70_000)} HTTP/1.1`,
      'GET /api/task?id=0123456789abcdef01234567&id=0123456789abcdef01234567 HTTP/1.1', 'GET //api//task//list HTTP/1.1',
    ];
    for (const line of lines) await raw(port, `${line}\r\nHost: x\r\nConnection: close\r\n\r\n`, line.slice(0, 80));
    await raw(port, `GET /api/test HTTP/1.1\r\nHost: x\r\nX-Big: ${'h'.repeat(64 * 1024)}\r\nConnection: close\r\n\r\n`, 'header over the limit');
    await raw(port, 'POST /api/task HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\nConnection: close\r\n\r\n0\r\n\r\n', 'chunked and content-length');
    await raw(port, 'POST /api/task HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\n', 'bad chunk');
    assert.deepEqual(failures, []);
  });

  it('every RPC method of a judicator, with no certificate and with each role\'s: malformed methods, fields and bodies', async () => {
    const methods = ['ping', 'add', 'cancel', 'search', 'get', 'wait', 'report', 'executors', 'events', 'judicators', 'join_token_create', 'revoke', 'nothing', '..%2fping', '%00', 'constructor', '__proto__', 'a'.repeat(300)];
    const judicator = system.judicators[0]!;
    // Callers: nobody (no certificate), and certificates of this cluster's CA for each role that is not the judicators' own.
    const callers: (NodeFiles | undefined)[] = [
      undefined,
      (await issueIdentity(hooks, judicator, 'executor', 'fuzz-executor')).files,
      (await issueIdentity(hooks, judicator, 'gateway', 'fuzz-gateway')).files,
      (await issueIdentity(hooks, judicator, 'admin', 'fuzz-admin')).files,
    ];
    const port = judicator.ports.rpc;
    for (let i = 0; i < ROUNDS * 4; i++) {
      const method = pick(methods);
      const body = pick([
        '{',
        'null',
        '[]',
        JSON.stringify(randomFields()),
        JSON.stringify({ id: pick(IDS), executor: pick(['e1', 'fuzz', '', '../x', 'a'.repeat(200)]), key: pick(['', 'x']), vacant: pick(VALUES), complete: pick([[], [{}], 'x', [{ id: taskId }]]), executing: pick([[], {}, [{ id: taskId, status: 99 }]]), wait_ms: pick(VALUES), timeout_ms: pick(VALUES) }),
        JSON.stringify({ task: { user: pick(VALUES), compile: pick([{}, null, { source: '!!', command: '', timeout: 1 }]), execute: pick(VALUES) }, id: pick(IDS) }),
      ]);
      const verb = pick(['POST', 'POST', 'POST', 'GET', 'PUT']);
      const caller = pick(callers);
      const contentType = pick(['application/json', 'text/plain', 'application/x-www-form-urlencoded']);
      await sendRpc(port, `/rpc/${method}`, { method: verb, contentType, body: verb === 'GET' ? undefined : body }, caller, `RPC ${verb} ${method} as ${caller?.identity.role ?? 'nobody'}`);
    }
    for (const caller of callers) {
      await sendRpc(port, '/rpc/add', { method: 'POST', contentType: 'application/json', body: `{"task":"${'x'.repeat(40 * MiB)}"}` }, caller, `RPC body over the limit as ${caller?.identity.role ?? 'nobody'}`);
      await raw(port, 'POST /rpc/%61dd HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}', 'RPC encoded method', caller ?? 'no certificate');
    }
    // Plain HTTP to the HTTPS port is no request at all.
    await raw(port, 'POST /rpc/ping HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}', 'RPC over plain HTTP');
    assert.deepEqual(failures, []);
  });

  it('nothing crashed or restarted, and the cluster still runs tasks', async () => {
    for (const node of [...system.judicators, ...system.executors, ...system.gateways]) {
      assert.equal(node.node.exited, false, `${node.dir} is still running`);
      assert.equal(moduleStarts(node.dir), startsBefore.get(node.dir), `no module of ${node.dir} was restarted:\n${node.node.tail()}`);
    }
    const added = await fetch(`${base}/api/task`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user: 1, compile_timeout: 1, execute_timeout: 5, execute_command: 'echo after' }) });
    const { id } = (await added.json()) as { id: string };
    const done = await fetch(`${base}/api/task?id=${id}&wait=30`);
    const { task } = (await done.json()) as { task: { done: boolean; status: number } };
    assert.equal(task.done, true);
  });
});
