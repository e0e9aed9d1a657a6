// Pid-file locks: exclusive, released, and a lock whose holder is gone (or was never a process we can
// identify) blocks nobody.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { PidFileLock, readPidFile, writePidFile } from '../../src/boot/pid-lock';
import { processStartTime } from '../../src/common/processes';
import { makeTempDir } from '../helpers/temp';

test('a lock is exclusive until released', (t) => {
  const dir = makeTempDir(t);
  const pidFile = path.join(dir, 'data', 'main.pid');
  const first = new PidFileLock(pidFile, 'first');
  const second = new PidFileLock(pidFile, 'second');
  assert.equal(first.tryAcquire(), true);
  // Same process, other lock object: still refused (the holder is alive and it is not this object).
  assert.equal(second.tryAcquire(), false);
  assert.equal(second.holder()?.what, 'first');
  first.release();
  assert.equal(fs.existsSync(`${pidFile}.lock`), false);
  assert.equal(second.tryAcquire(), true);
  second.release();
});

test('a lock held by a process that is gone is stale and is taken over', (t) => {
  const dir = makeTempDir(t);
  const pidFile = path.join(dir, 'main.pid');
  // A real process takes the lock file's place as holder, then exits.
  const child = spawnSync(process.execPath, ['-e', 'console.log(process.pid)'], { encoding: 'utf8' });
  const deadPid = Number(child.stdout.trim());
  fs.writeFileSync(`${pidFile}.lock`, JSON.stringify({ pid: deadPid, start: '12345', what: 'kv2 maintain', since: new Date().toISOString() }));
  const lock = new PidFileLock(pidFile, 'supervisor');
  assert.equal(lock.tryAcquire(), true);
  lock.release();
});

test('a reused pid does not keep a lock alive: the start time must match too', (t) => {
  const dir = makeTempDir(t);
  const pidFile = path.join(dir, 'main.pid');
  fs.writeFileSync(`${pidFile}.lock`, JSON.stringify({ pid: process.pid, start: 'not-our-start-time', what: 'old maintain', since: '' }));
  const lock = new PidFileLock(pidFile, 'supervisor');
  assert.equal(lock.tryAcquire(), true);
  lock.release();
});

test('an unreadable lock file (left by another tool) blocks nobody', (t) => {
  const dir = makeTempDir(t);
  const pidFile = path.join(dir, 'main.pid');
  fs.writeFileSync(`${pidFile}.lock`, '');
  const lock = new PidFileLock(pidFile, 'supervisor');
  assert.equal(lock.tryAcquire(), true);
  lock.release();
});

test('a lock held by another live process is respected, and free once it exits', async (t) => {
  const dir = makeTempDir(t);
  const pidFile = path.join(dir, 'main.pid');
  const holder = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  t.after(() => holder.kill('SIGKILL'));
  await new Promise((r) => holder.once('spawn', r));
  const start = processStartTime(holder.pid!);
  assert.ok(start);
  fs.writeFileSync(`${pidFile}.lock`, JSON.stringify({ pid: holder.pid, start, what: 'kv2 maintain', since: '' }));
  const lock = new PidFileLock(pidFile, 'supervisor');
  assert.equal(lock.tryAcquire(), false);
  assert.equal(lock.holder()?.pid, holder.pid);
  holder.kill('SIGKILL');
  await new Promise((r) => holder.once('exit', r));
  assert.equal(lock.tryAcquire(), true);
  lock.release();
});

test('pid files hold a decimal pid; anything else reads as no pid', (t) => {
  const dir = makeTempDir(t);
  const pidFile = path.join(dir, 'x.pid');
  assert.equal(readPidFile(pidFile), undefined);
  writePidFile(pidFile, 4242);
  assert.equal(fs.readFileSync(pidFile, 'utf8'), '4242');
  assert.equal(readPidFile(pidFile), 4242);
  writePidFile(pidFile, undefined);
  assert.equal(readPidFile(pidFile), undefined);
  fs.writeFileSync(pidFile, '12abc');
  assert.equal(readPidFile(pidFile), undefined);
});
