// Backup and restore, and the maintenance page's procedures, through the built kv2 on real clusters
// (real etcd, executors running real tasks, gateways): a backup taken while tasks flow brings every
// finished task back byte for byte in a fresh work dir; a damaged backup is refused and changes nothing;
// the page's "modify configurations for main program in Judicator" runs end to end with no task lost. A
// backup carries the cluster CA, and a restore keeps the cluster's identity.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { clusterKeys } from '../../src/etcd/keys';
import { parseRegistration } from '../../src/etcd/judicator-directory';
import { createLogger } from '../../src/common/logging';
import { openTaskStore } from '../../src/store/open-store';
import { packBytes, packText } from '../../src/task/codec';
import { parseTaskLine } from '../../src/ops/task-export';
import { etcdClient, identityDir, judicatorArgs, type ClusterNode } from '../helpers/cluster';
import { isRunning, judicatorPorts, kv2Binary, pingJudicator, readPid, startNode, waitForJudicator, type RunResult } from '../helpers/kv2';
import { skipUnlessMongod, testMongod } from '../helpers/mongod';
import { freePort } from '../helpers/ports';
import { GatewayClient, startGateway, startSystem, type GatewayTask } from '../helpers/system';
import { makeTempDir } from '../helpers/temp';
import { waitFor } from '../helpers/wait';

type Hooks = { after: (fn: () => unknown) => void };

