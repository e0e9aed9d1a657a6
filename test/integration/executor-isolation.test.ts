// Issue 5: tasks confined as a real executor confines them on this machine. A task runs as an
// unprivileged user with a clean environment, cannot read another running task's files nor the
// executor's environment; a fork bomb, a memory hog, a CPU spinner and a huge file are stopped by their
// limits and reported as such while the executor keeps working; in the sandbox a task has no network and
// can write nowhere but its own directory. Each test that needs something this machine lacks (root,
// cgroups, bwrap) says so in one line and skips.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { createLogger } from '../../src/common/logging';
import { unpackText } from '../../src/task/codec';
import { DEFAULT_TASK_MAX_SIZE } from '../../src/task/limits';
import { TaskStatus, sandboxSummary, type Task } from '../../src/task/types';
import { ConfigError } from '../../src/common/errors';
import { Cgroups } from '../../src/executor/cgroups';
import { createConfinement, type HostConfinement } from '../../src/executor/confinement';
import { TaskRun, type RunnerSettings } from '../../src/executor/runner';
import { StepLauncher } from '../../src/executor/launcher';
import { Sandbox, type SandboxWay } from '../../src/executor/sandbox';
import { makeTask, type TaskSpec } from '../helpers/task';
import { makeTempDir } from '../helpers/temp';
import { waitFor } from '../helpers/wait';

const logger = createLogger('executor-test', { maxBytes: 1 << 20, keep: 0, printToStdout: false, level: 'warn' });
const MiB = 1024 * 1024;
const isRoot = process.getuid?.() === 0;

/** The tasks here run for a while: 30 s for the execute step unless a test says otherwise. */
const withTimeout = (spec: TaskSpec): Task => makeTask({ ...spec, executeTimeout: spec.executeTimeout ?? 30 });

interface Executor {
  roleDir: string;
  dataDir: string;
  confinement: HostConfinement;
  start(spec: TaskSpec, slot?: number): TaskRun;
  run(spec: TaskSpec, slot?: number): Promise<TaskRun>;
}

/**
 * An executor as it runs from a work dir. By default that work dir's parents are searchable by anyone,
 * as /var/lib/kv2 is (bwrap then runs as the task user); `closedParent` puts it in a root-only (0700)
 * directory, where bwrap must run as root with the user switch inside it.
 */
async function executor(t: TestContext, options: { sandbox?: 'auto' | 'none' | 'bwrap'; ways?: SandboxWay[]; allowNetwork?: boolean; closedParent?: boolean } = {}): Promise<Executor> {
  const base = makeTempDir(t, 'kv2-isolation-');
  fs.chmodSync(base, options.closedParent ? 0o700 : 0o755);
  const roleDir = path.join(base, 'executor');
  const dataDir = path.join(roleDir, 'data', 'main');
  fs.mkdirSync(dataDir, { recursive: true });
  fs.mkdirSync(path.join(roleDir, 'config'), { recursive: true });
  fs.writeFileSync(path.join(roleDir, 'config', 'main.json'), '{"cluster_token":"s3cret-token"}', { mode: 0o600 });
  const confinement = await createConfinement(
    {
      userGroup: null,
      slots: 3,
      sandbox: options.sandbox ?? 'auto',
      sandboxWays: options.ways,
      allowNetwork: options.allowNetwork ?? false,
      limits: {
        defaults: { cpu_time: 0, memory: 512 * MiB, processes: 128, file_size: 64 * MiB, output: MiB },
        maxima: { cpu_time: 0, memory: 2048 * MiB, processes: 1024, file_size: 1024 * MiB, output: 8 * MiB },
      },
      executorName: `isolation-${process.pid}`,
      roleDir,
    },
    logger,
  );
  t.after(() => confinement.close());
  fs.chmodSync(dataDir, confinement.usesTaskUsers ? 0o711 : 0o700);
  const settings: RunnerSettings = {
    dataDir,
    outputLimit: MiB,
    zipLimits: { maxBytes: 64 * MiB, maxFiles: 1000 },
    taskMaxSize: DEFAULT_TASK_MAX_SIZE,
    confinement,
  };
  const start = (spec: TaskSpec, slot = 0) => new TaskRun(withTimeout(spec), slot, settings, logger, () => undefined);
  return {
    roleDir,
    dataDir,
    confinement,
    start,
    run: async (spec, slot) => {
      const run = start(spec, slot);
      await run.done;
      return run;
    },
  };
}

