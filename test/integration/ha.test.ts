// High availability with real clusters of the built kv2 on loopback: the leader killed while tasks flow,
// an executor killed mid-task, a poison task, and the maintenance page's disaster recovery, scripted.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { currentLeader } from '../../src/etcd/leader';
import { copyToken, etcdClient, issueIdentity, restartJudicator, rpcCall, startJudicators, tokenFile, waitForMembers } from '../helpers/cluster';
import { kv2Binary, readPid, startNode, waitForJudicator } from '../helpers/kv2';
import { GatewayClient, executorArgs, killNode, startExecutor, startGateway, startSystem } from '../helpers/system';
import { httpsJson } from '../helpers/pki';
import { makeTaskSharedDir, makeTempDir } from '../helpers/temp';
import { waitFor } from '../helpers/wait';

const NO_SANDBOX = ['--main-task-sandbox', 'none'];

/** A directory tasks (running as an unprivileged user) can drop marker files in, one line per run. */
function markerDir(t: { after: (fn: () => unknown) => void }): string {
  return makeTaskSharedDir(t, 'kv2-markers-');
}

/** The runs of task n: one line per run, holding the time (ms) it started. */
function runsOf(markers: string, n: number): number[] {
  const file = path.join(markers, `run-${n}`);
  return fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map(Number) : [];
}

test('the leader killed with SIGKILL while 300 tasks flow through two executors: every task ends once, right', async (t) => {
  const system = await startSystem(t, { judicators: 3, executors: 2, slots: 4, executorFlags: NO_SANDBOX, judicatorFlags: ['--task-expiration', '10'] });
  const api = new GatewayClient(system.gateways[0]!.url);
  const markers = markerDir(t);
  const client = await etcdClient(t, system.judicators.map((j) => j.clientUrl), system.judicators[0]!);
  const ids = new Map<string, number>();
  let gatewayErrors = 0;
  let killedAt = 0;
  const leaderName = await waitFor(() => currentLeader(client, 'kv2/'), { what: 'a leader' });
  const leader = system.judicators.find((j) => j.name === leaderName)!;

  for (let n = 1; n <= 300; n++) {
    if (n === 100) {
      killedAt = Date.now();
      await killNode(leader);
    }
    try {
      const answer = await api.submit({ user: 7, execute_command: `date +%s%3N >> ${markers}/run-${n}; echo out-${n}`, execute_timeout: 30 });
      if (answer.result === 0 && answer.id) ids.set(answer.id, n);
      else gatewayErrors++;
    } catch {
      gatewayErrors++;
    }
  }
  for (const [id, n] of ids) {
    const task = await api.waitDone(id, 120_000);
    assert.equal(task.status, 5, `task ${n} ended with status ${task.status}`);
    assert.equal(task.result?.execute_output, `out-${n}\n`);
    assert.ok(runsOf(markers, n).length >= 1, `task ${n} ran`);
  }
  // At-least-once execution is the contract when executors die; here none died, so exactly once.
  const twice = [...ids.values()].filter((n) => runsOf(markers, n).length > 1);
  assert.deepEqual(twice, [], 'no task ran twice');
  assert.ok(ids.size >= 295, `accepted ${ids.size} of 300 (gateway errors: ${gatewayErrors})`);
  const newLeader = await waitFor(() => currentLeader(client, 'kv2/'), { what: 'a new leader' });
  assert.notEqual(newLeader, leaderName);
  const nextStart = Math.min(...[...ids.values()].flatMap((n) => runsOf(markers, n)).filter((ms) => ms >= killedAt));
  console.log(
    `leader ${leaderName} killed: ${gatewayErrors} gateway errors of 300 submissions; ` +
      `the next task started ${nextStart - killedAt} ms after the kill; new leader ${newLeader}`,
  );
});

test('an executor killed with SIGKILL: its tasks finish on the other executor within the expiration', async (t) => {
  const system = await startSystem(t, { judicators: 1, executors: 2, slots: 2, executorFlags: NO_SANDBOX, judicatorFlags: ['--task-expiration', '8'] });
  const api = new GatewayClient(system.gateways[0]!.url);
  const markers = markerDir(t);
  const ids: string[] = [];
  for (let n = 1; n <= 4; n++) {
    const answer = await api.submit({ user: 1, execute_command: `echo "$PWD" >> ${markers}/run-${n}; sleep 3; echo slow-${n}`, execute_timeout: 30 });
    ids.push(answer.id!);
  }
  // Wait until both executors run something, then kill the first one.
  const running = await waitFor(
    async () => {
      const tasks = await Promise.all(ids.map((id) => api.get(id)));
      const victims = tasks.filter((a) => a.task?.executor === 'e1');
      return victims.length > 0 ? victims.map((a) => a.task!.id) : undefined;
    },
    { what: 'e1 to run a task', timeoutMs: 30_000 },
  );
  const killedAt = Date.now();
  await killNode(system.executors[0]!);
  for (const id of running) {
    const task = await api.waitDone(id, 40_000);
    assert.equal(task.status, 5);
    assert.match(task.result!.execute_output, /^slow-\d\n$/);
  }
  const took = Date.now() - killedAt;
  assert.ok(took < 8_000 + 3_000 + 10_000, `finished ${took} ms after the kill`);
  console.log(`tasks of the killed executor finished on e2 ${took} ms after the kill`);
});

