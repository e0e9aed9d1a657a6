// The MongoDB store's documents and change events without a server (src/store/mongo-store.ts): a task
// goes into the original's document shape and comes back unchanged, times are Dates in documents and
// ISO in the interface, change-stream events become store events, and "too large" is recognised in the
// spellings the server and the driver use.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BSON, MongoServerError, ObjectId, type ChangeStreamDocument } from 'mongodb';
import { idTime, newId } from '../../src/common/ids';
import { packText } from '../../src/task/codec';
import { TaskStatus, type TaskInput } from '../../src/task/types';
import { changeSet, resultDoc, stateOf, taskDoc, toTask, type StateDoc, type TaskDoc } from '../../src/store/mongo/documents';
import { isTooLargeError } from '../../src/store/mongo/errors';
import { MongoTaskStore } from '../../src/store/mongo/store';

function input(): TaskInput {
  return {
    user: 7,
    compile: { source: Buffer.from('PK\x05\x06zip'), command: packText('gcc a.c'), timeout: 5, limits: { memory: 1 << 20 } },
    execute: { input: packText('1 2'), data: Buffer.alloc(0), command: packText('./a.out'), timeout: 0, standard: packText('3') },
    network: false,
  };
}

test('a task survives the trip through BSON: binaries, limits, Dates from the id, the original field names', () => {
  const id = newId(Date.parse('2026-01-02T03:04:05.678Z'));
  const doc = taskDoc(input(), ObjectId.createFromHexString(id));
  assert.equal(doc.add_time.toISOString(), '2026-01-02T03:04:05.678Z');
  assert.equal(doc.report_time.getTime(), idTime(id));
  assert.equal(doc.done, false);
  assert.equal(doc.status, TaskStatus.PENDING);
  assert.equal(doc.executor, null);
  assert.equal(doc.result, null);
  // As stored and read back by the driver (buffers promoted, as the store's client is configured).
  const stored = BSON.deserialize(BSON.serialize(doc, { ignoreUndefined: true }), { promoteBuffers: true }) as TaskDoc;
  assert.ok(stored.add_time instanceof Date);
  const task = toTask(stored);
  assert.equal(task.id, id);
  assert.equal(task.add_time, '2026-01-02T03:04:05.678Z');
  assert.deepEqual(task.compile, input().compile);
  assert.deepEqual(task.execute, input().execute);
  assert.equal(task.network, false);
  assert.equal(task.retries, 0);
  assert.equal(task.result, null);
  // Not promoted (bson Binary objects) reads the same.
  const raw = BSON.deserialize(BSON.serialize(doc)) as TaskDoc;
  assert.deepEqual(toTask(raw).compile.source, input().compile.source);
});

test('issue 17: tests, checker, callback URL and the judged result survive the trip through BSON; ending a task with a callback fills its outbox', () => {
  const judged: TaskInput = {
    ...input(),
    judge: {
      mode: 'all',
      checker: { kind: 'program', source_name: 'check.py', source: packText('import sys') },
      tests: [{ name: 'a', input: packText('1'), output: packText('2') }],
    },
    callback_url: 'http://10.0.0.5:8080/done',
  };
  const id = ObjectId.createFromHexString(newId());
  const doc = taskDoc(judged, id);
  doc.result = resultDoc({
    compile_output: packText(''),
    compile_error: packText(''),
    execute_output: packText(''),
    execute_error: packText(''),
    accepted: true,
    verdict: 'accepted',
    tests: [{ name: 'a', verdict: 'accepted', time_ms: 1, wall_ms: 2, memory_kb: 3, exit_code: 0, signal: null, message: 'ok' }],
  });
  for (const stored of [
    BSON.deserialize(BSON.serialize(doc, { ignoreUndefined: true }), { promoteBuffers: true }) as TaskDoc,
    BSON.deserialize(BSON.serialize(doc)) as TaskDoc,
  ]) {
    const task = toTask(stored);
    assert.deepEqual(task.judge, judged.judge);
    assert.equal(task.callback_url, judged.callback_url);
    assert.equal(task.result!.verdict, 'accepted');
    assert.deepEqual(task.result!.tests, doc.result.tests);
  }
  const held: StateDoc = { _id: id, user: 7, done: false, status: TaskStatus.RUNNING, executor: 'e', report_time: new Date(1000), retries: 0, acknowledged: true, input_size: 10, callback_url: judged.callback_url };
  const ending = { next: { ...stateOf(held), done: true, status: TaskStatus.SUCCESS, executor: null, report_ms: 5000 }, announce: false };
  assert.deepEqual(changeSet(held, ending).callback, { url: judged.callback_url, attempts: 0, due: new Date(5000) });
  assert.equal(changeSet({ ...held, callback_url: undefined }, ending).callback, undefined);
  assert.equal(changeSet(held, { next: { ...stateOf(held), report_ms: 6000 }, announce: false }).callback, undefined);
});

test('change events: inserts and requeues wake waiting reports, a released mark names the executor, done is announced', () => {
  const _id = new ObjectId();
  const base = { _id: { _data: 'token' }, documentKey: { _id }, ns: { db: 'judicator', coll: 'task' } };
  const insert = { ...base, operationType: 'insert' } as unknown as ChangeStreamDocument<TaskDoc>;
  assert.deepEqual(MongoTaskStore.eventsOf(insert), [{ type: 'pending' }]);
  const requeue = {
    ...base,
    operationType: 'update',
    updateDescription: { updatedFields: { executor: null, released: 'exec-1/0a1b2c3d4e5f' }, removedFields: [] },
  } as unknown as ChangeStreamDocument<TaskDoc>;
  assert.deepEqual(MongoTaskStore.eventsOf(requeue), [{ type: 'released', executor: 'exec-1', id: _id.toHexString() }, { type: 'pending' }]);
  const cancel = {
    ...base,
    operationType: 'update',
    updateDescription: { updatedFields: { executor: null, done: true, released: 'exec-2/ffff' }, removedFields: [] },
  } as unknown as ChangeStreamDocument<TaskDoc>;
  assert.deepEqual(MongoTaskStore.eventsOf(cancel), [{ type: 'released', executor: 'exec-2', id: _id.toHexString() }, { type: 'done', id: _id.toHexString() }]);
  // A result: the task is done (waiting clients are told), and nobody else needs waking.
  const complete = {
    ...base,
    operationType: 'update',
    updateDescription: { updatedFields: { executor: null, done: true, status: 5 }, removedFields: [] },
  } as unknown as ChangeStreamDocument<TaskDoc>;
  assert.deepEqual(MongoTaskStore.eventsOf(complete), [{ type: 'done', id: _id.toHexString() }]);
  const running = {
    ...base,
    operationType: 'update',
    updateDescription: { updatedFields: {}, removedFields: [] },
  } as unknown as ChangeStreamDocument<TaskDoc>;
  assert.deepEqual(MongoTaskStore.eventsOf(running), []);
});

test('"document too large" in the forms the server and the driver report it', () => {
  const server = new MongoServerError({ message: 'Resulting document after update is larger than 16777216', code: 17419 });
  assert.ok(isTooLargeError(server));
  assert.ok(isTooLargeError(new MongoServerError({ message: 'object to insert too large. size in bytes: 17000000, max size: 16777216', code: 2 })));
  assert.ok(isTooLargeError(new MongoServerError({ message: 'BSONObj size: 17000000 is invalid', code: 10334, codeName: 'BSONObjectTooLarge' })));
  assert.ok(!isTooLargeError(new MongoServerError({ message: 'E11000 duplicate key error', code: 11000 })));
  assert.ok(!isTooLargeError('too large'), 'only errors');
});
