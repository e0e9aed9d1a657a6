// The supervisor and the maintenance shell, through the built kv2 running a real judicator (real etcd):
// restarts, pid files, pid-file locks honoured as the maintenance page describes, clean shutdown.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { initClusterIdentity } from '../../src/pki/init-identity';
import { etcdClient } from '../helpers/cluster';
import {
  isRunning,
  judicatorPortFlags,
  judicatorPorts,
  kv2Binary,
  pingJudicator,
  readPid,
  startNode,
  waitForJudicator,
} from '../helpers/kv2';
import { freePort } from '../helpers/ports';
import { processesMentioning } from '../helpers/process-table';
import { makeTempDir } from '../helpers/temp';
import { waitFor } from '../helpers/wait';

const FAST = ['--boot-check-interval', '0.5', '--boot-grace-period', '10'];

async function startJudicator(t: { after: (fn: () => unknown) => void }, extra: string[] = []) {
  const dir = makeTempDir(t);
  const ports = await judicatorPorts();
  const node = startNode(t, dir, ['judicator', ...judicatorPortFlags(ports), ...FAST, ...extra]);
  await waitForJudicator(node, ports.rpc);
  return { dir, ports, node };
}

function waitNewPid(pidFile: string, old: number) {
  return waitFor(
    () => {
      const pid = readPid(pidFile);
      return pid && pid !== old && isRunning(pid) ? pid : undefined;
    },
    { what: `a new pid in ${pidFile}` },
  );
}

/** Starts `kv2 maintain` with a shell reading commands from our pipe. */
function startMaintain(t: { after: (fn: () => unknown) => void }, dir: string, pidFiles: string[]) {
  const child = spawn(kv2Binary(), ['maintain', ...pidFiles], { cwd: dir, env: { ...process.env, SHELL: '/bin/sh' }, stdio: ['pipe', 'pipe', 'pipe'] });
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    child.stdin.destroy();
  });
  let output = '';
  child.stdout.on('data', (chunk) => (output += chunk));
  child.stderr.on('data', (chunk) => (output += chunk));
  return {
    child,
    output: () => output,
    locked: () => waitFor(() => output.includes('All pid files locked.'), { what: 'maintain to lock the pid files' }),
    exitCode: () =>
      new Promise<number | null>((resolve) => {
        if (child.exitCode !== null) resolve(child.exitCode);
        else child.once('exit', (code) => resolve(code));
      }),
  };
}

/** Asserts that a module stays down for `ms` (several supervisor check intervals). */
async function assertStaysDown(pidFile: string, rpcPort: number, ms: number) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const pid = readPid(pidFile);
    assert.ok(!(pid && isRunning(pid)), 'the supervisor restarted a module whose pid file is locked');
    assert.equal(await pingJudicator(rpcPort), false);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('a module killed with SIGKILL is restarted and its pid file holds the new pid', async (t) => {
  const { dir, ports } = await startJudicator(t);
  const mainPid = path.join(dir, 'judicator/data/main.pid');
  const first = readPid(mainPid)!;
  process.kill(first, 'SIGKILL');
  const second = await waitNewPid(mainPid, first);
  assert.notEqual(second, first);
  await waitFor(() => pingJudicator(ports.rpc), { what: 'the restarted main module' });

  // The etcd module too: its etcd goes with it (process group) and a new one takes the same ports.
  const etcdPidFile = path.join(dir, 'judicator/data/etcd.pid');
  const etcdModule = readPid(etcdPidFile)!;
  process.kill(etcdModule, 'SIGKILL');
  await waitNewPid(etcdPidFile, etcdModule);
  const client = await etcdClient(t, [`https://127.0.0.1:${ports.client}`], { dir });
  await waitFor(async () => (await client.put('kv2-test/after-restart').value('ok'), true), { what: 'etcd answering after its module was killed' });
  // The old etcd was sent SIGKILL with its group; a loaded machine may take a moment to finish it off.
  const etcds = () => processesMentioning(path.join(dir, 'judicator/data/etcd')).filter((p) => p.cmdline.includes('--data-dir'));
  await waitFor(() => etcds().length === 1, { what: () => `exactly one etcd to run, found:\n${etcds().map((p) => p.cmdline).join('\n')}`, timeoutMs: 10_000 });
});

