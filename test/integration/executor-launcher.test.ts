// Issue 15: the step launcher (src/executor/step-launcher.c) starts a step with one exec, already in its
// own session, cgroup and rlimits and as the task user (read back from /proc inside the step); reports its
// exit status with wait4's rusage; caps its output; refuses malformed requests and goes on serving; kills
// what it holds when it is told to stop; and a launcher that dies is noticed by the executor, which fails
// the running steps saying so, leaves nothing of them running, and starts a new launcher.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { findOnPath } from '../../src/common/assets';
import { createLogger } from '../../src/common/logging';
import { Cgroups } from '../../src/executor/cgroups';
import { PlainConfinement, createConfinement, type HostConfinement } from '../../src/executor/confinement';
import { StepLauncher, encodeRequest, type LaunchEnd, type LaunchSpec } from '../../src/executor/launcher';
import { launcherPath } from '../../src/executor/launcher-binary';
import { TaskRun } from '../../src/executor/runner';
import { TaskUsers } from '../../src/executor/task-user';
import { unpackText } from '../../src/task/codec';
import { DEFAULT_TASK_MAX_SIZE } from '../../src/task/limits';
import { TaskStatus } from '../../src/task/types';
import { processesMentioning } from '../helpers/process-table';
import { makeTask } from '../helpers/task';
import { makeTempDir } from '../helpers/temp';
import { waitFor } from '../helpers/wait';

const logger = createLogger('launcher-test', { maxBytes: 1 << 20, keep: 0, printToStdout: false, level: 'fatal' });
const isRoot = process.getuid?.() === 0;
const bash = findOnPath('bash')!;
const MiB = 1024 * 1024;

function launcher(t: TestContext): StepLauncher {
  const made = new StepLauncher(logger);
  t.after(() => made.close());
  return made;
}

/** Runs a bash script as a step; resolves once its output is all in. */
async function run(l: StepLauncher, script: string, spec: Partial<LaunchSpec> = {}): Promise<{ end: LaunchEnd; pid: number | undefined; stdout: string; stderr: string; stdoutBytes: number }> {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const step = l.launch(
    { argv: [bash, '-c', script], cwd: '/', env: { PATH: process.env.PATH }, stdinFile: null, outputLimit: MiB, ...spec },
    { stdout: (chunk) => out.push(chunk), stderr: (chunk) => err.push(chunk) },
  );
  const pid = await step.started;
  const end = await step.ended;
  await step.closed;
  const stdout = Buffer.concat(out);
  return { end, pid, stdout: stdout.toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), stdoutBytes: stdout.length };
}

function statusLine(status: string, name: string): string {
  return (new RegExp(`^${name}:[ \\t]*(.*)$`, 'm').exec(status)?.[1] ?? '').trim().replace(/\s+/g, ' ');
}

function limitLine(limits: string, name: string): string {
  return (new RegExp(`^${name}\\s{2,}(\\S+)\\s+(\\S+)`, 'm').exec(limits) ?? []).slice(1).join(' ');
}

test('a step starts in its own session, with its rlimits to the byte, as a child of the launcher', async (t) => {
  const l = launcher(t);
  const { end, pid, stdout } = await run(l, 'echo "$$ $PPID $(ps -o pgid= -o sid= -p $$)"; echo ---; cat /proc/self/limits; echo ---; env | sort', {
    rlimits: [
      { name: 'core', soft: 0, hard: 0 },
      { name: 'cpu', soft: 7, hard: 8 },
      { name: 'fsize', soft: 1000, hard: 1000 },
      { name: 'as', soft: 3 * 1024 * MiB + 1, hard: 3 * 1024 * MiB + 1 },
    ],
    env: { PATH: process.env.PATH, HOME: '/nonexistent', KV2_MARK: 'x y' },
  });
  assert.equal(end.exitCode, 0, end.error ?? '');
  const [ids, limits, env] = stdout.split('---\n');
  const [self, parent, pgid, sid] = ids!.trim().split(/\s+/).map(Number);
  assert.equal(self, pid);
  assert.equal(pgid, pid, 'it leads its process group');
  assert.equal(sid, pid, 'and its session');
  assert.equal(parent, l.pid, "the launcher is its parent, not the executor's event loop");
  assert.equal(limitLine(limits!, 'Max core file size'), '0 0');
  assert.equal(limitLine(limits!, 'Max cpu time'), '7 8');
  assert.equal(limitLine(limits!, 'Max file size'), '1000 1000');
  assert.equal(limitLine(limits!, 'Max address space'), `${3 * 1024 * MiB + 1} ${3 * 1024 * MiB + 1}`);
  const names = env!.trim().split('\n').map((line) => line.split('=')[0]);
  for (const name of names) assert.ok(['HOME', 'KV2_MARK', 'PATH', 'PWD', 'SHLVL', '_'].includes(name!), `unexpected variable ${name}`);
  assert.match(env!, /^KV2_MARK=x y$/m);
});

