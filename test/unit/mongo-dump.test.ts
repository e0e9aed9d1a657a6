// mongodump's file layout as src/store/mongo-dump.ts writes and reads it, without a server: a .bson file
// is the documents' BSON back to back (byte for byte what the server sent), damage is reported, and the
// metadata is canonical Extended JSON with the index specs. (Dumping from and restoring into a live
// replica set needs a mongod: covered by reading the driver's documented API only.)
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { BSON, Binary, ObjectId } from 'mongodb';
import { metadataJson, readBsonFile, writeBsonFile } from '../../src/store/mongo/dump';
import { makeTempDir } from '../helpers/temp';

test('a .bson file is the documents back to back, and reads back byte for byte', async (t) => {
  const dir = makeTempDir(t);
  const docs = [
    { _id: new ObjectId(), user: 1, compile: { source: new Binary(Buffer.from('zip')) }, add_time: new Date(0) },
    { _id: new ObjectId(), user: 2, result: null },
    { _id: 'exec-1', hostname: 'exec-1', report_time: new Date() },
  ].map((doc) => BSON.serialize(doc));
  const file = path.join(dir, 'judicator', 'task.bson');
  const written = await writeBsonFile(file, docs);
  assert.equal(written.documents, 3);
  assert.equal(written.bytes, docs.reduce((sum, d) => sum + d.length, 0));
  assert.deepEqual(fs.readFileSync(file), Buffer.concat(docs));
  assert.ok(!fs.existsSync(`${file}.tmp`));
  const back: Buffer[] = [];
  for await (const doc of readBsonFile(file)) back.push(doc);
  assert.deepEqual(back, docs.map((d) => Buffer.from(d)));
  assert.equal(BSON.deserialize(back[2]!).hostname, 'exec-1');

  const empty = await writeBsonFile(path.join(dir, 'judicator', 'executor.bson'), []);
  assert.equal(empty.documents, 0);
  assert.equal(fs.statSync(path.join(dir, 'judicator', 'executor.bson')).size, 0);

  fs.writeFileSync(path.join(dir, 'cut.bson'), Buffer.concat(docs).subarray(0, docs[0]!.length + 7));
  await assert.rejects(async () => {
    for await (const _ of readBsonFile(path.join(dir, 'cut.bson'))) void _;
  }, /damaged|truncated/);
});

test('metadata.json: canonical Extended JSON with options, indexes, uuid and the collection name', () => {
  const json = metadataJson('task', [{ v: 2, key: { _id: 1 }, name: '_id_' }, { v: 2, key: { done: 1, executor: 1 }, name: 'done_executor' }], '0123456789abcdef0123456789abcdef');
  const parsed = JSON.parse(json) as Record<string, unknown>;
  assert.deepEqual(parsed.options, {});
  assert.equal(parsed.collectionName, 'task');
  assert.equal(parsed.type, 'collection');
  assert.equal(parsed.uuid, '0123456789abcdef0123456789abcdef');
  assert.deepEqual((parsed.indexes as unknown[])[0], { v: { $numberInt: '2' }, key: { _id: { $numberInt: '1' } }, name: '_id_' });
});