const out = (run: TaskRun) => unpackText(run.result?.execute_output);
const err = (run: TaskRun) => unpackText(run.result?.execute_error);

function cgroupsHere(): boolean {
  const probe = Cgroups.detect(`probe-${process.pid}`, logger);
  void probe?.close();
  return probe !== undefined && probe.memory && probe.pids;
}

async function bwrapHere(ways?: SandboxWay[]): Promise<boolean> {
  const launcher = new StepLauncher(logger);
  try {
    return (await Sandbox.detect('bwrap', '/nonexistent/executor', logger, { launcher, identities: [], dataDir: '/nonexistent/executor/data/main', ways })) !== undefined;
  } catch {
    return false;
  } finally {
    await launcher.close();
  }
}

test('a task runs as an unprivileged user without supplementary groups, with a clean environment, in its own 0700 dir', async (t) => {
  if (!isRoot) return t.skip('not root: tasks run as the executor\'s own user here');
  process.env.KV2_ISOLATION_SECRET = 'do-not-leak';
  t.after(() => delete process.env.KV2_ISOLATION_SECRET);
  const e = await executor(t);
  const run = await e.run({ execute: 'id -u; id -G | wc -w; env | cut -d= -f1 | sort | tr "\\n" " "; echo; stat -c "%U %a" .; echo "$HOME"' });
  assert.equal(run.status, TaskStatus.SUCCESS, err(run));
  const [uid, groups, env, owner, home] = out(run).split('\n');
  assert.notEqual(uid, '0');
  assert.equal(groups, '1', 'only its own group');
  const names = env!.trim().split(' ');
  for (const name of names) assert.ok(['HOME', 'LANG', 'PATH', 'PWD', 'SHLVL', '_', 'OLDPWD'].includes(name), `unexpected variable ${name}`);
  assert.ok(!out(run).includes('do-not-leak'));
  assert.match(owner!, /^kv2-task-0 700$/);
  assert.equal(home, path.join(e.dataDir, run.id, 'source'));
});

// The last: the way a container without capabilities gets (the outer /proc, which lists every process).
for (const [sandbox, closedParent, ways] of [['none', false], ['auto', false], ['auto', true], ['bwrap', false, ['task-user-outer-proc']]] as const) {
  test(`[sandbox ${ways?.[0] ?? sandbox}${closedParent ? ', bwrap as root' : ''}] a task cannot read another running task's directory nor the executor's environment or config`, async (t) => {
    if (!isRoot) return t.skip('not root: tasks share the executor\'s user here, so nothing separates them but the sandbox');
    if (ways && !(await bwrapHere([...ways]))) return t.skip(`bwrap cannot make a sandbox here the ${ways[0]} way`);
    process.env.KV2_ISOLATION_SECRET = 'do-not-leak';
    t.after(() => delete process.env.KV2_ISOLATION_SECRET);
    const e = await executor(t, { sandbox, closedParent, ways: ways && [...ways] });
    const victim = e.start({ execute: 'echo top-secret > secret.txt; sleep 30', executeTimeout: 60 }, 0);
    t.after(() => victim.cancel());
    const victimDir = path.join(e.dataDir, victim.id, 'source');
    await waitFor(() => fs.existsSync(path.join(victimDir, 'secret.txt')), { what: 'the victim task to write its secret' });
    const attacker = await e.run(
      {
        execute: [
          `cat ${victimDir}/secret.txt`,
          `ls ${e.dataDir}`,
          'cat /proc/[0-9]*/cwd/secret.txt',
          `cat /proc/${process.pid}/environ`,
          'cat /proc/[0-9]*/environ | tr "\\0" "\\n" | grep KV2_ISOLATION',
          `cat ${e.roleDir}/config/main.json`,
          'echo done',
        ].join(' 2>/dev/null; ') + ' 2>/dev/null',
      },
      1,
    );
    assert.equal(out(attacker).trim(), 'done', `the attacker read: ${out(attacker)}`);
    victim.cancel();
    await victim.done;
  });
}