test('as root: a step runs as the task user (no groups, no capabilities, no new privileges) in its cgroups', async (t) => {
  if (!isRoot) return t.skip('not root: the launcher cannot switch users or join cgroups here');
  const users = TaskUsers.resolve(null, 1, logger)!;
  const identity = users.forSlot(0);
  const cgroups = Cgroups.detect(`launcher-test-${process.pid}`, logger);
  t.after(() => cgroups?.close());
  const cgroup = await cgroups?.create(0, { memory: 256 * MiB, processes: 64 });
  if (cgroup) t.after(() => cgroups!.retire(cgroup.dirs));
  const l = launcher(t);
  const { end, stdout } = await run(l, 'cat /proc/self/status; echo ---; cat /proc/self/cgroup; echo ---; cat /proc/self/limits', {
    user: { uid: identity.uid, gid: identity.gid },
    cgroups: cgroup?.procsFiles ?? [],
    rlimits: [{ name: 'nproc', soft: 77, hard: 77 }],
  });
  assert.equal(end.exitCode, 0, end.error ?? '');
  const [status, membership, limits] = stdout.split('---\n');
  assert.equal(statusLine(status!, 'Uid'), `${identity.uid} ${identity.uid} ${identity.uid} ${identity.uid}`);
  assert.equal(statusLine(status!, 'Gid'), `${identity.gid} ${identity.gid} ${identity.gid} ${identity.gid}`);
  assert.equal(statusLine(status!, 'Groups'), '', 'no supplementary groups');
  for (const set of ['CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb']) assert.match(statusLine(status!, set), /^0+$/, set);
  assert.equal(statusLine(status!, 'NoNewPrivs'), '1');
  assert.equal(limitLine(limits!, 'Max processes'), '77 77');
  if (!cgroup) return t.diagnostic('no cgroups here: membership not checked');
  for (const dir of cgroup.dirs) {
    const leaf = path.basename(dir);
    assert.ok(membership!.split('\n').some((line) => line.endsWith(`/${leaf}`)), `in ${dir}: ${membership}`);
  }
});

