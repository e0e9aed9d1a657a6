// Dump and restore of the MongoDB store's collections in mongodump's layout, with the driver only (no
// mongodump/mongorestore binaries are needed): <dir>/<database>/<collection>.bson holds the documents as
// concatenated BSON, exactly as the server returns them, and <collection>.metadata.json the collection's
// options, indexes and UUID in canonical Extended JSON. mongorestore reads such a dump, and so does
// restoreCollections. For `kv2 backup` / `kv2 restore` (SPEC §9).
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { BSON, MongoServerError, type Db, type Document } from 'mongodb';

const { EJSON } = BSON;
import { DATABASE, EXECUTOR_COLLECTION, TASK_COLLECTION } from './documents';

export const DUMPED_COLLECTIONS = [TASK_COLLECTION, EXECUTOR_COLLECTION] as const;

export interface DumpedCollection {
  collection: string;
  /** Path of the .bson file, relative to the dump dir. */
  file: string;
  documents: number;
  bytes: number;
  sha256: string;
}

/** Writes raw BSON documents one after another: the .bson file format of mongodump. */
export async function writeBsonFile(file: string, documents: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): Promise<Omit<DumpedCollection, 'collection' | 'file'>> {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const hash = createHash('sha256');
  const fd = fs.openSync(`${file}.tmp`, 'w');
  let count = 0;
  let bytes = 0;
  try {
    for await (const doc of documents) {
      fs.writeSync(fd, doc);
      hash.update(doc);
      count++;
      bytes += doc.length;
    }
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(`${file}.tmp`, file);
  return { documents: count, bytes, sha256: hash.digest('hex') };
}

/** Reads a .bson file back, document by document (each starts with its int32 little-endian length). */
export async function* readBsonFile(file: string): AsyncGenerator<Buffer> {
  const fd = fs.openSync(file, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    let offset = 0;
    const header = Buffer.alloc(4);
    while (offset < size) {
      if (fs.readSync(fd, header, 0, 4, offset) !== 4) throw new Error(`${file}: truncated at byte ${offset}`);
      const length = header.readInt32LE(0);
      if (length < 5 || offset + length > size) throw new Error(`${file}: a document at byte ${offset} claims ${length} bytes; the file is damaged`);
      const doc = Buffer.alloc(length);
      fs.readSync(fd, doc, 0, length, offset);
      offset += length;
      yield doc;
    }
  } finally {
    fs.closeSync(fd);
  }
}

/** mongodump's <collection>.metadata.json. */
export function metadataJson(collection: string, indexes: Document[], uuid: string | undefined, options: Document = {}): string {
  const metadata: Document = { options, indexes, collectionName: collection, type: 'collection' };
  if (uuid) metadata.uuid = uuid;
  return EJSON.stringify(metadata, { relaxed: false });
}

/**
 * Dumps the store's collections of `db` into `dir`/<database>/. Each document is read once, in id order,
 * with majority read concern (only data a failover cannot roll back); each task is as one atomic write
 * left it. Tasks written while the dump runs may or may not be in it.
 */
export async function dumpCollections(db: Db, dir: string): Promise<DumpedCollection[]> {
  const out: DumpedCollection[] = [];
  const infos = await db.listCollections({}, { nameOnly: false }).toArray();
  for (const collection of DUMPED_COLLECTIONS) {
    const info = infos.find((c) => c.name === collection) as (Document & { info?: { uuid?: { toString(encoding: 'hex'): string } } }) | undefined;
    const file = path.join(db.databaseName, `${collection}.bson`);
    const cursor = db.collection(collection).find({}, { sort: { _id: 1 }, raw: true, readConcern: { level: 'majority' } });
    const written = await writeBsonFile(
      path.join(dir, file),
      (async function* () {
        for await (const raw of cursor) yield raw as unknown as Uint8Array;
      })(),
    );
    const indexes = info ? await db.collection(collection).listIndexes().toArray() : [];
    fs.writeFileSync(
      path.join(dir, db.databaseName, `${collection}.metadata.json`),
      metadataJson(collection, indexes, info?.info?.uuid?.toString('hex'), (info?.options as Document | undefined) ?? {}),
    );
    out.push({ collection, file, ...written });
  }
  return out;
}

/**
 * Loads a dump made by dumpCollections (or mongodump) into `db`, in batches, with majority writes; the
 * indexes of the metadata are created too. Documents already there (same _id) are kept: running it twice
 * changes nothing. Returns how many documents were inserted per collection.
 */
export async function restoreCollections(db: Db, dir: string, batchBytes = 8 * 1024 * 1024): Promise<Record<string, number>> {
  const inserted: Record<string, number> = {};
  const source = fs.existsSync(path.join(dir, db.databaseName)) ? path.join(dir, db.databaseName) : path.join(dir, DATABASE);
  for (const collection of DUMPED_COLLECTIONS) {
    const file = path.join(source, `${collection}.bson`);
    let count = 0;
    inserted[collection] = 0;
    if (!fs.existsSync(file)) continue;
    const target = db.collection(collection, { writeConcern: { w: 'majority' } });
    let batch: Document[] = [];
    let size = 0;
    const flush = async () => {
      if (batch.length === 0) return;
      try {
        const result = await target.insertMany(batch, { ordered: false });
        count += result.insertedCount;
      } catch (error) {
        // Duplicates (a second run) are expected; anything else is not.
        const writeErrors = (error as { writeErrors?: { code?: number }[] }).writeErrors;
        if (!(error instanceof MongoServerError) || !writeErrors?.every((e) => e.code === 11000)) throw error;
        count += (error as unknown as { insertedCount?: number }).insertedCount ?? batch.length - writeErrors.length;
      }
      batch = [];
      size = 0;
    };
    for await (const raw of readBsonFile(file)) {
      batch.push(BSON.deserialize(raw, { promoteBuffers: false, promoteLongs: false, promoteValues: false }));
      size += raw.length;
      if (size >= batchBytes || batch.length >= 1000) await flush();
    }
    await flush();
    inserted[collection] = count;
    const metadataFile = path.join(source, `${collection}.metadata.json`);
    if (fs.existsSync(metadataFile)) {
      const metadata = EJSON.parse(fs.readFileSync(metadataFile, 'utf8'), { relaxed: false }) as { indexes?: Document[] };
      const indexes = (metadata.indexes ?? [])
        .filter((index) => index.name !== '_id_')
        .map(({ v: _v, ns: _ns, ...index }) => index as { key: Document; name: string });
      if (indexes.length) await target.createIndexes(indexes);
    }
  }
  return inserted;
}
