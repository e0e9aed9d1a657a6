// The zips the gateway and `kv2 task submit` write themselves (zip-write.ts): read back by the executor's
// own unpacker, by fflate, and by the `unzip` tool when it is installed, with names, bytes, modes and the
// choice between deflated and stored entries as they should be.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { unzipSync } from 'fflate';
import { readEntries, unpackZip } from '../../src/task/zip';
import { zipOneFile } from '../../src/task/zip';
import { writeZip } from '../../src/task/zip';
import { makeTempDir } from '../helpers/temp';

const LIMITS = { maxBytes: 64 * 1024 * 1024, maxFiles: 100 };
const hooks = { after: (fn: () => unknown) => test.after(fn) };

/** Text that compresses, and bytes that do not. */
const source = Array.from({ length: 4000 }, (_, i) => `int line${i} = ${(i * 7919) % 1000}; // text\n`).join('');
const noise = randomBytes(4096);

test('a name+text pair: one deflated entry the executor unpacks to the same text, CRLF made LF', () => {
  const zip = zipOneFile('main.cpp', 'int main() {}\r\nreturn 0;\r\n');
  const dir = makeTempDir(hooks, 'kv2-zipw-');
  unpackZip(zip, dir, LIMITS);
  assert.deepEqual(fs.readdirSync(dir), ['main.cpp']);
  assert.equal(fs.readFileSync(path.join(dir, 'main.cpp'), 'utf8'), 'int main() {}\nreturn 0;\n');
  const big = zipOneFile('big.c', source);
  assert.ok(big.length < source.length / 4, `deflated: ${big.length} bytes for ${source.length}`);
  assert.equal(Buffer.from(unzipSync(big)['big.c']!).toString('utf8'), source);
});

test('several entries: nested and UTF-8 names, empty and incompressible files, regular rw-r--r-- modes', () => {
  const entries = [
    { name: 'a.txt', data: Buffer.from('hello\n') },
    { name: 'lib/ü.c', data: Buffer.from(source) },
    { name: 'empty', data: Buffer.alloc(0) },
    { name: 'noise.bin', data: noise },
  ];
  const zip = writeZip(entries, { modified: new Date(2026, 0, 31, 12, 34, 56) });
  const read = readEntries(zip, LIMITS);
  assert.deepEqual(read.map((e) => [e.name, e.size, e.mode, e.directory]), entries.map((e) => [e.name, e.data.length, 0o100644, false]));
  // Deflated where that makes it smaller, stored otherwise (the noise, the tiny and the empty file).
  assert.deepEqual(read.map((e) => e.method), [0, 8, 0, 0]);
  const dir = makeTempDir(hooks, 'kv2-zipw-');
  unpackZip(zip, dir, LIMITS);
  for (const entry of entries) assert.deepEqual(fs.readFileSync(path.join(dir, entry.name)), entry.data, entry.name);
  const back = unzipSync(zip);
  for (const entry of entries) assert.deepEqual(Buffer.from(back[entry.name]!), entry.data, entry.name);

  if (spawnSync('unzip', ['-v']).error) {
    console.log('unzip is not installed: the zip was checked with the executor and fflate only');
    return;
  }
  const listed = spawnSync('unzip', ['-tq', writeTemp(zip)], { encoding: 'utf8' });
  assert.equal(listed.status, 0, listed.stdout + listed.stderr);
  assert.match(listed.stdout, /No errors detected/);
});

test('an empty zip is the end record alone, and too many entries are refused', () => {
  const empty = writeZip([]);
  assert.equal(empty.length, 22);
  assert.deepEqual(readEntries(empty, LIMITS), []);
  assert.throws(() => writeZip(Array.from({ length: 65_536 }, (_, i) => ({ name: `f${i}`, data: Buffer.alloc(0) }))), /at most 65535 files/);
});

function writeTemp(bytes: Buffer): string {
  const file = path.join(makeTempDir(hooks, 'kv2-zipw-'), 'test.zip');
  fs.writeFileSync(file, bytes);
  return file;
}
