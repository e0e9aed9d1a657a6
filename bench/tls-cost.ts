// `npx tsx bench/tls-cost.ts` (not part of `npm test`): what mutual TLS with the cluster PKI (src/pki)
// costs kv2, as ratios against plain text in the same run:
// 1. a kept-alive HTTP/1.1 JSON call as the judicator RPC makes them (node:http vs node:https with client
//    certificates, kept-alive agents like src/rpc/client.ts), one at a time and 16 at once: calls per
//    second, latency, and CPU per call of the client and of the server (its own process);
// 2. the same with a new connection per call (what a TLS handshake costs, ECDSA P-256);
// 3. etcd put and get, one at a time and 32 at once, against a plain etcd and one on mutual TLS.
// Each pair runs TLS_COST_ROUNDS times alternately; the figures are medians. Asserts nothing.
import { fork, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import { createEtcdClient } from '../src/etcd/client';
import { etcdClientTls } from '../src/pki/etcd-tls';
import { readNodeFiles, writeCrl } from '../src/pki/identity-files';
import { initClusterIdentity } from '../src/pki/init-identity';
import { LiveIdentity } from '../src/pki/live-identity';
import { EtcdServer } from '../test/helpers/etcd';
import { hooks, onCleanup, runWithCleanup, tempDir } from './lib/cleanup';
import { forEachLimited } from './lib/clock';
import { fmt, percentile, spread } from './lib/stats';

function setting(name: string, fallback: number): number {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name}=${process.env[name]} is not a positive number`);
  return Math.round(value);
}

const SETTINGS = {
  /** Calls per measurement on a kept-alive connection. */
  calls: setting('TLS_COST_CALLS', 4000),
  /** Calls per measurement with a new connection each. */
  connections: setting('TLS_COST_CONNECTIONS', 400),
  /** etcd operations per measurement. */
  etcdOps: setting('TLS_COST_ETCD_OPS', 500),
  /** Rounds of every pair (plain, TLS); figures are the medians. */
  rounds: setting('TLS_COST_ROUNDS', 3),
  /** Longest the whole run may take, seconds. */
  maxSeconds: setting('TLS_COST_MAX_SECONDS', 900),
};

/** A body the size of a small RPC (an executor's report with one status change). */
const BODY = JSON.stringify({ name: 'executor-1', vacant: 3, executing: [{ id: '0123456789abcdef01234567', status: 3 }], complete: [] });

interface Measure {
  perSecond: number;
  p50ms: number;
  p99ms: number;
  clientCpuUs: number;
  serverCpuUs: number;
}

interface Server {
  child: ChildProcess;
  port: number;
  cpu(): Promise<number>;
}

async function startServer(kind: 'http' | 'https', identityDir: string): Promise<Server> {
  const child = fork(path.join(import.meta.dirname, 'lib/json-rpc-server.ts'), [], {
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, TLS_COST_KIND: kind, TLS_COST_IDENTITY: identityDir },
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
  });
  onCleanup(`stop the ${kind} server`, () => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      const match = /ready (\d+)/.exec(chunk.toString());
      if (match) resolve(Number(match[1]));
    });
    child.once('exit', (code) => reject(new Error(`the ${kind} server exited (${code})`)));
  });
  const cpu = () =>
    new Promise<number>((resolve) => {
      child.once('message', (usage) => resolve((usage as NodeJS.CpuUsage).user + (usage as NodeJS.CpuUsage).system));
      child.send('cpu');
    });
  return { child, port, cpu };
}

function call(kind: 'http' | 'https', port: number, agent: http.Agent | false, tls: https.RequestOptions): Promise<void> {
  const request = kind === 'https' ? https.request : http.request;
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path: '/rpc/report', method: 'POST', agent, ...(kind === 'https' ? tls : {}), headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(BODY) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          if (res.statusCode !== 200) return reject(new Error(`HTTP ${res.statusCode}`));
          JSON.parse(Buffer.concat(chunks).toString('utf8'));
          resolve();
        });
      },
    );
    req.on('error', reject);
    req.end(BODY);
  });
}

async function measureCalls(kind: 'http' | 'https', server: Server, tls: https.RequestOptions, count: number, concurrency: number, keepAlive: boolean): Promise<Measure> {
  const agent = keepAlive ? new (kind === 'https' ? https.Agent : http.Agent)({ keepAlive: true, maxSockets: 64, keepAliveMsecs: 10_000 }) : false;
  try {
    await forEachLimited(Math.min(200, count), concurrency, () => call(kind, server.port, agent, tls));
    const latencies: number[] = [];
    const serverBefore = await server.cpu();
    const clientBefore = process.cpuUsage();
    const started = performance.now();
    await forEachLimited(count, concurrency, async () => {
      const t = performance.now();
      await call(kind, server.port, agent, tls);
      latencies.push(performance.now() - t);
    });
    const seconds = (performance.now() - started) / 1000;
    const client = process.cpuUsage(clientBefore);
    const serverCpu = (await server.cpu()) - serverBefore;
    return {
      perSecond: count / seconds,
      p50ms: percentile(latencies, 50),
      p99ms: percentile(latencies, 99),
      clientCpuUs: (client.user + client.system) / count,
      serverCpuUs: serverCpu / count,
    };
  } finally {
    if (agent) agent.destroy();
  }
}

async function measureEtcd(client: ReturnType<typeof createEtcdClient>, prefix: string, count: number): Promise<Record<string, Measure>> {
  const value = 'x'.repeat(200);
  const one = async (what: 'put' | 'get', concurrency: number): Promise<Measure> => {
    const latencies: number[] = [];
    const before = process.cpuUsage();
    const started = performance.now();
    await forEachLimited(count, concurrency, async (i) => {
      const t = performance.now();
      if (what === 'put') await client.put(`${prefix}${i % 100}`).value(value);
      else await client.get(`${prefix}${i % 100}`).string();
      latencies.push(performance.now() - t);
    });
    const cpu = process.cpuUsage(before);
    return { perSecond: count / ((performance.now() - started) / 1000), p50ms: percentile(latencies, 50), p99ms: percentile(latencies, 99), clientCpuUs: (cpu.user + cpu.system) / count, serverCpuUs: Number.NaN };
  };
  await one('put', 8);
  return { 'put, 1 at a time': await one('put', 1), 'get, 1 at a time': await one('get', 1), 'put, 32 at once': await one('put', 32), 'get, 32 at once': await one('get', 32) };
}

type Pair = { plain: Measure[]; tls: Measure[] };

function median(measures: Measure[], key: keyof Measure): number {
  return spread(measures.map((m) => m[key])).median;
}

function printPair(title: string, pair: Pair, withServer: boolean): void {
  const row = (label: string, key: keyof Measure, lowerIsBetter: boolean) => {
    const plain = median(pair.plain, key);
    const tls = median(pair.tls, key);
    const ratio = tls / plain;
    console.log(`  ${label.padEnd(26)} ${fmt(plain).padStart(9)} ${fmt(tls).padStart(9)}   x${fmt(ratio)}${lowerIsBetter ? '' : ' (of plain)'}`);
  };
  console.log(`\n${title}\n  ${''.padEnd(26)} ${'plain'.padStart(9)} ${'TLS'.padStart(9)}   TLS/plain`);
  row('calls per second', 'perSecond', false);
  row('latency p50, ms', 'p50ms', true);
  row('latency p99, ms', 'p99ms', true);
  row('client CPU per call, us', 'clientCpuUs', true);
  if (withServer) row('server CPU per call, us', 'serverCpuUs', true);
}

async function main(): Promise<number> {
  console.log(`tls-cost: ${JSON.stringify(SETTINGS)}`);
  const dir = path.join(tempDir('kv2-tls-cost-'), 'judicator');
  const { ca } = await initClusterIdentity(dir, { name: 'bench' });
  writeCrl(dir, await ca.signCrl([]));
  const identity = LiveIdentity.load(dir);
  const tls = { ...identity.clientOptions() };

  const servers = { http: await startServer('http', dir), https: await startServer('https', dir) };
  const cases: [string, number, number, boolean][] = [
    ['RPC call on a kept-alive connection, 1 at a time', SETTINGS.calls, 1, true],
    ['RPC call on kept-alive connections, 16 at once', SETTINGS.calls, 16, true],
    ['RPC call on a new connection each, 1 at a time', SETTINGS.connections, 1, false],
  ];
  for (const [title, count, concurrency, keepAlive] of cases) {
    const pair: Pair = { plain: [], tls: [] };
    for (let round = 0; round < SETTINGS.rounds; round++) {
      // Alternate which goes first, so neither always runs on a warmer or a busier machine.
      const order = round % 2 ? (['https', 'http'] as const) : (['http', 'https'] as const);
      for (const kind of order) (kind === 'http' ? pair.plain : pair.tls).push(await measureCalls(kind, servers[kind], tls, count, concurrency, keepAlive));
    }
    printPair(title, pair, true);
  }

  const plainEtcd = await EtcdServer.start(hooks);
  const tlsEtcd = await EtcdServer.start(hooks, { tls: { dir, crl: true } });
  const plainClient = createEtcdClient([plainEtcd.endpoint]);
  const tlsClient = createEtcdClient([tlsEtcd.endpoint], { tls: etcdClientTls(readNodeFiles(dir)!) });
  onCleanup('close the etcd clients', () => (plainClient.close(), tlsClient.close()));
  const etcdPairs: Record<string, Pair> = {};
  for (let round = 0; round < SETTINGS.rounds; round++) {
    const first = round % 2 ? tlsClient : plainClient;
    const second = first === plainClient ? tlsClient : plainClient;
    const a = await measureEtcd(first, 'bench/', SETTINGS.etcdOps);
    const b = await measureEtcd(second, 'bench/', SETTINGS.etcdOps);
    const [plain, secure] = first === plainClient ? [a, b] : [b, a];
    for (const key of Object.keys(plain)) {
      etcdPairs[key] ??= { plain: [], tls: [] };
      etcdPairs[key].plain.push(plain[key]!);
      etcdPairs[key].tls.push(secure[key]!);
    }
  }
  for (const [title, pair] of Object.entries(etcdPairs)) printPair(`etcd ${title} (200-byte values; put waits for etcd's fsync)`, pair, false);
  return 0;
}

runWithCleanup(main, SETTINGS.maxSeconds);