test('a poison task (it kills its executor) ends as Unknown error after the retry limit and does not cycle', async (t) => {
  const judicators = await startJudicators(t, 1, ['--task-max-retries', '2', '--task-expiration', '5']);
  // Tasks may not kill a root executor (they run as another user); an executor that is not root runs
  // tasks as itself, and such a task can kill it. So this executor runs as nobody, and gets its join
  // token in its environment (the judicator's token file is root's).
  const dir = makeTempDir(t, 'kv2-poison-');
  const cache = makeTempDir(t, 'kv2-poison-cache-');
  fs.chmodSync(dir, 0o777);
  fs.chmodSync(cache, 0o777);
  const node = startNode(t, dir, ['--reuid=65534', '--regid=65534', '--clear-groups', '--', kv2Binary(), ...executorArgs('e1', judicators, [...NO_SANDBOX, '--boot-restart-backoff-max', '1'])], {
    binary: '/usr/bin/setpriv',
    env: { KV2_CACHE_DIR: cache, HOME: cache, KV2_JOIN_TOKEN: fs.readFileSync(tokenFile(judicators[0]!), 'utf8').trim() },
  });
  const gateway = await startGateway(t, judicators);
  const api = new GatewayClient(gateway.url);
  const pidFile = path.join(dir, 'executor', 'data', 'main.pid');
  await waitFor(() => !node.exited && readPid(pidFile), { what: `the executor module (log: ${node.tail()})` });
  const poison = await api.submit({ user: 1, execute_command: `kill -9 $(cat ${pidFile})`, execute_timeout: 30 });
  const task = await api.waitDone(poison.id!, 120_000);
  assert.equal(task.status, 8, 'Unknown error');
  assert.equal(task.retries, 2);
  assert.match(task.result!.execute_error, /Gave up after 2 retries/i);
  // The executor (restarted by its supervisor) still works.
  const healthy = await api.submit({ user: 1, execute_command: 'echo fine', execute_timeout: 10 });
  assert.equal((await api.waitDone(healthy.id!, 60_000)).result?.execute_output, 'fine\n');
});

test('disaster recovery as the maintenance page describes it, scripted with kv2 maintain', async (t) => {
  const nodes = await startJudicators(t, 3);
  const gateway = await startGateway(t, nodes);
  const executor = startExecutor(t, 'e1', nodes, NO_SANDBOX);
  const api = new GatewayClient(gateway.url);
  const before = await api.submit({ user: 3, execute_command: 'echo before-the-disaster', execute_timeout: 10 });
  await api.waitDone(before.id!, 60_000);

  // Stop executors and gateways; shut down all judicators but one (the others are lost for good).
  await executor.node.stop('SIGINT');
  await gateway.node.stop('SIGINT');
  await killNode(nodes[1]!);
  await killNode(nodes[2]!);
  const survivor = nodes[0]!;

  // Alone, it has no etcd quorum: it stops serving and says so (clients go elsewhere).
  const refusal = await waitFor(
    async () => {
      const response = await httpsJson(survivor.rpcAddress, '/health', { rejectUnauthorized: false });
      return response.status === 503 ? (response.json as { reason: string }) : undefined;
    },
    { what: 'the lone judicator to report that it lost quorum', timeoutMs: 30_000 },
  );
  assert.match(refusal.reason, /quorum|etcd does not answer|not registered/);
  const gatewayCert = await issueIdentity(t, survivor, 'gateway', 'test-gateway');
  const add = await rpcCall(survivor, 'search', {}, gatewayCert.files);
  assert.equal(add.status, 503);

  // Lock all pid files, stop the modules, set the cluster to init, exit the shell.
  const etcdConfig = path.join(survivor.dir, 'judicator', 'config', 'etcd.json');
  const backup = fs.readFileSync(etcdConfig, 'utf8');
  const maintain = spawn(kv2Binary(), ['maintain', 'judicator/data/main.pid', 'judicator/data/etcd.pid'], {
    cwd: survivor.dir,
    env: { ...process.env, SHELL: '/bin/sh' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  t.after(() => maintain.kill('SIGKILL'));
  let output = '';
  maintain.stdout.on('data', (c) => (output += c));
  await waitFor(() => output.includes('All pid files locked.'), { what: 'maintain to lock the pid files' });
  const pids = [readPid(path.join(survivor.dir, 'judicator/data/main.pid'))!, readPid(path.join(survivor.dir, 'judicator/data/etcd.pid'))!];
  maintain.stdin.write(`kill -INT ${pids.join(' ')}\n`);
  await waitFor(() => pids.every((pid) => !fs.existsSync(`/proc/${pid}`) || fs.readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z')), { what: 'the modules to stop', timeoutMs: 40_000 });
  const config = JSON.parse(backup);
  config.cluster = { type: 'init' };
  fs.writeFileSync(etcdConfig, JSON.stringify(config, null, 4));
  maintain.stdin.end();
  await new Promise((resolve) => maintain.once('exit', resolve));

  // The survivor comes back as a one-member cluster holding the old tasks.
  await waitForJudicator(survivor.node, survivor.ports.rpc, 90_000);
  const client = await etcdClient(t, [survivor.clientUrl], survivor);
  await waitForMembers(client, ['j1']);
  fs.writeFileSync(etcdConfig, backup); // "use the backup Etcd config file to overwrite the current one"
  const gateway2 = await startGateway(t, survivor);
  const api2 = new GatewayClient(gateway2.url);
  const old = await api2.get(before.id!);
  assert.equal(old.task?.result?.execute_output, 'before-the-disaster\n');

  // "Reconfig the system to a proper size": a new judicator joins (a new machine: a new work dir, the
  // survivor's join token).
  const lost = nodes[1]!;
  fs.rmSync(lost.dir, { recursive: true, force: true });
  fs.mkdirSync(lost.dir);
  copyToken(survivor, lost.dir);
  const rejoined = restartJudicator(t, lost);
  await waitForJudicator(rejoined.node, rejoined.ports.rpc, 120_000);
  await waitForMembers(client, ['j1', 'j2']);
});
