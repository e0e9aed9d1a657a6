// The files of a kv2 backup without a cluster: the task export round-trips every field (bytes included),
// refuses lines that are not tasks, the snapshot's embedded etcd hash is checked, and a manifest that
// names files outside the backup or lacks fields is refused with a message saying which.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { packBytes, packText } from '../../src/task/codec';
import { TaskStatus, type Task } from '../../src/task/types';
import { MANIFEST_FILE, readManifest } from '../../src/ops/backup-manifest';
import { embeddedHashCheck } from '../../src/ops/etcd-snapshot';
import { countTask, emptyCounts, parseTaskLine, taskLine } from '../../src/ops/task-export';
import { makeTempDir } from '../helpers/temp';

function sampleTask(): Task {
  return {
    id: '6b07d7a103223777746dc12c',
    user: 7,
    add_time: '2026-01-31T12:00:00.000Z',
    done: true,
    status: TaskStatus.SUCCESS,
    executor: null,
    report_time: '2026-01-31T12:00:01.000Z',
    retries: 1,
    network: false,
    compile: { source: Buffer.from([0x50, 0x4b, 0, 0xff]), command: packText('gcc a.c'), timeout: 10, limits: { memory: 1 << 20 } },
    execute: { input: packBytes(Buffer.from([0, 1, 2, 255])), data: Buffer.alloc(0), command: packText('./a.out'), timeout: 5, standard: packText('') },
    result: {
      compile_output: packText(''),
      compile_error: packText('warning'),
      execute_output: packBytes(Buffer.from([0xde, 0xad, 0xbe, 0xef])),
      execute_error: packText(''),
      accepted: null,
      compile: { exit_code: 0, signal: null, wall_ms: 12, cpu_ms: 10, memory_kb: 2048, stopped: null },
      execute: null,
    },
  };
}

test('a task goes through the export and comes back equal, bytes as {"$base64": ...}', () => {
  const task = sampleTask();
  const line = taskLine(task);
  assert.ok(line.endsWith('\n') && !line.slice(0, -1).includes('\n'), 'one line per task');
  assert.match(line, /"source":\{"\$base64":"UEsA\/w=="\}/);
  assert.deepEqual(parseTaskLine(line), task);
  const counts = emptyCounts();
  countTask(counts, task);
  countTask(counts, { ...task, done: false, status: TaskStatus.PENDING });
  assert.deepEqual(counts, { tasks: 2, done: 1, by_status: { Success: 1, Pending: 1 }, executors: 0 });
});

test('lines that are not tasks are refused with the reason', () => {
  const task = JSON.parse(taskLine(sampleTask()));
  assert.throws(() => parseTaskLine('{"id": "nope"}'), /"id" is not a task id/);
  assert.throws(() => parseTaskLine(JSON.stringify({ ...task, status: 42 })), /"status" 42 is not a task status/);
  assert.throws(() => parseTaskLine(JSON.stringify({ ...task, compile: { ...task.compile, command: 'text' } })), /binary encoding/);
  assert.throws(() => parseTaskLine('{"id": '), SyntaxError);
});

test("a snapshot's embedded etcd hash: ok, damaged, or absent", (t) => {
  const dir = makeTempDir(t);
  const db = Buffer.alloc(4096, 7);
  const file = path.join(dir, 'snapshot.db');
  fs.writeFileSync(file, Buffer.concat([db, createHash('sha256').update(db).digest()]));
  assert.equal(embeddedHashCheck(file), 'ok');
  const damaged = fs.readFileSync(file);
  damaged[100] = damaged[100]! ^ 1;
  fs.writeFileSync(file, damaged);
  assert.equal(embeddedHashCheck(file), 'mismatch');
  fs.writeFileSync(file, db);
  assert.equal(embeddedHashCheck(file), 'absent');
});

test('a manifest naming a file outside the backup, or missing a field, is refused', (t) => {
  const dir = makeTempDir(t);
  assert.throws(() => readManifest(dir), /manifest\.json is missing/);
  const manifest = {
    format: 'kv2-backup',
    format_version: 1,
    kv2_version: '0.2.0',
    started_at: '2026-01-31T12:00:00.000Z',
    finished_at: '2026-01-31T12:00:01.000Z',
    store: 'etcd',
    source: { endpoint: 'http://127.0.0.1:2001', member: 'j1', etcd_version: '3.4.23', prefix: 'kv2/' },
    etcd: { snapshot: 'snapshot.db', revision: 5, keys: 9 },
    export: { tasks: 'tasks.jsonl', executors: 'executors.jsonl', read_from: 'snapshot', binary_encoding: '' },
    counts: { tasks: 0, done: 0, by_status: {}, executors: 0 },
    mongodump: null,
    files: { '../etc/passwd': { size: 1, sha256: 'a'.repeat(64) } },
  };
  fs.writeFileSync(path.join(dir, MANIFEST_FILE), JSON.stringify(manifest));
  assert.throws(() => readManifest(dir), /lists a file outside the backup: "\.\.\/etc\/passwd"/);
  fs.writeFileSync(path.join(dir, MANIFEST_FILE), JSON.stringify({ ...manifest, files: {}, etcd: { snapshot: 'snapshot.db', keys: 9 } }));
  assert.throws(() => readManifest(dir), /field "etcd\.revision"/);
  fs.writeFileSync(path.join(dir, MANIFEST_FILE), JSON.stringify({ ...manifest, files: {} }));
  assert.equal(readManifest(dir).etcd.revision, 5);
});
