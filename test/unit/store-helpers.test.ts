// The task stores' pure helpers: the etcd key layout (orders, ranges, names), packed values, chunking,
// stored metadata, and the texts a store writes into results.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { highestIdAt, idPrefix, lowestIdAt, newId } from '../../src/common/ids';
import { CorruptValueError, packBuffers, packInput, packResult, unpackBuffers, unpackInput, unpackResult } from '../../src/store/etcd/packing';
import { CHUNK_BYTES, chunksOf } from '../../src/store/etcd/chunks';
import { chunkKey, decodeName, encodeName, heldExecutor, inclusiveEnd, invertId, prefixEnd, storeKeys, timeSegment } from '../../src/store/etcd/keys';
import { briefOf, newMeta, parseMeta, taskOf } from '../../src/store/etcd/meta';
import { giveUpMessage, tooLargeResult } from '../../src/store/transition-rules';
import { packText, unpackText } from '../../src/task/codec';
import { TaskStatus, type TaskInput } from '../../src/task/types';

test('inverted ids sort newest first, and inverting twice gives the id back', () => {
  const ids = Array.from({ length: 50 }, (_, i) => newId(Date.UTC(2026, 1, 1) + i * 37));
  const inverted = ids.map(invertId);
  assert.deepEqual([...inverted].sort(), [...ids].reverse().map(invertId));
  for (const id of ids) assert.equal(invertId(invertId(id)), id);
  assert.equal(invertId('0123456789abcdef01234567'), 'fedcba9876543210fedcba98');
  // A time range in id order is the reversed range in inverted order.
  assert.ok(invertId(highestIdAt(1000)) < invertId(lowestIdAt(1000)));
});

test('prefix ends cover exactly the keys under a prefix; inclusive ends include the key itself', () => {
  assert.deepEqual(prefixEnd('kv2/store/held/e1/'), Buffer.from('kv2/store/held/e10'));
  // Keys are UTF-8: the end of a prefix ending in a multi-byte character bumps its last byte.
  assert.deepEqual(prefixEnd('aé'), Buffer.from([0x61, 0xc3, 0xaa]));
  const end = inclusiveEnd('abc');
  assert.ok(Buffer.compare(Buffer.from('abc'), end) < 0);
  assert.ok(Buffer.compare(end, Buffer.from('abc0')) < 0);
});

test('executor names become one key segment: a slash cannot reach into another executor', () => {
  const keys = storeKeys('kv2/store/');
  assert.equal(encodeName('a/b'), 'a%2Fb');
  assert.equal(decodeName(encodeName('ä/b c%')), 'ä/b c%');
  assert.ok(!keys.held('a/b', 'x').startsWith(keys.heldBy('a')));
  assert.equal(heldExecutor(keys, keys.held('a/b', '0123')), 'a/b');
  assert.equal(decodeName('%E0%A4%A'), '%E0%A4%A');
});

test('finish times and chunk numbers sort as numbers', () => {
  const times = [0, 9, 10, 255, 1_700_000_000_000, 1_800_000_000_000].map(timeSegment);
  assert.deepEqual([...times].sort(), times);
  assert.equal(timeSegment(-5), '000000000000');
  const chunks = [0, 1, 9, 10, 99, 100, 12345].map((n) => chunkKey('p/', n));
  assert.deepEqual([...chunks].sort(), chunks);
  // The retention range ends before the first task finished at the cutoff.
  const keys = storeKeys('s/');
  assert.ok(keys.finished(999, 'ffffffffffffffffffffffff') < keys.finishedAt(1000));
  assert.ok(keys.finished(1000, '000000000000000000000000') >= keys.finishedAt(1000));
});

test('user keys do not run into each other', () => {
  const keys = storeKeys('s/');
  const id = idPrefix(1000) + '000000000001';
  assert.ok(!keys.user(12, id).startsWith(keys.userTasks(1)));
  assert.ok(keys.user(1, id).startsWith(keys.userTasks(1)));
});

test('packed buffers round-trip, and a damaged value is refused', () => {
  const parts = [Buffer.alloc(0), randomBytes(10), Buffer.from('text'), randomBytes(70_000)];
  assert.deepEqual(unpackBuffers(packBuffers(parts), 'x'), parts);
  const packed = packBuffers(parts);
  assert.throws(() => unpackBuffers(packed.subarray(0, packed.length - 1), 'x'), CorruptValueError);
  assert.throws(() => unpackBuffers(Buffer.from([9, 0, 0, 0, 0]), 'x'), CorruptValueError);
  assert.throws(() => unpackBuffers(Buffer.alloc(2), 'x'), CorruptValueError);
});

const input: TaskInput = {
  user: 3,
  compile: { source: randomBytes(100), command: packText('make'), timeout: 4, limits: { cpu_time: 2 } },
  execute: { input: packText('in'), data: Buffer.alloc(0), command: packText('./run'), timeout: 9, standard: packText('out') },
  network: false,
};