for (const sandbox of ['none', 'auto'] as const) {
  test(`[sandbox ${sandbox}] an executor whose work dir is in a root-only directory runs tasks as their user, with their input`, async (t) => {
    if (!isRoot) return t.skip('not root: tasks run as the executor\'s own user here');
    const e = await executor(t, { sandbox, closedParent: true });
    const run = await e.run({ compile: 'echo compiled', execute: 'id -u; cat', input: 'the input\n' });
    assert.equal(run.status, TaskStatus.SUCCESS, err(run));
    const [uid, input] = out(run).split('\n');
    assert.notEqual(uid, '0');
    assert.equal(input, 'the input');
  });
}

test('a fork bomb is stopped by the process limit and the executor keeps working', async (t) => {
  if (!isRoot || !cgroupsHere()) return t.skip('no pids cgroup here (needs root and a pids controller)');
  const e = await executor(t);
  const bomb = await e.run({ execute: 'bomb() { bomb | bomb & }; bomb; sleep 15', executeLimits: { processes: 64 }, executeTimeout: 20 });
  assert.equal(bomb.status, TaskStatus.RUN_FAILED);
  assert.equal(bomb.result!.execute!.stopped, 'processes');
  assert.equal(err(bomb), 'Execution process limitation exceeded.');
  assert.ok(bomb.result!.execute!.wall_ms < 10_000, `stopped after ${bomb.result!.execute!.wall_ms} ms`);
  const after = await e.run({ execute: 'echo still working' });
  assert.equal(out(after), 'still working\n');
});

test('a memory hog is stopped and reported as such, with its peak memory', async (t) => {
  if (!isRoot || !cgroupsHere()) return t.skip('no memory cgroup here (needs root and a memory controller)');
  const e = await executor(t);
  // bash keeps a command substitution in memory: it grows until something stops it.
  const hog = await e.run({ execute: 's=$(head -c 1000M /dev/zero | tr "\\0" a); echo ${#s}', executeLimits: { memory: 64 * MiB } });
  assert.equal(hog.status, TaskStatus.RUN_FAILED);
  assert.equal(hog.result!.execute!.stopped, 'memory');
  assert.equal(err(hog), 'Execution memory limitation exceeded.');
  const peak = hog.result!.execute!.memory_kb!;
  assert.ok(peak > 32 * 1024 && peak <= 66 * 1024, `peak ${peak} KiB`);
  const fine = await e.run({ execute: 's=$(head -c 10M /dev/zero | tr "\\0" a); echo ${#s}' });
  assert.equal(out(fine), `${10 * MiB}\n`);
  assert.equal(fine.status, TaskStatus.SUCCESS);
  assert.ok(fine.result!.execute!.memory_kb! > 0);
  assert.ok(fine.result!.execute!.cpu_ms !== null);
});

test('CPU time and file size limits stop the step and say which', async (t) => {
  const e = await executor(t);
  const spinner = await e.run({ execute: 'while :; do :; done', executeLimits: { cpu_time: 1 }, executeTimeout: 20 });
  assert.equal(spinner.status, TaskStatus.RUN_FAILED);
  assert.equal(spinner.result!.execute!.stopped, 'cpu_time');
  assert.equal(err(spinner), 'Execution CPU time limitation exceeded.');
  assert.ok(spinner.result!.execute!.wall_ms < 10_000);

  const writer = await e.run({ execute: 'head -c 10M /dev/zero > big.bin', executeLimits: { file_size: MiB } });
  assert.equal(writer.status, TaskStatus.RUN_FAILED);
  assert.equal(writer.result!.execute!.stopped, 'file_size');
  assert.equal(err(writer), 'Execution file size limitation exceeded.');
});

test('limits a task asks for are bounded by the executor maxima', async (t) => {
  const e = await executor(t);
  const run = await e.run({ execute: 'ulimit -f; ulimit -t', executeLimits: { file_size: 1024 * 1024 * 1024 * 1024, cpu_time: 5 } });
  assert.equal(run.status, TaskStatus.SUCCESS, err(run));
  // ulimit -f counts 1024-byte blocks: the 1 TiB asked for is capped at the 1 GiB maximum.
  assert.equal(out(run), `${(1024 * MiB) / 1024}\n5\n`);
});

test('limits are set to the byte, also those the shell\'s ulimit could not say in its units', async (t) => {
  const e = await executor(t);
  const run = await e.run({ execute: 'grep -E "^Max (file size|cpu time|core file size)" /proc/self/limits | tr -s " "', executeLimits: { file_size: 1000, cpu_time: 2 } });
  assert.equal(run.status, TaskStatus.SUCCESS, err(run));
  assert.equal(out(run), 'Max cpu time 2 3 seconds \nMax file size 1000 1000 bytes \nMax core file size 0 0 bytes \n');
});