test("the end of a step comes with wait4's rusage: exit status, CPU time, peak memory, wall time", async (t) => {
  const l = launcher(t);
  // bash's `times` prints its own and its waited children's CPU: wait4 counts the same, and a little more.
  const burn = await run(l, 's=$(head -c 40M /dev/zero | tr "\\0" a); head -c 100M /dev/zero | md5sum >/dev/null; times; exit 7');
  assert.equal(burn.end.exitCode, 7);
  assert.equal(burn.end.signal, null);
  const usage = burn.end.usage!;
  const seconds = [...burn.stdout.matchAll(/(\d+)m([\d.]+)s/g)].map((m) => Number(m[1]) * 60 + Number(m[2]));
  assert.equal(seconds.length, 4, burn.stdout);
  const reportedUs = seconds.reduce((a, b) => a + b, 0) * 1e6;
  const usageUs = usage.userUs + usage.systemUs;
  assert.ok(usageUs >= reportedUs - 2_000 && usageUs <= reportedUs + 200_000, `wait4 ${usageUs} us, bash's times ${reportedUs} us`);
  assert.ok(usageUs > 20_000, `${usageUs} us of CPU`);
  // bash held the 40 MiB string (and its copy while reading it): the largest process peaked above that.
  assert.ok(usage.maxRssKb > 40 * 1024, `peak ${usage.maxRssKb} KiB`);

  // In bubblewrap the step's commands run under the sandbox's init, which bwrap's monitor does not wait
  // for: the launcher reaps it (its subreaper) and counts it in the step.
  const bwrap = findOnPath('bwrap');
  if (bwrap) {
    const sandboxed = await run(l, '', {
      argv: [bwrap, '--unshare-user', '--unshare-pid', '--unshare-net', '--die-with-parent', '--ro-bind', '/', '/', '--proc', '/proc', '--dev', '/dev', '--', bash, '-c', 'head -c 100M /dev/zero | md5sum >/dev/null; times'],
    });
    if (sandboxed.end.exitCode === 0) {
      const inside = [...sandboxed.stdout.matchAll(/(\d+)m([\d.]+)s/g)].reduce((sum, m) => sum + (Number(m[1]) * 60 + Number(m[2])) * 1e6, 0);
      const counted = sandboxed.end.usage!.userUs + sandboxed.end.usage!.systemUs;
      assert.ok(counted >= inside - 2_000, `wait4 counted ${counted} us, the sandboxed bash's times ${inside} us`);
    } else {
      t.diagnostic(`bwrap does not work here (${sandboxed.stderr.trim()}): its rusage not checked`);
    }
  }

  const slept = await run(l, 'sleep 0.3');
  assert.ok(slept.end.usage!.wallUs >= 300_000 && slept.end.usage!.wallUs < 10_000_000, `wall ${slept.end.usage!.wallUs} us`);
  const killed = await run(l, 'kill -USR1 $$');
  assert.deepEqual([killed.end.exitCode, killed.end.signal], [null, 'SIGUSR1']);
});

test('output past the cap: one byte more is relayed and the step is killed', async (t) => {
  const l = launcher(t);
  const { end, stdoutBytes } = await run(l, 'yes kv2', { outputLimit: 1000 });
  assert.equal(stdoutBytes, 1001);
  assert.equal(end.signal, 'SIGKILL');
});

test('a step that cannot start says why: a program that is not there, a cgroup that is not one', async (t) => {
  const l = launcher(t);
  const missing = await run(l, '', { argv: ['/nonexistent/program'] });
  assert.equal(missing.end.exitCode, 127);
  assert.match(missing.end.error!, /^cannot start \/nonexistent\/program: No such file or directory/);
  const fake = path.join(makeTempDir(t), 'cgroup.procs');
  fs.writeFileSync(fake, '');
  const notCgroup = await run(l, 'echo ran', { cgroups: [fake] });
  assert.match(notCgroup.end.error!, /is not on a cgroup file system/);
  assert.equal(notCgroup.stdout, '');
  assert.equal(fs.readFileSync(fake, 'utf8'), '', 'nothing written into it');
});

/** The launcher spoken to byte by byte: frames in, replies out. */
function rawLauncher(t: TestContext) {
  const child = spawn(launcherPath(), [], { stdio: ['pipe', 'pipe', 'pipe'], env: {} });
  t.after(() => child.kill('SIGKILL'));
  let buffer = Buffer.alloc(0);
  const replies: { type: string; id: number; payload: string }[] = [];
  child.stdout.on('data', (chunk: Buffer) => {
    buffer = Buffer.concat([buffer, chunk]);
    while (buffer.length >= 9 && buffer.length >= 9 + buffer.readUInt32LE(5)) {
      const length = buffer.readUInt32LE(5);
      replies.push({ type: String.fromCharCode(buffer[0]!), id: buffer.readUInt32LE(1), payload: buffer.subarray(9, 9 + length).toString('utf8') });
      buffer = buffer.subarray(9 + length);
    }
  });
  const frame = (fields: string[], terminate = true) => {
    const payload = Buffer.from(fields.join('\0') + (terminate ? '\0' : ''));
    const head = Buffer.alloc(4);
    head.writeUInt32LE(payload.length);
    return Buffer.concat([head, payload]);
  };
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, replies, frame, exited };
}