test('a task input and a result round-trip through their packed values', () => {
  const bytes = unpackInput(packInput(input));
  assert.deepEqual(bytes.source, input.compile.source);
  assert.equal(unpackText(bytes.executeCommand), './run');
  assert.equal(unpackText(bytes.standard), 'out');
  const result = {
    compile_output: packText('c'),
    compile_error: Buffer.alloc(0),
    execute_output: randomBytes(200),
    execute_error: packText('e'),
    accepted: false,
    execute: { exit_code: 1, signal: null, wall_ms: 5, cpu_ms: null, memory_kb: null, stopped: 'time' as const },
  };
  assert.deepEqual(unpackResult(packResult(result)), result);
  const bare = { compile_output: packText(''), compile_error: packText(''), execute_output: packText(''), execute_error: packText('') };
  assert.deepEqual(unpackResult(packResult(bare)), bare);
});

test('issue 17: a judge (tests, mode, checker) and a callback URL round-trip through the stored input and metadata, and results keep verdicts and tests', () => {
  const judged: TaskInput = {
    ...input,
    judge: {
      mode: 'all',
      checker: { kind: 'program', source_name: 'check.cpp', source: packText('int main(){}') },
      tests: [
        { name: '01', input: packText('1 2'), output: packText('3') },
        { name: 'big.case', input: packText('x'.repeat(5000)), output: packText('') },
      ],
    },
    callback_url: 'https://hooks.example.com/kv2?x=1',
  };
  const bytes = unpackInput(packInput(judged));
  assert.deepEqual(bytes.judge, judged.judge);
  // A value of the six original fields (stored before issue 17) has no judge.
  assert.equal(unpackInput(packInput(input)).judge, undefined);
  const floats = { ...judged, judge: { mode: 'first_fail' as const, checker: { kind: 'float' as const, error: 1e-6 }, tests: [] } };
  assert.deepEqual(unpackInput(packInput(floats)).judge, floats.judge);
  const id = newId();
  const meta = parseMeta(Buffer.from(JSON.stringify(newMeta(judged, id, 99, { token: 'a', chunks: 1 }))))!;
  const task = taskOf(id, meta, packInput(judged), undefined);
  assert.deepEqual(task.judge, judged.judge);
  assert.equal(task.callback_url, judged.callback_url);
  const result = {
    compile_output: packText(''),
    compile_error: packText(''),
    execute_output: packText('4'),
    execute_error: packText(''),
    accepted: false,
    verdict: 'wrong_answer' as const,
    tests: [
      { name: '01', verdict: 'wrong_answer' as const, time_ms: 3, wall_ms: 4, memory_kb: 1200, exit_code: 0, signal: null, message: 'expected 3, found 4' },
      { name: 'big.case', verdict: 'skipped' as const, time_ms: null, wall_ms: null, memory_kb: null, exit_code: null, signal: null, message: '' },
    ],
  };
  assert.deepEqual(unpackResult(packResult(result)), result);
  // A judge whose tests do not match their names is a damaged value, not a task.
  const parts = unpackBuffers(packInput(judged), 'x');
  assert.throws(() => unpackInput(packBuffers(parts.slice(0, -1))), CorruptValueError);
});

test('values are cut into chunks of at most 1 MiB that join back whole', () => {
  assert.deepEqual(chunksOf(Buffer.alloc(0)), [Buffer.alloc(0)]);
  assert.equal(chunksOf(Buffer.alloc(CHUNK_BYTES)).length, 1);
  const value = randomBytes(3 * CHUNK_BYTES + 5);
  const chunks = chunksOf(value);
  assert.deepEqual(chunks.map((c) => c.length), [CHUNK_BYTES, CHUNK_BYTES, CHUNK_BYTES, 5]);
  assert.ok(Buffer.concat(chunks).equals(value));
});

test('stored metadata turns back into the task and its brief', () => {
  const id = idPrefix(Date.UTC(2026, 2, 3, 4, 5, 6, 789)) + 'abcdef000001';
  const meta = newMeta(input, id, 1234, { token: 'feedbeef', chunks: 1 });
  assert.equal(meta.status, TaskStatus.PENDING);
  assert.equal(meta.report_ms, Date.UTC(2026, 2, 3, 4, 5, 6, 789));
  const parsed = parseMeta(Buffer.from(JSON.stringify(meta)))!;
  assert.deepEqual(parsed, meta);
  assert.deepEqual(briefOf(id, parsed), {
    id,
    user: 3,
    add_time: '2026-03-03T04:05:06.789Z',
    done: false,
    status: TaskStatus.PENDING,
    executor: null,
    report_time: '2026-03-03T04:05:06.789Z',
  });
  const task = taskOf(id, parsed, packInput(input), undefined);
  assert.deepEqual(task.compile, input.compile);
  assert.deepEqual(task.execute, input.execute);
  assert.equal(task.network, false);
  assert.equal(task.result, null);
  assert.equal(parseMeta(Buffer.from('{"status":"x"}')), undefined);
  assert.equal(parseMeta(Buffer.from('not json')), undefined);
  assert.equal(parseMeta(Buffer.from('null')), undefined);
});

test('the texts a store writes say what happened', () => {
  assert.equal(giveUpMessage(3, 'unreported'), 'Gave up after 3 retries: its executor lost it each time (the task may crash its executor).');
  assert.match(giveUpMessage(1, 'expired'), /^Gave up after 1 retry: its executor stopped reporting it/);
  assert.match(giveUpMessage(0, 'executor-gone'), /went away/);
  assert.match(unpackText(tooLargeResult(20, 10).execute_error), /would take 20 bytes, more than the limit of 10 bytes/);
});