test('kv2 maintain keeps a module down while its shell is open, and the edited config is used after', async (t) => {
  const { dir, ports } = await startJudicator(t);
  const mainPidFile = path.join(dir, 'judicator/data/main.pid');
  const pid = readPid(mainPidFile)!;
  const maintain = startMaintain(t, dir, ['judicator/data/main.pid']);
  await maintain.locked();
  assert.match(maintain.output(), new RegExp(`kill -INT ${pid}`));

  maintain.child.stdin.write(`kill -INT ${pid}\n`);
  await waitFor(() => !isRunning(pid), { what: 'the main module to stop after kill -INT' });
  await assertStaysDown(mainPidFile, ports.rpc, 2_500);

  // The page's "modify configurations for main program": edit config/main.json inside the shell.
  const newPort = await freePort();
  maintain.child.stdin.write(
    `node -e 'const f="judicator/config/main.json";const c=JSON.parse(require("fs").readFileSync(f));` +
      `c.listen.port=${newPort};c.advertise.port=${newPort};require("fs").writeFileSync(f,JSON.stringify(c,null,4))'\n`,
  );
  maintain.child.stdin.end();
  assert.equal(await maintain.exitCode(), 0);
  assert.match(maintain.output(), /All pid files unlocked\./);
  assert.ok(!fs.existsSync(`${mainPidFile}.lock`), 'the lock file is gone after maintain exits');

  await waitFor(() => pingJudicator(newPort), { what: `the main module back on the edited port ${newPort}` });
  assert.equal(await pingJudicator(ports.rpc), false);
});

test('a lock left by a maintain killed with SIGKILL does not block the supervisor', async (t) => {
  const { dir, ports } = await startJudicator(t);
  const mainPidFile = path.join(dir, 'judicator/data/main.pid');
  const pid = readPid(mainPidFile)!;
  const maintain = startMaintain(t, dir, ['judicator/data/main.pid']);
  await maintain.locked();
  maintain.child.kill('SIGKILL');
  maintain.child.stdin.end();
  await maintain.exitCode();
  assert.ok(fs.existsSync(`${mainPidFile}.lock`), 'the killed maintain could not remove its lock file');
  process.kill(pid, 'SIGINT');
  await waitNewPid(mainPidFile, pid);
  await waitFor(() => pingJudicator(ports.rpc), { what: 'the main module restarted despite the stale lock' });
});

test('a malformed config/main.json ends the role: exit 2, one line saying why, nothing left running', async (t) => {
  const { dir, node } = await startJudicator(t);
  const mainPidFile = path.join(dir, 'judicator/data/main.pid');
  const configFile = path.join(dir, 'judicator/config/main.json');
  const pid = readPid(mainPidFile)!;
  const maintain = startMaintain(t, dir, ['judicator/data/main.pid']);
  await maintain.locked();
  maintain.child.stdin.write(`kill -INT ${pid}\n`);
  await waitFor(() => !isRunning(pid), { what: 'the main module to stop' });
  fs.writeFileSync(configFile, '{ "name": "oops", ');
  maintain.child.stdin.end();
  await maintain.exitCode();
  // A restart would read the same file: the role ends instead of restarting the module forever.
  assert.equal(await node.waitExit(30_000), 2);
  const said = node.log.trim().split('\n').filter((line) => line.startsWith('kv2 judicator:'));
  assert.equal(said.length, 1, node.tail());
  assert.match(said[0]!, /config\/main\.json is not valid JSON/);
  const bootLog = fs.readFileSync(path.join(dir, 'judicator/log/boot/boot.log'), 'utf8');
  assert.match(bootLog, /"level":"fatal".*a restart would not change that/);
  assert.deepEqual(processesMentioning(dir).map((p) => p.cmdline), []);
});

test('--store mongodb with no mongod anywhere ends the role with exit 2 and one line, not restarts forever', async (t) => {
  const onPath = (process.env.PATH ?? '').split(':').some((dir) => dir && fs.existsSync(path.join(dir, 'mongod')));
  if (onPath || process.env.KV2_MONGOD_BINARY) {
    t.skip('a mongod is installed here: this test needs a machine without one');
    return;
  }
  const dir = makeTempDir(t);
  const ports = await judicatorPorts();
  const node = startNode(t, dir, ['judicator', ...judicatorPortFlags(ports), ...FAST, '--store', 'mongodb', '--mongodb-listen-port', String(await freePort())], {
    env: { KV2_CACHE_DIR: path.join(dir, 'cache'), MONGOMS_DOWNLOAD_DIR: path.join(dir, 'cache', 'mongodb') },
  });
  assert.equal(await node.waitExit(90_000), 2, node.tail());
  const said = node.log.trim().split('\n').filter((line) => line.startsWith('kv2 judicator:'));
  assert.equal(said.length, 1, node.tail());
  assert.match(said[0]!, /mongod/);
  const starts = fs.readFileSync(path.join(dir, 'judicator/log/boot/boot.log'), 'utf8').match(/is down; started it/g) ?? [];
  assert.ok(starts.length <= 3, `no module started more than once (${starts.length} starts)`);
  assert.deepEqual(processesMentioning(dir).map((p) => p.cmdline), []);
});

