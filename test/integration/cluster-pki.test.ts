// A cluster that is safe on a network, end to end through the built kv2: 3 judicators, 2 executors and a
// gateway, each its own `kv2 <role>` process on its own loopback address (127.0.0.2 ...), joining with
// join tokens made by `kv2 join-token create` (judicators: a judicator token; the others: an
// executor/gateway one, given in KV2_JOIN_TOKEN). Then: a task runs; etcd refuses a plain etcdctl and an
// executor's certificate; the RPC refuses a call without a cluster certificate, an executor's add, a
// gateway's report, an executor reporting under another's name; a revoked executor is refused; and every
// certificate (60 s lives here) is renewed while the processes keep running, past the end of the first ones.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { TLSSocket } from 'node:tls';
import tls from 'node:tls';
import { before, describe, it } from 'node:test';
import { readNodeFiles, type NodeFiles } from '../../src/pki/identity-files';
import { identityDir, judicatorArgs, rpcCall, type ClusterNode } from '../helpers/cluster';
import { judicatorPorts, readPid, runKv2, startNode, waitForJudicator, type JudicatorPorts } from '../helpers/kv2';
import { freePort } from '../helpers/ports';
import { FAST_NODE_FLAGS, GatewayClient, type ExecutorNode } from '../helpers/system';
import { makeTempDir } from '../helpers/temp';
import { waitFor } from '../helpers/wait';
import { fileHooks } from '../helpers/file-hooks';

const hooks = fileHooks();
const etcdctl = process.env.KV2_ETCDCTL_BINARY || '/usr/bin/etcdctl';
/** Every certificate of this cluster lives 60 s (the shortest kv2 allows): renewals happen while the test runs. */
const CERT_LIFETIME_S = 60;

/** Flags that put a judicator on its own loopback address `host`. */
function judicatorOn(host: string, name: string, ports: JudicatorPorts, extra: string[] = []): string[] {
  return judicatorArgs(name, ports, [
    // Given after judicatorArgs' 127.0.0.1: the last one wins.
    '--etcd-listen-address', host,
    '--etcd-advertise-address', host,
    '--main-listen-address', host,
    '--main-advertise-address', host,
    '--cert-lifetime', String(CERT_LIFETIME_S),
    '--executor-ttl', '5',
    ...extra,
  ]);
}

/** `kv2 join-token create` on the founder's machine (its work dir): the token it prints. */
function createToken(founder: ClusterNode, roles: string): string {
  const run = runKv2(['join-token', 'create', '--work-dir', founder.dir, '--role', roles, '--ttl', '1h']);
  assert.equal(run.status, 0, run.stderr);
  assert.match(run.stderr, new RegExp(`join token [a-z2-7]{6}: for ${roles.replace(',', ', ')}, valid until`));
  const token = run.stdout.trim();
  assert.match(token, /^kv2j1\.[a-z2-7]{6}\.[a-z2-7]{26}\.[0-9a-f]{64}\.[a-z2-7]{6}$/);
  return token;
}

/** The serial of the certificate the server at host:port presents. */
function serverSerial(host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host, port, rejectUnauthorized: false }, () => {
      const serial = (socket as TLSSocket).getPeerCertificate().serialNumber;
      socket.end();
      resolve(serial.toLowerCase().replace(/^0+/, ''));
    });
    socket.on('error', reject);
  });
}

function etcdctlGet(endpoint: string, flags: string[]): { status: number | null; output: string } {
  const run = spawnSync(etcdctl, ['--endpoints', endpoint, '--dial-timeout', '1s', '--command-timeout', '2s', ...flags, 'get', '--prefix', 'kv2/', '--keys-only'], {
    encoding: 'utf8',
    env: { ...process.env, ETCDCTL_API: '3' },
    timeout: 20_000,
  });
  return { status: run.status, output: `${run.stdout}${run.stderr}` };
}

function node(dir: string, role: 'executor' | 'gateway'): NodeFiles {
  return readNodeFiles(path.join(dir, role, 'data', 'pki'))!;
}