/** Runs kv2 to completion without blocking the event loop (tasks keep flowing meanwhile). */
function runKv2(t: Hooks, args: string[], options: { cwd?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  const child = spawn(kv2Binary(), args, { cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => (stdout += chunk));
  child.stderr.on('data', (chunk) => (stderr += chunk));
  const timeoutMs = options.timeoutMs ?? 120_000;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`kv2 ${args.join(' ')} did not finish within ${timeoutMs} ms\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ status: code, stdout, stderr });
    });
  });
}

/** A judicator started by the test itself, as the cluster helpers describe one. */
function asClusterNode(name: string, dir: string, ports: Awaited<ReturnType<typeof judicatorPorts>>, node: ClusterNode['node'], args: string[]): ClusterNode {
  return { name, dir, ports, node, args, clientUrl: `https://127.0.0.1:${ports.client}`, rpcAddress: `127.0.0.1:${ports.rpc}` };
}

/** A task whose outputs differ every time (random bytes) and whose every field is set. */
function taskFields(n: number): Record<string, string | number> {
  return {
    user: n % 3,
    compile_source_name: 'src.txt',
    compile_source_str: `source ${n}\n`,
    compile_command: `cat src.txt; echo compiled ${n} >&2`,
    compile_timeout: 20,
    execute_data_name: 'data.txt',
    execute_data_str: `data ${n}\n`,
    execute_input: `input ${n}`,
    execute_command: 'head -c 40 /dev/urandom; cat; cat data/data.txt; echo oops >&2',
    execute_timeout: 20,
    execute_standard: '',
  };
}

/** Submits tasks one after another (about 20 a second) until stopped; remembers every accepted id. */
function startProducer(gateway: GatewayClient, limit = 2_000) {
  const accepted: string[] = [];
  const failures: string[] = [];
  let running = true;
  const done = (async () => {
    for (let n = 0; running && n < limit; n++) {
      try {
        const answer = await gateway.submit(taskFields(n));
        if (answer.result === 0 && answer.id) accepted.push(answer.id);
        else failures.push(JSON.stringify(answer));
      } catch (error) {
        failures.push(String(error));
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  return {
    accepted,
    failures,
    async stop() {
      running = false;
      await done;
    },
  };
}

async function listTasks(url: string): Promise<{ id: string; done: boolean; status: number }[]> {
  const response = await fetch(`${url}/api/task/list`, { signal: AbortSignal.timeout(30_000) });
  const body = (await response.json()) as { result: number; tasks: { id: string; done: boolean; status: number }[] };
  assert.equal(body.result, 0, JSON.stringify(body));
  return body.tasks;
}

const DOWNLOADS = ['compile_source', 'execute_data', 'compile_output', 'compile_error', 'execute_output', 'execute_error', 'execute_input', 'execute_command'];

/** What a client sees of a task: its JSON and every file it can download (null: 404). */
async function clientView(url: string, id: string): Promise<{ task: GatewayTask; files: Record<string, Buffer | null> }> {
  const gateway = new GatewayClient(url);
  const answer = await gateway.get(id);
  assert.equal(answer.result, 0, `task ${id}: ${JSON.stringify(answer)}`);
  const files: Record<string, Buffer | null> = {};
  for (const file of DOWNLOADS) {
    const response = await fetch(`${url}/api/task?id=${id}&file=${file}`, { signal: AbortSignal.timeout(30_000) });
    files[file] = response.status === 404 ? null : Buffer.from(await response.arrayBuffer());
    if (response.status !== 404) assert.equal(response.status, 200, `download ${file} of ${id}`);
  }
  return { task: answer.task!, files };
}

/** Every file under `dir` with its content, to show that something changed nothing. */
function snapshotTree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (!fs.existsSync(dir)) return out;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    const full = path.join(entry.parentPath, entry.name);
    out[path.relative(dir, full)] = entry.isFile() ? fs.readFileSync(full).toString('base64') : '(dir)';
  }
  return out;
}

test('a backup taken while tasks flow brings every finished task back, byte for byte, in a fresh work dir', async (t) => {
  const system = await startSystem(t, { judicators: 2, executors: 1, slots: 3 });
  const gatewayUrl = system.gateways[0]!.url;
  const producer = startProducer(new GatewayClient(gatewayUrl));
  try {
    await waitFor(async () => (await listTasks(gatewayUrl)).filter((task) => task.done).length >= 15, { what: '15 finished tasks', timeoutMs: 120_000 });

    // What had finished when the backup started must all be in it.
    const finishedBefore = (await listTasks(gatewayUrl)).filter((task) => task.done).map((task) => task.id);
    const acceptedBefore = producer.accepted.length;
    const backupDir = path.join(makeTempDir(t, 'kv2-backup-'), 'backup');
    const j1 = system.judicators[0]!;
    const endpoints = system.judicators.map((j) => j.clientUrl).join(',');
    const backup = await runKv2(t, ['backup', backupDir, '--work-dir', j1.dir, '--etcd-endpoints', endpoints]);
    assert.equal(backup.status, 0, `kv2 backup failed:\n${backup.stdout}\n${backup.stderr}`);
    assert.match(backup.stdout, /backup complete/);
    assert.match(backup.stdout, /snapshot\.db: .*revision \d+/);
    // It carries the cluster CA, and is its owner's only.
    assert.match(backup.stdout, /pki\/: the cluster CA .*this backup is a secret/);
    const caCert = fs.readFileSync(path.join(identityDir(j1), 'ca.crt'), 'utf8');
    assert.equal(fs.readFileSync(path.join(backupDir, 'pki/ca.crt'), 'utf8'), caCert);
    assert.equal(fs.statSync(path.join(backupDir, 'pki/ca.key')).mode & 0o777, 0o600);
    assert.equal(fs.statSync(backupDir).mode & 0o777, 0o700);
    // Tasks were accepted while the backup ran.
    assert.ok(producer.accepted.length > acceptedBefore, `tasks were accepted while kv2 backup ran (${acceptedBefore} before, ${producer.accepted.length} after)`);

    const expected = new Map<string, Awaited<ReturnType<typeof clientView>>>();
    for (const id of finishedBefore) expected.set(id, await clientView(gatewayUrl, id));
    await producer.stop();

    const verify = await runKv2(t, ['backup', '--verify', backupDir]);
    assert.equal(verify.status, 0, `${verify.stdout}\n${verify.stderr}`);
    assert.match(verify.stdout, /backup OK/);
    const manifest = JSON.parse(fs.readFileSync(path.join(backupDir, 'manifest.json'), 'utf8'));
    assert.equal(manifest.store, 'etcd');
    assert.equal(manifest.export.read_from, 'snapshot');
    assert.ok(manifest.counts.tasks >= finishedBefore.length, `the backup holds ${manifest.counts.tasks} tasks, ${finishedBefore.length} had finished`);
    const exported = new Map(
      fs.readFileSync(path.join(backupDir, 'tasks.jsonl'), 'utf8').trim().split('\n').map((line) => {
        const task = parseTaskLine(line);
        return [task.id, task] as const;
      }),
    );
    for (const id of finishedBefore) assert.equal(exported.get(id)?.done, true, `task ${id} finished before the backup: done in the export`);

    // The disaster: the whole old system is gone.
    for (const node of [...system.gateways, ...system.executors, ...system.judicators]) await node.node.stop('SIGTERM');

    const fresh = makeTempDir(t, 'kv2-restored-');
    const restore = await runKv2(t, ['restore', backupDir, '--work-dir', fresh]);
    assert.equal(restore.status, 0, `kv2 restore failed:\n${restore.stdout}\n${restore.stderr}`);
    assert.match(restore.stdout, /copied snapshot\.db .* to .*judicator\/data\/etcd_init\/snapshot\.db/);
    assert.match(restore.stdout, /Next:\n.*start this judicator/);
    assert.ok(fs.existsSync(path.join(fresh, 'judicator/data/etcd_init/snapshot.db')));
    assert.match(restore.stdout, /put the cluster CA sha256:[0-9a-f]+ in /);

    const ports = await judicatorPorts();
    const args = judicatorArgs('r1', ports);
    const judicator = startNode(t, fresh, args);
    await waitForJudicator(judicator, ports.rpc, 90_000);
    assert.deepEqual(fs.readdirSync(path.join(fresh, 'judicator/data/etcd_init')), [], 'etcd_init is emptied once restored');
    assert.match(fs.readFileSync(path.join(fresh, 'judicator/log/etcd/etcd.log'), 'utf8'), /restored etcd from snapshot/);
    // The restored judicator is the old cluster: its CA, so every old certificate and token still holds.
    assert.equal(fs.readFileSync(path.join(fresh, 'judicator/data/pki/ca.crt'), 'utf8'), caCert);

    const gateway = await startGateway(t, asClusterNode('r1', fresh, ports, judicator, args));
    // Exactly the backed-up tasks, and each finished one as a client saw it, every byte.
    const restored = await listTasks(gateway.url);
    assert.deepEqual(restored.map((task) => task.id).sort(), [...exported.keys()].sort());
    for (const [id, before] of expected) {
      const after = await clientView(gateway.url, id);
      assert.deepEqual(after.task, before.task, `task ${id} as the gateway shows it`);
      for (const file of DOWNLOADS) assert.deepEqual(after.files[file], before.files[file], `${file} of task ${id}`);
    }
  } finally {
    await producer.stop();
  }
});

test('kv2 backup --verify and kv2 restore refuse a damaged backup, naming what is wrong, and change nothing', async (t) => {
  const dir = makeTempDir(t, 'kv2-bj-');
  const ports = await judicatorPorts();
  const node = startNode(t, dir, judicatorArgs('b1', ports, ['--store', 'etcd']));
  await waitForJudicator(node, ports.rpc);

  // A few tasks, written through the store itself, so the export can be compared field by field.
  const etcd = await etcdClient(t, [`https://127.0.0.1:${ports.client}`], { dir });
  await waitFor(async () => (await etcd.get(clusterKeys().clusterStore).string()) === 'etcd', { what: 'the cluster to record its store' });
  const store = await openTaskStore({ kind: 'etcd', client: etcd, prefix: 'kv2/', maxTaskSize: 16_252_928, logger: createLogger('test', { maxBytes: 1 << 20, keep: 0, printToStdout: false, level: 'error' }) });
  t.after(() => store.close());
  const ids: string[] = [];
  for (let n = 0; n < 5; n++) {
    ids.push(
      await store.add({
        user: n,
        compile: { source: Buffer.alloc(0), command: packText(`echo ${n}`), timeout: 5 },
        execute: { input: packBytes(Buffer.from([0, 255, n])), data: Buffer.alloc(0), command: packText('cat'), timeout: 5, standard: packText('') },
      }),
    );
  }

  // Run where the judicator was started: no --etcd-endpoints needed.
  const backupDir = path.join(makeTempDir(t, 'kv2-backup-'), 'good');
  const backup = await runKv2(t, ['backup', backupDir], { cwd: dir });
  assert.equal(backup.status, 0, `${backup.stdout}\n${backup.stderr}`);
  const lines = fs.readFileSync(path.join(backupDir, 'tasks.jsonl'), 'utf8').trim().split('\n');
  assert.equal(lines.length, 5);
  for (const line of lines) {
    const task = parseTaskLine(line);
    assert.deepEqual(task, await store.get(task.id), `every field of task ${task.id} round-trips through the export`);
  }

  // A directory that is not empty is refused without --force, and the backup in it is left alone.
  const before = snapshotTree(backupDir);
  const again = await runKv2(t, ['backup', backupDir, '--work-dir', dir]);
  assert.equal(again.status, 2);
  assert.match(again.stderr, /is not empty .*--force/);
  assert.deepEqual(snapshotTree(backupDir), before);
  const forced = await runKv2(t, ['backup', backupDir, '--work-dir', dir, '--force']);
  assert.equal(forced.status, 0, `${forced.stdout}\n${forced.stderr}`);
  assert.equal((await runKv2(t, ['backup', '--verify', backupDir])).status, 0);

  // Restore refuses a work dir whose judicator runs.
  const running = await runKv2(t, ['restore', backupDir, '--work-dir', dir]);
  assert.notEqual(running.status, 0);
  assert.match(running.stderr, /supervisor \(pid \d+\) is running in .*stop it first/);
  assert.ok(!fs.existsSync(path.join(dir, 'judicator/data/etcd_init')) || fs.readdirSync(path.join(dir, 'judicator/data/etcd_init')).length === 0);

  const damages: { what: string; damage: (copy: string) => void; message: RegExp }[] = [
    {
      what: 'a flipped byte in snapshot.db',
      damage: (copy) => {
        const file = path.join(copy, 'snapshot.db');
        const bytes = fs.readFileSync(file);
        const at = Math.floor(bytes.length / 2);
        bytes[at] = bytes[at]! ^ 0xff;
        fs.writeFileSync(file, bytes);
      },
      message: /snapshot\.db: its sha256 is [0-9a-f]+, the manifest says [0-9a-f]+: the file was damaged/,
    },
    { what: 'a deleted tasks.jsonl', damage: (copy) => fs.rmSync(path.join(copy, 'tasks.jsonl')), message: /tasks\.jsonl is missing/ },
    {
      what: 'an edited manifest',
      damage: (copy) => {
        const file = path.join(copy, 'manifest.json');
        const manifest = JSON.parse(fs.readFileSync(file, 'utf8'));
        manifest.counts.tasks += 1;
        fs.writeFileSync(file, JSON.stringify(manifest));
      },
      message: /the export does not hold what the manifest counts: 5 tasks \(manifest: 6\)/,
    },
    { what: 'a manifest that is not JSON', damage: (copy) => fs.writeFileSync(path.join(copy, 'manifest.json'), '{"format": '), message: /manifest\.json is not valid JSON/ },
    { what: 'no manifest', damage: (copy) => fs.rmSync(path.join(copy, 'manifest.json')), message: /manifest\.json is missing/ },
    {
      what: 'another CA key beside the CA',
      damage: (copy) => {
        const other = path.join(copy, 'pki/ca.key');
        fs.writeFileSync(other, fs.readFileSync(path.join(identityDir({ dir }), 'node.pem'), 'utf8').split('-----BEGIN CERTIFICATE-----')[0]!);
        // The checksum is made right: only the key's fit with the CA tells.
        const manifestFile = path.join(copy, 'manifest.json');
        const manifest = JSON.parse(fs.readFileSync(manifestFile, 'utf8'));
        const bytes = fs.readFileSync(other);
        manifest.files['pki/ca.key'] = { size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') };
        fs.writeFileSync(manifestFile, JSON.stringify(manifest));
      },
      message: /pki\/: the CA key is not the key of the CA certificate/,
    },
  ];
  for (const { what, damage, message } of damages) {
    const copy = path.join(makeTempDir(t, 'kv2-damaged-'), 'backup');
    fs.cpSync(backupDir, copy, { recursive: true });
    damage(copy);
    const verify = await runKv2(t, ['backup', '--verify', copy]);
    assert.equal(verify.status, 1, `verify of a backup with ${what}:\n${verify.stdout}`);
    assert.match(verify.stdout, /backup DAMAGED/, what);
    assert.match(verify.stdout, message, what);

    // A work dir with a judicator's data in it: restore must leave every byte as it was.
    const workDir = makeTempDir(t, 'kv2-target-');
    fs.mkdirSync(path.join(workDir, 'judicator/data/etcd/member'), { recursive: true });
    fs.writeFileSync(path.join(workDir, 'judicator/data/etcd/member/keep'), 'old data');
    const untouched = snapshotTree(workDir);
    const restore = await runKv2(t, ['restore', copy, '--work-dir', workDir]);
    assert.equal(restore.status, 1, `restore of a backup with ${what}`);
    assert.match(restore.stderr, /is damaged .*nothing was changed/, what);
    assert.match(restore.stdout, message, what);
    assert.deepEqual(snapshotTree(workDir), untouched, `restore of a backup with ${what} changed nothing`);
  }
});

test('the maintenance page\'s "modify configurations for main program in Judicator", on a running cluster, loses no task', async (t) => {
  const system = await startSystem(t, { judicators: 2, executors: 1, slots: 3 });
  const gatewayUrl = system.gateways[0]!.url;
  const gateway = new GatewayClient(gatewayUrl);
  const producer = startProducer(gateway);
  try {
    await waitFor(() => producer.accepted.length >= 10, { what: 'tasks flowing', timeoutMs: 60_000 });
    const j1 = system.judicators[0]!;
    const mainPid = readPid(path.join(j1.dir, 'judicator/data/main.pid'))!;

    // cd KV2; kv2 maintain judicator/data/main.pid — a shell we type into.
    const maintain = spawn(kv2Binary(), ['maintain', 'judicator/data/main.pid'], { cwd: j1.dir, env: { ...process.env, SHELL: '/bin/sh' }, stdio: ['pipe', 'pipe', 'pipe'] });
    t.after(() => {
      if (maintain.exitCode === null && maintain.signalCode === null) maintain.kill('SIGKILL');
    });
    let output = '';
    maintain.stdout.on('data', (chunk) => (output += chunk));
    maintain.stderr.on('data', (chunk) => (output += chunk));
    const exitCode = new Promise<number | null>((resolve) => maintain.once('exit', (code) => resolve(code)));
    await waitFor(() => output.includes('All pid files locked.'), { what: 'kv2 maintain to lock main.pid' });
    assert.match(output, new RegExp(`kill -INT ${mainPid}`));

    // Stop the main module by kill -INT, as prompted; wait for it to exit (ps -ef).
    maintain.stdin.write(`kill -INT ${mainPid}\n`);
    await waitFor(() => !isRunning(mainPid), { what: 'the main module to exit after kill -INT', timeoutMs: 60_000 });
    const acceptedWhileDown = producer.accepted.length;
    // The supervisor leaves it alone while the shell is open; the cluster serves through j2 meanwhile.
    await waitFor(() => producer.accepted.length >= acceptedWhileDown + 5, { what: 'tasks accepted while j1 main is down', timeoutMs: 60_000 });
    assert.equal(await pingJudicator(j1.ports.rpc), false, 'j1 main stays down during maintenance');

    // Edit judicator/config/main.json: another listen port and --task-max-retries.
    const newPort = await freePort();
    maintain.stdin.write(
      `node -e 'const f="judicator/config/main.json";const c=JSON.parse(require("fs").readFileSync(f));` +
        `c.listen.port=${newPort};c.advertise.port=${newPort};c.task.max_retries=7;require("fs").writeFileSync(f,JSON.stringify(c,null,4))'\n`,
    );
    // Exit the shell.
    maintain.stdin.end();
    assert.equal(await exitCode, 0, output);
    assert.match(output, /All pid files unlocked\./);

    // The module comes back with the change: on the new port, registered there, the old port closed.
    await waitFor(() => pingJudicator(newPort), { what: `j1 main back on its new port ${newPort}`, timeoutMs: 60_000 });
    assert.equal(await pingJudicator(j1.ports.rpc), false);
    const etcd = await etcdClient(t, [j1.clientUrl], j1);
    await waitFor(
      async () => parseRegistration('j1', (await etcd.get(clusterKeys().judicatorService('j1')).string()) ?? '')?.address.endsWith(`:${newPort}`),
      { what: 'j1 registered with its new port' },
    );
    assert.equal(JSON.parse(fs.readFileSync(path.join(j1.dir, 'judicator/config/main.json'), 'utf8')).task.max_retries, 7);

    const acceptedAfter = producer.accepted.length;
    await waitFor(() => producer.accepted.length >= acceptedAfter + 5, { what: 'tasks accepted after the maintenance' });
  } finally {
    await producer.stop();
  }
  // No task lost: every accepted task ends done, successfully, with its own output.
  assert.deepEqual(producer.failures, [], 'every submission was accepted');
  for (const id of producer.accepted) {
    const task = await gateway.waitDone(id, 120_000);
    assert.equal(task.status, 5, `task ${id} ends in Success: ${JSON.stringify(task)}`);
  }
  for (const [n, id] of producer.accepted.entries()) {
    const response = await fetch(`${gatewayUrl}/api/task?id=${id}&file=execute_output`, { signal: AbortSignal.timeout(30_000) });
    const output = Buffer.from(await response.arrayBuffer());
    assert.ok(output.subarray(40).equals(Buffer.from(`input ${n}data ${n}\n`)), `task ${id} ran its own input and data: ${output.subarray(40)}`);
  }
});

test('a MongoDB store: backed up with its mongodump, restored through data/mongodb_init', skipUnlessMongod('backup and restore of a MongoDB store'), async (t) => {
  const mongod = (testMongod() as { path: string }).path;
  const mongoFlags = async () => ['--store', 'mongodb', '--mongodb-exe', mongod, '--mongodb-listen-address', '127.0.0.1', '--mongodb-listen-port', String(await freePort()), '--mongodb-advertise-address', '127.0.0.1', '--mongodb-remove-after', '5'];
  const system = await startSystem(t, { judicators: 1, executors: 1, judicatorFlags: await mongoFlags() });
  const gateway = new GatewayClient(system.gateways[0]!.url);
  const ids: string[] = [];
  for (let n = 0; n < 5; n++) ids.push((await gateway.submit(taskFields(n))).id!);
  for (const id of ids) await gateway.waitDone(id, 120_000);
  const expected = new Map<string, Awaited<ReturnType<typeof clientView>>>();
  for (const id of ids) expected.set(id, await clientView(system.gateways[0]!.url, id));

  const backupDir = path.join(makeTempDir(t, 'kv2-backup-'), 'mongo');
  const backup = await runKv2(t, ['backup', backupDir, '--work-dir', system.judicators[0]!.dir]);
  assert.equal(backup.status, 0, `${backup.stdout}\n${backup.stderr}`);
  const manifest = JSON.parse(fs.readFileSync(path.join(backupDir, 'manifest.json'), 'utf8'));
  assert.equal(manifest.store, 'mongodb');
  assert.equal(manifest.mongodump.collections.task, 5);
  assert.ok(fs.existsSync(path.join(backupDir, 'mongodump', manifest.mongodump.database, 'task.bson')));
  assert.equal((await runKv2(t, ['backup', '--verify', backupDir])).status, 0);

  for (const node of [...system.gateways, ...system.executors, ...system.judicators]) await node.node.stop('SIGTERM');
  const fresh = makeTempDir(t, 'kv2-restored-');
  const restore = await runKv2(t, ['restore', backupDir, '--work-dir', fresh, '--mongodb-exe', mongod], { timeoutMs: 300_000 });
  assert.equal(restore.status, 0, `${restore.stdout}\n${restore.stderr}`);
  assert.ok(fs.readdirSync(path.join(fresh, 'judicator/data/mongodb_init')).length > 0, 'mongodb_init holds MongoDB data');

  const ports = await judicatorPorts();
  const args = judicatorArgs('r1', ports, await mongoFlags());
  const judicator = startNode(t, fresh, args);
  await waitForJudicator(judicator, ports.rpc, 240_000);
  const restored = await startGateway(t, asClusterNode('r1', fresh, ports, judicator, args));
  for (const [id, before] of expected) {
    const after = await waitFor(async () => (await new GatewayClient(restored.url).get(id)).result === 0 && clientView(restored.url, id), { what: `task ${id} back`, timeoutMs: 120_000 });
    assert.deepEqual(after.task, before.task);
    for (const file of DOWNLOADS) assert.deepEqual(after.files[file], before.files[file], `${file} of task ${id}`);
  }
});