test('an executor whose task sandbox does not work does not start: exit 2 and one line saying what to do', async (t) => {
  const dir = makeTempDir(t);
  // A cluster CA in the work dir (as a judicator there would have made it): the executor takes its
  // certificate from it, so the sandbox is the only thing in its way.
  await initClusterIdentity(path.join(dir, 'judicator', 'data', 'pki'), { name: 'j' });
  const node = startNode(t, dir, ['executor', '--join', '127.0.0.1:1', ...FAST], { env: { KV2_BWRAP_BINARY: '/bin/false' } });
  assert.equal(await node.waitExit(60_000), 2, node.tail());
  const said = node.log.trim().split('\n').filter((line) => line.startsWith('kv2 executor:'));
  assert.equal(said.length, 1, node.tail());
  assert.match(said[0]!, /no working task sandbox.*--main-task-sandbox none/);
  assert.deepEqual(processesMentioning(dir).map((p) => p.cmdline), []);
});

test('a work dir that cannot be used ends the role with exit 2 and one line', (t) => {
  const dir = makeTempDir(t);
  const file = path.join(dir, 'a-file');
  fs.writeFileSync(file, '');
  const run = spawnSync(kv2Binary(), ['gateway', '--join', '127.0.0.1:1', '--work-dir', path.join(file, 'work')], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(run.status, 2, run.stderr);
  assert.equal(run.stderr.trim().split('\n').length, 1, run.stderr);
  assert.match(run.stderr, /cannot use the work dir .*ENOTDIR/);
});

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  test(`${signal} stops kv2 judicator with exit 0 and leaves no process behind`, async (t) => {
    const { dir, node } = await startJudicator(t);
    assert.ok(processesMentioning(dir).length >= 4, 'supervisor, two modules and etcd should be running');
    const started = Date.now();
    const code = await node.stop(signal, 15_000);
    assert.equal(code, 0);
    assert.ok(Date.now() - started < 10_000, 'stopped within the grace period');
    assert.deepEqual(processesMentioning(dir).map((p) => p.cmdline), []);
  });
}

test('a key written to etcd survives a restart of the etcd module', async (t) => {
  const { dir, ports } = await startJudicator(t);
  const client = await etcdClient(t, [`https://127.0.0.1:${ports.client}`], { dir });
  await client.put('kv2-test/durable').value('still here');
  const etcdPidFile = path.join(dir, 'judicator/data/etcd.pid');
  const pid = readPid(etcdPidFile)!;
  process.kill(pid, 'SIGINT');
  await waitNewPid(etcdPidFile, pid);
  const value = await waitFor(() => client.get('kv2-test/durable').string(), { what: 'the key after the etcd restart' });
  assert.equal(value, 'still here');
});

test('the executable copied alone into an empty directory runs a judicator from its embedded etcd', async (t) => {
  const dir = makeTempDir(t);
  const binary = path.join(dir, 'kv2');
  fs.copyFileSync(kv2Binary(), binary);
  fs.chmodSync(binary, 0o755);
  const cache = path.join(dir, 'cache');
  const ports = await judicatorPorts();
  const node = startNode(t, dir, ['judicator', ...judicatorPortFlags(ports), ...FAST], {
    binary,
    env: { KV2_CACHE_DIR: cache, KV2_ETCD_BINARY: '', KV2_ETCDCTL_BINARY: '', PATH: '/bin' },
  });
  await waitForJudicator(node, ports.rpc);
  await waitFor(() => processesMentioning(path.join(dir, 'judicator/data/etcd')).some((p) => p.cmdline.includes('--data-dir')), { what: 'etcd to run' });
  const extracted = fs.readdirSync(cache).map((hash) => fs.readdirSync(path.join(cache, hash))).flat();
  assert.ok(extracted.includes('etcd'), `etcd extracted into the cache (found ${extracted.join(', ')})`);
  const etcd = processesMentioning(path.join(dir, 'judicator/data/etcd')).find((p) => p.cmdline.includes('--data-dir'));
  assert.ok(etcd?.cmdline.startsWith(cache), `etcd runs from the cache: ${etcd?.cmdline}`);
});
