// The mongod child process handling (src/mongodb/mongod-process.ts) with real processes standing in for
// mongod (shell scripts named mongod: no mongod can be installed here): its output lands in the module
// log line by line at mongod's severity, a stop escalates from the shutdown command to SIGTERM to SIGKILL
// of the whole process group, and a mongod left behind by a killed module is found through
// <dbpath>/mongod.lock and stopped — and nothing else is.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { createLogger } from '../../src/common/logging';
import { isAlive } from '../../src/common/processes';
import { MongodProcess, stopLeftoverMongod } from '../../src/mongodb/mongod-process';
import { freePort } from '../helpers/ports';
import { makeTempDir } from '../helpers/temp';
import { waitFor } from '../helpers/wait';

type Hooks = { after: (fn: () => unknown) => void };

/** Live (not zombie) processes of process group `pgid`, from /proc. */
function liveInGroup(pgid: number): number[] {
  const pids: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[2]) === pgid && fields[0] !== 'Z') pids.push(Number(entry));
    } catch {
      // gone while we looked
    }
  }
  return pids;
}

/** A shell script called mongod that prints `lines`, then waits (ignoring SIGTERM if asked). */
function fakeMongod(dir: string, lines: string[], options: { ignoreTerm?: boolean } = {}): string {
  const file = path.join(dir, 'bin', 'mongod');
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const body = [
    '#!/bin/sh',
    options.ignoreTerm ? "trap '' TERM" : '',
    // A child of its own, as mongod has threads: the group must go as a whole.
    'sleep 1000 &',
    ...lines.map((line) => `printf '%s\\n' '${line.replace(/'/g, "'\\''")}'`),
    'while true; do sleep 0.1; done',
  ];
  fs.writeFileSync(file, `${body.join('\n')}\n`, { mode: 0o755 });
  return file;
}

function logReader(t: Hooks) {
  const dir = makeTempDir(t);
  const logger = createLogger('mongodb', { dir, file: 'mongodb.log', maxBytes: 1 << 20, keep: 0, printToStdout: false, level: 'debug' });
  const entries = () =>
    fs
      .readFileSync(path.join(dir, 'mongodb.log'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  return { logger, entries };
}

async function stopSettings() {
  // Nothing listens on this port: the shutdown command cannot be delivered, as with a hung mongod.
  return { listen: { address: '127.0.0.1', port: await freePort() }, stop: { step_down_secs: 0, timeout: 1 } };
}

test("mongod's output goes to the module log, one entry per line, at mongod's severity", async (t) => {
  const dir = makeTempDir(t);
  const exe = fakeMongod(dir, [
    JSON.stringify({ t: { $date: '2024-01-01T00:00:00.000+00:00' }, s: 'I', c: 'NETWORK', id: 23016, ctx: 'listener', msg: 'Waiting for connections', attr: { port: 3000 } }),
    JSON.stringify({ t: { $date: '2024-01-01T00:00:00.000+00:00' }, s: 'W', c: 'CONTROL', id: 22120, ctx: 'initandlisten', msg: 'Access control is not enabled' }),
    '2020-02-27T10:15:52.123+0000 E  STORAGE  [initandlisten] exception in initAndListen',
  ]);
  const { logger, entries } = logReader(t);
  const proc = new MongodProcess(exe, ['--dbpath', path.join(dir, 'data')], logger);
  t.after(() => proc.stop({ listen: { address: '127.0.0.1', port: 1 }, stop: { step_down_secs: 0, timeout: 1 } }, logger));
  await waitFor(() => entries().filter((e) => e.source === 'mongod').length >= 3, { what: 'three mongod lines in the log' });
  const lines = entries().filter((e) => e.source === 'mongod');
  assert.deepEqual(
    lines.map((e) => [e.level, e.msg]),
    [
      ['info', 'Waiting for connections'],
      ['warn', 'Access control is not enabled'],
      ['error', '2020-02-27T10:15:52.123+0000 E  STORAGE  [initandlisten] exception in initAndListen'],
    ],
  );
  assert.deepEqual(lines[0]!.attr, { port: 3000 });
  assert.equal(lines[0]!.c, 'NETWORK');
  assert.deepEqual(proc.lastLines().length, 3);
});

test('a mongod that cannot take the shutdown command gets SIGTERM; its whole group goes', async (t) => {
  const dir = makeTempDir(t);
  const { logger, entries } = logReader(t);
  const proc = new MongodProcess(fakeMongod(dir, ['started']), [], logger);
  const pid = proc.child.pid!;
  await waitFor(() => proc.lastLines().includes('started'), { what: 'the fake mongod to start' });
  await proc.stop(await stopSettings(), logger);
  assert.equal(proc.running, false);
  // SIGKILL is delivered asynchronously: the group is gone within moments, not necessarily at once.
  await waitFor(() => liveInGroup(pid).length === 0, { what: 'its background child to go with it', timeoutMs: 5_000 });
  assert.ok(entries().some((e) => /sending SIGTERM/.test(String(e.msg))));
});

test('a mongod that ignores SIGTERM is killed after the grace period', async (t) => {
  const dir = makeTempDir(t);
  const { logger } = logReader(t);
  const proc = new MongodProcess(fakeMongod(dir, ['started'], { ignoreTerm: true }), [], logger);
  const pid = proc.child.pid!;
  await waitFor(() => proc.lastLines().includes('started'), { what: 'the fake mongod to start' });
  const started = Date.now();
  await proc.stop(await stopSettings(), logger);
  assert.equal(proc.child.signalCode, 'SIGKILL');
  await waitFor(() => liveInGroup(pid).length === 0, { what: 'its whole group to go', timeoutMs: 5_000 });
  assert.ok(Date.now() - started >= 2_000, 'it had its grace periods first');
});

test('a mongod left by a killed module is found through mongod.lock and stopped; other processes are not', async (t) => {
  const dir = makeTempDir(t);
  const dataDir = path.join(dir, 'data');
  fs.mkdirSync(dataDir);
  const exe = fakeMongod(dir, []);
  const leftover = spawn(exe, ['--dbpath', dataDir], { detached: true, stdio: 'ignore' });
  const unrelated = spawn('sleep', ['1000'], { detached: true, stdio: 'ignore' });
  t.after(() => {
    for (const child of [leftover, unrelated]) {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // gone
      }
    }
  });
  const { logger } = logReader(t);

  // mongod.lock naming a process that is not a mongod on this dbpath: left alone.
  fs.writeFileSync(path.join(dataDir, 'mongod.lock'), `${unrelated.pid}\n`);
  await stopLeftoverMongod(dataDir, logger, 1_000);
  assert.ok(isAlive(unrelated.pid!));
  // An empty lock (clean shutdown): nothing to do.
  fs.writeFileSync(path.join(dataDir, 'mongod.lock'), '');
  await stopLeftoverMongod(dataDir, logger, 1_000);
  assert.ok(isAlive(leftover.pid!));

  fs.writeFileSync(path.join(dataDir, 'mongod.lock'), `${leftover.pid}\n`);
  await stopLeftoverMongod(dataDir, logger, 1_000);
  await waitFor(() => leftover.exitCode !== null || leftover.signalCode !== null, { what: 'the leftover mongod to be reaped' });
  assert.ok(isAlive(unrelated.pid!), 'the unrelated process still runs');
});