describe('a 3-judicator, 2-executor, 1-gateway cluster on 127.0.0.x, joined with tokens', () => {
  const judicators: ClusterNode[] = [];
  const executors: ExecutorNode[] = [];
  let gatewayUrl: string;
  let gatewayDir: string;
  let api: GatewayClient;

  before(async () => {
    const hosts = ['127.0.0.2', '127.0.0.3', '127.0.0.4'];
    for (const [i, host] of hosts.entries()) {
      const ports = await judicatorPorts();
      const name = `j${i + 1}`;
      const dir = makeTempDir(hooks, `kv2-pki-${name}-`);
      judicators.push({ name, dir, ports, clientUrl: `https://${host}:${ports.client}`, rpcAddress: `${host}:${ports.rpc}`, args: [], node: undefined as never });
    }
    // The first founds the cluster (its CA, its certificate) and prints its first join token.
    const founder = judicators[0]!;
    founder.args = judicatorOn(hosts[0]!, founder.name, founder.ports);
    founder.node = startNode(hooks, founder.dir, founder.args);
    await waitForJudicator(founder.node, founder.ports.rpc, 90_000, hosts[0]);
    await waitFor(() => /founded a new cluster\. Its join token/.test(founder.node.log), { what: 'the founder to print its join token', timeoutMs: 30_000 });

    // The others join through its RPC with a judicator token, given in the environment.
    const judicatorToken = createToken(founder, 'judicator');
    for (const [i, j] of judicators.slice(1).entries()) {
      j.args = judicatorOn(hosts[i + 1]!, j.name, j.ports, ['--join', founder.rpcAddress]);
      j.node = startNode(hooks, j.dir, j.args, { env: { KV2_JOIN_TOKEN: judicatorToken } });
    }
    await Promise.all(judicators.slice(1).map((j, i) => waitForJudicator(j.node, j.ports.rpc, 120_000, hosts[i + 1])));

    // Executors and the gateway join with a narrower token, each through another judicator.
    const memberToken = createToken(founder, 'executor,gateway');
    for (const [i, name] of ['e1', 'e2'].entries()) {
      const dir = makeTempDir(hooks, `kv2-pki-${name}-`);
      const args = ['executor', '--main-name', name, '--join', judicators[i + 1]!.rpcAddress, '--main-task-sandbox', 'none', ...FAST_NODE_FLAGS];
      executors.push({ name, dir, args, node: startNode(hooks, dir, args, { env: { KV2_JOIN_TOKEN: memberToken } }) });
    }
    gatewayDir = makeTempDir(hooks, 'kv2-pki-gw-');
    const port = await freePort();
    const gateway = startNode(hooks, gatewayDir, ['gateway', '--server-port', String(port), '--server-host', '127.0.0.5', '--join', judicators[2]!.rpcAddress, ...FAST_NODE_FLAGS], {
      env: { KV2_JOIN_TOKEN: memberToken },
    });
    gatewayUrl = `http://127.0.0.5:${port}`;
    api = new GatewayClient(gatewayUrl);
    await waitFor(
      async () => {
        for (const n of [gateway, ...executors.map((e) => e.node)]) if (n.exited) throw new Error(`a node exited:\n${n.tail()}`);
        const listed = (await (await fetch(`${gatewayUrl}/api/executors`, { signal: AbortSignal.timeout(2_000) })).json()) as { executors: { id: string; alive?: boolean }[] };
        return ['e1', 'e2'].every((name) => listed.executors.some((e) => e.id === name && e.alive));
      },
      { what: 'both executors listed alive by the gateway', timeoutMs: 90_000 },
    );
  });

  it('runs a task, and lists the judicators and executors as the original API did', async () => {
    const answer = await api.submit({ user: 1, execute_command: 'echo secured', execute_timeout: 10 });
    assert.equal(answer.result, 0, answer.message);
    const task = await api.waitDone(answer.id!);
    assert.equal(task.status, 5);
    assert.equal(task.result?.execute_output, 'secured\n');
    const listed = (await (await fetch(`${gatewayUrl}/api/judicators`)).json()) as { judicators: { name: string; address: string; leader: boolean }[] };
    assert.deepEqual(listed.judicators.map((j) => [j.name, j.address]).sort(), judicators.map((j) => [`/judicator/service/${j.name}`, j.rpcAddress]).sort());
    assert.equal(listed.judicators.filter((j) => j.leader).length, 1);
    assert.deepEqual(Object.keys(listed.judicators[0]!).sort(), ['address', 'leader', 'name']);
  });

  it('etcd refuses a plain etcdctl, and an executor, which holds no etcd credentials at all', { skip: fs.existsSync(etcdctl) ? false : `no etcdctl at ${etcdctl}` }, () => {
    const endpoint = judicators[0]!.clientUrl;
    const ca = path.join(identityDir(judicators[0]!), 'ca.crt');
    const plain = etcdctlGet(endpoint.replace('https:', 'http:'), []);
    assert.notEqual(plain.status, 0, plain.output);
    const noCert = etcdctlGet(endpoint, ['--cacert', ca]);
    assert.notEqual(noCert.status, 0, noCert.output);
    const executorPem = path.join(executors[0]!.dir, 'executor', 'data', 'pki', 'node.pem');
    const withExecutorCert = etcdctlGet(endpoint, ['--cacert', ca, '--cert', executorPem, '--key', executorPem]);
    assert.notEqual(withExecutorCert.status, 0, withExecutorCert.output);
    assert.doesNotMatch(withExecutorCert.output, /kv2\/judicator/);
    // The executor's files: its own certificate and the CA certificate, no CA key, no etcd address.
    assert.deepEqual(fs.readdirSync(path.join(executors[0]!.dir, 'executor', 'data', 'pki')).sort(), ['ca.crt', 'node.pem']);
    const config = JSON.parse(fs.readFileSync(path.join(executors[0]!.dir, 'executor', 'config', 'main.json'), 'utf8'));
    assert.equal(config.etcd, undefined);
    // The judicator's own certificate reads it (the same etcdctl, the same port).
    const pem = path.join(identityDir(judicators[0]!), 'node.pem');
    const judicator = etcdctlGet(endpoint, ['--cacert', ca, '--cert', pem, '--key', pem]);
    assert.equal(judicator.status, 0, judicator.output);
    assert.match(judicator.output, /kv2\/judicator\/service\/j1/);
  });

  it('the RPC refuses a call without a cluster certificate, and what a role may not call', async () => {
    const j = judicators[1]!;
    const anonymous = await rpcCall(j, 'search', {});
    assert.equal(anonymous.status, 401);
    assert.equal(anonymous.json.result, 5);
    assert.match(anonymous.json.message, /no client certificate/);

    const executor = node(executors[0]!.dir, 'executor');
    const add = await rpcCall(j, 'add', { task: { user: 1, compile: { source: '', command: '', timeout: 1 }, execute: { input: '', data: '', command: 'ZWNobyBoaQ==', timeout: 1, standard: '' } } }, executor);
    assert.equal(add.status, 403);
    assert.equal(add.json.result, 5);
    assert.equal(add.json.id, null);
    assert.match(add.json.message, /an executor certificate may not call add/);
    const asOther = await rpcCall(j, 'report', { executor: 'e2', complete: [], executing: [], vacant: 0 }, executor);
    assert.equal(asOther.status, 403);
    assert.match(asOther.json.message, /may report only as e1, not as e2/);

    const gateway = node(gatewayDir, 'gateway');
    const report = await rpcCall(j, 'report', { executor: 'g', complete: [], executing: [], vacant: 0 }, gateway);
    assert.equal(report.status, 403);
    assert.match(report.json.message, /a gateway certificate may not call report/);
    const token = await rpcCall(j, 'join_token_create', { roles: ['judicator'], ttl_ms: 60_000 }, gateway);
    assert.equal(token.status, 403);
    assert.equal(token.json.token, null);
    // What a gateway may call, it may.
    assert.equal((await rpcCall(j, 'search', {}, gateway)).json.result, 0);
  });

  it('renews every certificate while the processes run, and keeps working past the end of the first ones', async () => {
    const executor = executors[0]!;
    const pidFile = path.join(executor.dir, 'executor', 'data', 'main.pid');
    const pid = readPid(pidFile);
    const judicatorPid = readPid(path.join(judicators[0]!.dir, 'judicator', 'data', 'main.pid'));
    const first = node(executor.dir, 'executor').identity;
    const [host, port] = judicators[0]!.rpcAddress.split(':');
    const firstServer = await serverSerial(host!, Number(port));
    // Past the end of the executor's first certificate (renewal starts when a third of its life is left).
    await waitFor(() => Date.now() > first.notAfter.getTime() + 1_000, { what: `the end of certificate ${first.serial}`, timeoutMs: 150_000, intervalMs: 500 });
    const now = node(executor.dir, 'executor').identity;
    assert.notEqual(now.serial, first.serial, 'the executor renewed its certificate');
    assert.ok(now.notAfter.getTime() > Date.now(), 'its certificate now is valid');
    assert.notEqual(await serverSerial(host!, Number(port)), firstServer, "the judicator's RPC presents a renewed certificate");
    assert.equal(readPid(pidFile), pid, 'the executor was not restarted');
    assert.equal(readPid(path.join(judicators[0]!.dir, 'judicator', 'data', 'main.pid')), judicatorPid, 'the judicator was not restarted');
    // Everything still works on the new certificates.
    const answer = await api.submit({ user: 2, execute_command: 'echo renewed', execute_timeout: 10 });
    assert.equal(answer.result, 0, answer.message);
    assert.equal((await api.waitDone(answer.id!)).result?.execute_output, 'renewed\n');
    const ping = await rpcCall(judicators[2]!, 'ping', {}, node(executor.dir, 'executor'));
    assert.equal(ping.status, 200);
    assert.equal(ping.json.result, 0);
  });

  it('a revoked executor is refused (kv2 revoke, on a judicator\'s machine)', async () => {
    const victim = executors[1]!;
    const run = runKv2(['revoke', 'e2', '--role', 'executor', '--reason', 'machine retired', '--work-dir', judicators[0]!.dir]);
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stdout, /revoked executor e2/);
    // Every judicator refuses it within its revocation list's refresh.
    for (const j of judicators) {
      await waitFor(
        async () => {
          const answer = await rpcCall(j, 'ping', {}, node(victim.dir, 'executor'));
          return answer.status === 403 && /revoked.*machine retired/.test(answer.json.message) ? true : undefined;
        },
        { what: `${j.name} to refuse the revoked executor`, timeoutMs: 20_000 },
      );
    }
    // Its reports are refused: it is gone once the executor TTL (5 s here) has passed without one.
    await waitFor(
      async () => {
        const listed = (await (await fetch(`${gatewayUrl}/api/executors`)).json()) as { executors: { id: string; alive?: boolean }[] };
        return listed.executors.some((e) => e.id === 'e2' && e.alive === false) && listed.executors.some((e) => e.id === 'e1' && e.alive);
      },
      { what: 'the revoked e2 listed as gone, e1 alive', timeoutMs: 30_000 },
    );
    // The other executor still works, and so does the cluster.
    const answer = await api.submit({ user: 3, execute_command: 'echo still', execute_timeout: 10 });
    assert.equal((await api.waitDone(answer.id!)).result?.execute_output, 'still\n');
  });

  it('refuses the old --cluster-token, naming join tokens', () => {
    const run = runKv2(['executor', '--join', '127.0.0.1', '--cluster-token', 'x', '--work-dir', makeTempDir(hooks, 'kv2-pki-old-')]);
    assert.equal(run.status, 2);
    assert.match(run.stderr, /--cluster-token: is gone: the cluster uses mutual TLS now.*join token/);
    const env = runKv2(['gateway', '--join', '127.0.0.1', '--work-dir', makeTempDir(hooks, 'kv2-pki-old-')], { env: { KV2_CLUSTER_TOKEN: 'x' } });
    assert.equal(env.status, 2);
    assert.match(env.stderr, /KV2_CLUSTER_TOKEN: is gone/);
    const etcd = runKv2(['executor', '--etcd-endpoints', 'http://a:2001', '--work-dir', makeTempDir(hooks, 'kv2-pki-old-')]);
    assert.equal(etcd.status, 2);
    assert.match(etcd.stderr, /executors no longer talk to etcd.*--join/);
  });
});