test('malformed requests are refused, each saying why, and the launcher goes on serving', async (t) => {
  const { child, replies, frame, exited } = rawLauncher(t);
  await waitFor(() => replies.some((r) => r.type === 'H'), { what: 'the hello' });
  assert.equal(replies[0]!.payload, 'kv2-step-launcher 2');
  const good = (id: number) => ['op=start', `id=${id}`, `argv=${bash}`, 'argv=-c', 'argv=echo ok', 'cwd=/', 'output_limit=100'];
  const bad: [string, string[], RegExp][] = [
    ['unknown field', [...good(1), 'colour=blue'], /unknown field colour/],
    ['no argv', ['op=start', 'id=2', 'cwd=/', 'output_limit=100'], /argv must start with the program's absolute path/],
    ['relative program', ['op=start', 'id=3', 'argv=bash', 'cwd=/', 'output_limit=100'], /absolute path/],
    ['uid 0', [...good(4), 'uid=0', 'gid=0'], /uid must be given once, not 0/],
    ['uid without gid', [...good(5), 'uid=1000'], /uid and gid go together/],
    ['soft above hard', [...good(6), 'rlimit=cpu:5:4'], /bad rlimit cpu:5:4/],
    ['unknown rlimit', [...good(7), 'rlimit=rss:1:1'], /bad rlimit/],
    ['not a cgroup.procs', [...good(8), 'cgroup=/etc/passwd'], /cgroup field/],
    ['a ".." in cwd', ['op=start', 'id=9', `argv=${bash}`, 'cwd=/tmp/../etc', 'output_limit=100'], /cwd must be given once, a plain absolute path/],
    ['no output limit', ['op=start', 'id=10', `argv=${bash}`, 'cwd=/'], /no output_limit/],
    ['a number with junk', [...good(11).slice(0, -1), 'output_limit=100k'], /output_limit/],
    ['twice the same id', ['op=start', 'id=12', 'id=13', `argv=${bash}`, 'cwd=/', 'output_limit=1'], /id must be given once/],
    ['an op it does not know', ['id=14', 'op=kill'], /op must be given once, as start/],
  ];
  for (const [, fields] of bad) child.stdin.write(frame(fields));
  child.stdin.write(frame(good(15), false));
  child.stdin.write(frame(good(16)));
  await waitFor(() => replies.some((r) => r.type === 'C' && r.id === 16), { what: 'the good request after the bad ones to end' });
  for (const [what, fields, reason] of bad) {
    const id = Number(fields.find((f) => f.startsWith('id='))?.slice(3));
    const answer = replies.filter((r) => r.id === id || (what === 'twice the same id' && r.id === 12));
    assert.equal(answer.length, 1, `${what}: ${JSON.stringify(answer)}`);
    assert.equal(answer[0]!.type, 'R', what);
    assert.match(answer[0]!.payload, reason, what);
  }
  const unterminated = replies.filter((r) => r.type === 'R' && r.id === 0);
  assert.equal(unterminated.length, 1);
  assert.match(unterminated[0]!.payload, /not NUL-terminated/);
  // The protocol's order: 'P' first, 'C' last; output may still arrive after 'X' (the reap), never after 'C'.
  const types = replies.filter((r) => r.id === 16).map((r) => r.type);
  assert.equal(types[0], 'P');
  assert.equal(types[types.length - 1], 'C');
  assert.deepEqual([...types].sort(), ['C', 'O', 'P', 'X']);
  assert.equal(replies.find((r) => r.id === 16 && r.type === 'O')!.payload, 'ok\n');

  // A length it cannot trust: it says so and stops, as the executor then restarts it.
  const huge = Buffer.alloc(4);
  huge.writeUInt32LE(10 * MiB);
  child.stdin.write(huge);
  assert.equal(await exited, 2);
  await waitFor(() => replies.some((r) => r.type === 'R' && /more than 65536: the launcher stops/.test(r.payload)), { what: 'the refusal of the huge request' });
});

/** The `sleep <mark>` processes themselves (not the shell whose command line names them). */
function sleepers(mark: string) {
  return processesMentioning(`sleep ${mark}`).filter((p) => p.cmdline === `sleep ${mark}`);
}

test('a launcher told to stop (the executor exits) kills every step it holds', async (t) => {
  const l = launcher(t);
  const mark = String(800_000 + Math.floor(Math.random() * 99_999));
  const step = l.launch({ argv: [bash, '-c', `sleep ${mark} & setsid sleep ${mark} & sleep ${mark}`], cwd: '/', env: {}, stdinFile: null, outputLimit: 100 }, { stdout: () => undefined, stderr: () => undefined });
  await waitFor(() => sleepers(mark).length === 3, { what: 'the sleeps to run' });
  await l.close();
  const end = await step.ended;
  assert.match(end.error!, /the step launcher stopped/);
  // The one that left the group with setsid is not the launcher's to find without a cgroup: the executor's
  // cgroup sweep gets it. The group itself is gone.
  await waitFor(() => sleepers(mark).length <= 1, { what: 'the group to die', timeoutMs: 5_000 });
  for (const p of sleepers(mark)) process.kill(p.pid, 'SIGKILL');
});

for (const mode of ['plain', 'confined'] as const) {
  test(`[${mode}] a launcher that dies is noticed: the running step fails saying so, nothing of it survives, the next step gets a new launcher`, async (t) => {
    const base = makeTempDir(t, 'kv2-launcher-');
    fs.chmodSync(base, 0o755);
    const roleDir = path.join(base, 'executor');
    const dataDir = path.join(roleDir, 'data', 'main');
    fs.mkdirSync(dataDir, { recursive: true, mode: 0o711 });
    const confinement: PlainConfinement | HostConfinement =
      mode === 'plain'
        ? new PlainConfinement(logger)
        : await createConfinement(
            {
              userGroup: null,
              slots: 1,
              sandbox: 'auto',
              allowNetwork: false,
              limits: {
                defaults: { cpu_time: 0, memory: 256 * MiB, processes: 64, file_size: 64 * MiB, output: MiB },
                maxima: { cpu_time: 0, memory: 0, processes: 0, file_size: 0, output: 0 },
              },
              executorName: `launcher-test-${process.pid}`,
              roleDir,
            },
            logger,
          );
    t.after(() => confinement.close());
    const settings = { dataDir, outputLimit: MiB, zipLimits: { maxBytes: MiB, maxFiles: 10 }, taskMaxSize: DEFAULT_TASK_MAX_SIZE, confinement };
    const mark = String(800_000 + Math.floor(Math.random() * 99_999));
    const victim = new TaskRun(makeTask({ compile: `sleep ${mark} & sleep ${mark}`, compileTimeout: 60 }), 0, settings, logger, () => undefined);
    await waitFor(() => sleepers(mark).length === 2, { what: 'the sleeps to run' });
    const first = confinement.launcherPid!;
    process.kill(first, 'SIGKILL');
    await victim.done;
    assert.equal(victim.status, TaskStatus.COMPILE_FAILED);
    assert.match(unpackText(victim.result!.compile_error), /^Unknown error\. the step launcher died \(SIGKILL\); the step was stopped$/);
    assert.deepEqual(sleepers(mark), [], 'nothing of the step survives its launcher');

    const next = new TaskRun(makeTask({ execute: 'echo fine' }), 0, settings, logger, () => undefined);
    await next.done;
    assert.equal(next.status, TaskStatus.SUCCESS, unpackText(next.result?.compile_error) + unpackText(next.result?.execute_error));
    assert.equal(unpackText(next.result!.execute_output), 'fine\n');
    assert.ok(confinement.launcherPid !== undefined && confinement.launcherPid !== first, 'a new launcher');
  });
}