const SANDBOXES: { closedParent: boolean; ways?: SandboxWay[]; what: string }[] = [
  { closedParent: false, what: '' },
  { closedParent: true, what: ' (bwrap as root: the work dir is in a root-only dir)' },
  // What a container without capabilities gets: the kernel refuses a new /proc there.
  { closedParent: false, ways: ['task-user-outer-proc'], what: ' (as the task user with the outer /proc, as in a container)' },
];
for (const { closedParent, ways, what } of SANDBOXES) test(`in the sandbox${what} a task has no network, a private /tmp, and can write only its own directory`, async (t) => {
  if (!(await bwrapHere(ways))) return t.skip('bwrap does not work here: no sandbox to test');
  if (closedParent && !isRoot) return t.skip('not root: bwrap runs as the executor\'s user');
  const e = await executor(t, { sandbox: 'bwrap', closedParent, ways });
  // Where user namespaces work, bwrap runs as the task user (one exec per step) unless it cannot reach the work dir.
  assert.equal(e.confinement.sandboxUser, closedParent ? 'root' : 'task-user');
  const server = net.createServer((socket) => socket.end('hello from outside\n'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => server.close());
  const port = (server.address() as net.AddressInfo).port;
  const outsideTmp = makeTempDir(t, 'kv2-outside-');
  const shmMark = `kv2-shm-${process.pid}-${Date.now()}`;
  const run = await e.run({
    execute: [
      `(exec 3<>/dev/tcp/127.0.0.1/${port} && echo NET-OPEN) 2>/dev/null || echo no-network`,
      `touch /etc/kv2-escape 2>/dev/null && echo WROTE-ETC || echo etc-read-only`,
      `touch ${outsideTmp}/escape 2>/dev/null && echo WROTE-TMP || echo tmp-private`,
      `ls ${e.roleDir}/config 2>/dev/null | grep -q main.json && echo SAW-CONFIG || echo role-hidden`,
      'touch /tmp/scratch && echo tmp-writable',
      'touch mine && echo own-dir-writable',
      // Its own directory by its absolute path: HOME, cd, and a program run from there.
      'cd "$HOME" && echo home-ok',
      'cp "$(type -P true)" "$HOME/own-true" && "$HOME/own-true" && echo runs-by-absolute-path',
      `head -c 1048576 /dev/zero > /dev/shm/${shmMark} && echo shm-writable`,
    ].join('; '),
  });
  assert.equal(run.status, TaskStatus.SUCCESS, err(run));
  assert.equal(out(run), 'no-network\netc-read-only\ntmp-private\nrole-hidden\ntmp-writable\nown-dir-writable\nhome-ok\nruns-by-absolute-path\nshm-writable\n');
  // Its /dev/shm was its own, and nothing of it is left on the machine's.
  assert.equal(fs.existsSync(`/dev/shm/${shmMark}`), false);
  const who = await e.run({ execute: 'id -u; grep -E "^(CapEff|NoNewPrivs)" /proc/self/status | tr -s "\t" " "' });
  assert.notEqual(out(who).split('\n')[0], '0', 'the task is not root in the sandbox');
  assert.match(out(who), /CapEff: 0+\nNoNewPrivs: 1\n$/);
  // Its own pid namespace either way; /proc lists only its processes unless it is the outer one.
  const pids = await e.run({ execute: 'echo $$; ls /proc | grep -c "^[0-9]"' });
  const [own, listed] = out(pids).split('\n').map(Number);
  assert.ok(own! < 10, `a pid of its own namespace (${own})`);
  if (ways?.includes('task-user-outer-proc')) assert.ok(listed! > 10, `the outer /proc lists every process (${listed})`);
  else assert.ok(listed! < 10, `its own /proc lists only its processes (${listed})`);
  assert.equal(fs.existsSync('/etc/kv2-escape'), false);
  assert.deepEqual(fs.readdirSync(outsideTmp), []);
});

test('without a sandbox, each step has its own /tmp and /dev/shm, emptied when it ends, and its own dir by absolute path', async (t) => {
  if (!isRoot) return t.skip('not root: a private /tmp needs a mount namespace, and tasks run as the executor\'s user here');
  const e = await executor(t, { sandbox: 'none' });
  assert.match(e.confinement.state.how, /own \/tmp/, e.confinement.state.how);
  const mark = `kv2-scratch-${process.pid}-${Date.now()}`;
  const first = await e.run({
    execute: [
      `echo one > /tmp/${mark}`,
      `head -c 1048576 /dev/zero > /dev/shm/${mark}`,
      'ls -A /dev/shm | wc -l',
      'cd "$HOME" && echo home-ok',
      'cp "$(type -P true)" "$HOME/own-true" && "$HOME/own-true" && echo runs-by-absolute-path',
    ].join('; '),
  });
  assert.equal(first.status, TaskStatus.SUCCESS, err(first));
  assert.equal(out(first), '1\nhome-ok\nruns-by-absolute-path\n', 'its /dev/shm held only its own file');
  // Nothing of it on the machine, nor for the next task.
  assert.equal(fs.existsSync(`/tmp/${mark}`), false);
  assert.equal(fs.existsSync(`/dev/shm/${mark}`), false);
  const second = await e.run({ execute: `ls /tmp/${mark} /dev/shm/${mark} 2>/dev/null; ls -A /tmp | wc -l` }, 1);
  assert.equal(out(second), '1\n', 'only the way to its own work dir is in its /tmp');
});

test('an executor whose sandbox does not work refuses to start, saying why and what to do', async (t) => {
  const saved = process.env.KV2_BWRAP_BINARY;
  process.env.KV2_BWRAP_BINARY = '/bin/false';
  t.after(() => (saved === undefined ? delete process.env.KV2_BWRAP_BINARY : (process.env.KV2_BWRAP_BINARY = saved)));
  for (const sandbox of ['auto', 'bwrap'] as const) {
    await assert.rejects(
      executor(t, { sandbox }),
      (error: Error) => error instanceof ConfigError && /no working task sandbox/.test(error.message) && /--main-task-sandbox none/.test(error.message),
    );
  }
  // Said explicitly, none runs (and says so in its state).
  const e = await executor(t, { sandbox: 'none' });
  assert.equal(e.confinement.state.kind, 'none');
  assert.equal(sandboxSummary(e.confinement.state).split(';')[0], 'NONE');
});

test('a task that asks for the network gets it only when the executor allows it', async (t) => {
  if (!(await bwrapHere())) return t.skip('bwrap does not work here: without a sandbox every task has the network');
  const server = net.createServer((socket) => socket.end('hello\n'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => server.close());
  const port = (server.address() as net.AddressInfo).port;
  const probe = `(exec 3<>/dev/tcp/127.0.0.1/${port} && head -1 <&3) 2>/dev/null || echo no-network`;
  const strict = await executor(t, { sandbox: 'bwrap', allowNetwork: false });
  assert.equal(out(await strict.run({ execute: probe, network: true })), 'no-network\n');
  const open = await executor(t, { sandbox: 'bwrap', allowNetwork: true });
  assert.equal(out(await open.run({ execute: probe, network: true })), 'hello\n');
  assert.equal(out(await open.run({ execute: probe })), 'no-network\n', 'only tasks that ask');
});

test('a background child is gone after a timeout and after a cancel, even one that left the process group', async (t) => {
  const e = await executor(t);
  const mark = String(700_000 + Math.floor(Math.random() * 99_999));
  const alive = () => fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p)).some((p) => {
    try {
      return fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(`sleep\0${mark}`) && !fs.readFileSync(`/proc/${p}/stat`, 'utf8').includes(') Z ');
    } catch {
      return false;
    }
  });
  if (!(isRoot && cgroupsHere()) && !(await bwrapHere())) return t.skip('neither cgroups nor a pid namespace here: a process that calls setsid escapes its group');
  const timedOut = await e.run({ execute: `setsid sleep ${mark} & sleep ${mark}`, executeTimeout: 1 });
  assert.equal(timedOut.result!.execute!.stopped, 'time');
  assert.equal(alive(), false, 'the setsid child died with its step');
  const cancelled = e.start({ execute: `setsid sleep ${mark} & sleep ${mark}` });
  await waitFor(() => alive(), { what: 'the task to start its sleeps' });
  cancelled.cancel();
  await cancelled.done;
  assert.equal(alive(), false);
});
