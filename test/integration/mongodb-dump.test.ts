// Backup and restore of the MongoDB store in mongodump's layout (src/store/mongo-dump.ts) against a real
// one-member replica set (KV2_MONGOD_BINARY or the PATH; skipped with one line when there is none): what
// is dumped comes back identical in another database, indexes included, and a second restore adds nothing.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { MongoClient } from 'mongodb';
import { createLogger } from '../../src/common/logging';
import { packText } from '../../src/task/codec';
import { TaskStatus, type TaskInput } from '../../src/task/types';
import { dumpCollections, restoreCollections } from '../../src/store/mongo/dump';
import { TASK_INDEXES } from '../../src/store/mongo/documents';
import { openMongoStore } from '../../src/store/mongo/open';
import { skipUnlessMongod, startSingleNodeReplicaSet } from '../helpers/mongod';
import { makeTempDir } from '../helpers/temp';

const logger = createLogger('dump-test', { maxBytes: 1 << 20, keep: 0, printToStdout: true, level: 'warn' });
const { skip } = skipUnlessMongod('MongoDB dump/restore test');

function task(n: number): TaskInput {
  return {
    user: n,
    compile: { source: Buffer.alloc(n * 1000, n), command: packText(`build ${n}`), timeout: 1 },
    execute: { input: packText(`${n}`), data: Buffer.alloc(0), command: packText('run'), timeout: 2, standard: packText('') },
  };
}

test('a dump in mongodump layout restores the same tasks into another database', { skip, timeout: 180_000 }, async (t) => {
  const { uri } = await startSingleNodeReplicaSet(t);
  const source = await openMongoStore({ uri, database: 'judicator', maxTaskSize: 16_252_928, logger });
  t.after(() => source.close());
  const ids: string[] = [];
  for (let n = 1; n <= 5; n++) ids.push(await source.add(task(n)));
  await source.assign('e1', 2);
  await source.complete('e1', [{ id: ids[0]!, status: TaskStatus.SUCCESS, result: { compile_output: packText('c'), compile_error: packText(''), execute_output: packText('o'), execute_error: packText('') } }]);
  await source.recordHeartbeat('e1', { vacant: 2, slots: 3 });

  const client = new MongoClient(uri);
  t.after(() => client.close());
  const dir = makeTempDir(t);
  const dumped = await dumpCollections(client.db('judicator'), dir);
  assert.deepEqual(dumped.map((d) => [d.collection, d.documents]), [['task', 5], ['executor', 1]]);
  assert.ok(fs.existsSync(path.join(dir, 'judicator', 'task.bson')));
  const metadata = JSON.parse(fs.readFileSync(path.join(dir, 'judicator', 'task.metadata.json'), 'utf8')) as { indexes: { name: string }[] };
  for (const index of TASK_INDEXES) assert.ok(metadata.indexes.some((i) => i.name === index.name), `index ${index.name} in the metadata`);

  // Into another database (as a restore into a fresh replica set would).
  const restoredDb = client.db('restored');
  fs.renameSync(path.join(dir, 'judicator'), path.join(dir, 'restored'));
  assert.deepEqual(await restoreCollections(restoredDb, dir), { task: 5, executor: 1 });
  assert.deepEqual(await restoreCollections(restoredDb, dir), { task: 0, executor: 0 }, 'a second run adds nothing');
  const restored = await openMongoStore({ uri, database: 'restored', maxTaskSize: 16_252_928, logger });
  t.after(() => restored.close());
  for (const id of ids) assert.deepEqual(await restored.get(id), await source.get(id));
  assert.deepEqual(await restored.listExecutors(), await source.listExecutors());
  const names = (await restoredDb.collection('task').listIndexes().toArray()).map((i) => i.name as string);
  for (const index of TASK_INDEXES) assert.ok(names.includes(index.name!), `index ${index.name} restored`);
});
