// Safe unzipping of task zips: paths stay inside the target, links and special entries are refused,
// sizes and counts are limited (counting the bytes actually inflated), corrupt zips are named as such.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { zipSync, type Zippable } from 'fflate';
import { UnsafeZipError, checkName, unpackZip } from '../../src/task/zip';
import { makeTempDir } from '../helpers/temp';

const LIMITS = { maxBytes: 1024 * 1024, maxFiles: 100 };

function zip(files: Zippable, level: 0 | 6 = 6): Buffer {
  return Buffer.from(zipSync(files, { level }));
}

/** Offset of the first central directory entry. */
function centralEntry(bytes: Buffer): number {
  const at = bytes.indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]));
  assert.ok(at >= 0);
  return at;
}

test('entry names: relative and normalised, never absolute or climbing out', () => {
  assert.equal(checkName('a/./b.txt'), 'a/b.txt');
  assert.equal(checkName('dir\\file.txt'), 'dir/file.txt');
  assert.equal(checkName('./'), '');
  for (const bad of ['../x', 'a/../../x', 'a/..', '..\\x', '/etc/passwd', 'C:/x', 'c:x', 'a\0b']) {
    assert.throws(() => checkName(bad), UnsafeZipError, bad);
  }
});

test('files, directories and modes are unpacked; stored and deflated entries both work', (t) => {
  const dir = makeTempDir(t);
  const source = zip({
    'top.txt': Buffer.from('top'),
    'empty.txt': Buffer.alloc(0),
    'run.sh': [Buffer.from('#!/bin/sh\necho hi\n'), { os: 3, attrs: (0o100755 << 16) >>> 0 }],
    nested: { deeper: { 'file.bin': Buffer.from([0, 1, 2, 255]) } },
    'emptydir/': new Uint8Array(0),
  });
  unpackZip(source, dir, LIMITS);
  assert.equal(fs.readFileSync(path.join(dir, 'top.txt'), 'utf8'), 'top');
  assert.equal(fs.readFileSync(path.join(dir, 'empty.txt')).length, 0);
  assert.deepEqual(fs.readFileSync(path.join(dir, 'nested/deeper/file.bin')), Buffer.from([0, 1, 2, 255]));
  assert.equal(fs.statSync(path.join(dir, 'run.sh')).mode & 0o111, 0o111);
  assert.equal(fs.statSync(path.join(dir, 'top.txt')).mode & 0o111, 0);
  assert.ok(fs.statSync(path.join(dir, 'emptydir')).isDirectory());

  const stored = makeTempDir(t);
  unpackZip(zip({ 'a.txt': Buffer.from('stored text') }, 0), stored, LIMITS);
  assert.equal(fs.readFileSync(path.join(stored, 'a.txt'), 'utf8'), 'stored text');
});

test('links, duplicates, file/directory clashes and encrypted entries are refused', (t) => {
  const refused = (files: Zippable, pattern: RegExp) => {
    const dir = makeTempDir(t);
    assert.throws(() => unpackZip(zip(files), dir, LIMITS), (error: Error) => error instanceof UnsafeZipError && pattern.test(error.message));
  };
  refused({ link: [Buffer.from('/etc'), { os: 3, attrs: (0o120777 << 16) >>> 0 }] }, /symbolic link/);
  refused({ fifo: [Buffer.alloc(0), { os: 3, attrs: (0o010644 << 16) >>> 0 }] }, /not a regular file/);
  refused({ 'a/b': Buffer.from('x'), 'a/./b': Buffer.from('y') }, /twice/);
  refused({ a: Buffer.from('file'), 'a/b': Buffer.from('inside') }, /both as a file and as a directory|also a file/);

  const encrypted = zip({ 'secret.txt': Buffer.from('x') });
  encrypted.writeUInt16LE(encrypted.readUInt16LE(centralEntry(encrypted) + 8) | 1, centralEntry(encrypted) + 8);
  assert.throws(() => unpackZip(encrypted, makeTempDir(t), LIMITS), /encrypted/);
});

test('limits: total unpacked bytes (actually inflated, whatever the zip declares) and entry count', (t) => {
  const bomb = zip({ 'zeros.bin': new Uint8Array(8 * 1024 * 1024) });
  assert.ok(bomb.length < 64 * 1024, 'a real bomb: small zip, big content');
  assert.throws(() => unpackZip(bomb, makeTempDir(t), LIMITS), /more than the limit of 1048576 bytes/);

  // The same bomb declaring a tiny size: inflating stops at the declared size and says the zip lies.
  const lying = Buffer.from(bomb);
  lying.writeUInt32LE(1000, centralEntry(lying) + 24);
  const dir = makeTempDir(t);
  assert.throws(() => unpackZip(lying, dir, LIMITS), /more than its declared size/);
  assert.ok(fs.statSync(path.join(dir, 'zeros.bin')).size <= 1000 + 64 * 1024);

  // Several zips of one task share the budget.
  const half = zip({ 'half.bin': new Uint8Array(600 * 1024) });
  const budget = { bytes: 0, files: 0 };
  unpackZip(half, makeTempDir(t), LIMITS, budget);
  assert.throws(() => unpackZip(half, makeTempDir(t), LIMITS, budget), /task's zips unpack to more than/);

  const files: Zippable = {};
  for (let i = 0; i < 101; i++) files[`f${i}`] = Buffer.from('x');
  assert.throws(() => unpackZip(zip(files), makeTempDir(t), LIMITS), /101 entries, more than the limit of 100/);
});

test('corrupt zips are reported as corrupt, not unpacked half-silently', (t) => {
  const good = zip({ 'a.txt': Buffer.from('hello hello hello hello') }, 0);
  const badCrc = Buffer.from(good);
  badCrc.writeUInt32LE((badCrc.readUInt32LE(centralEntry(badCrc) + 16) ^ 1) >>> 0, centralEntry(badCrc) + 16);
  assert.throws(() => unpackZip(badCrc, makeTempDir(t), LIMITS), /fails its checksum/);
  assert.throws(() => unpackZip(Buffer.from('hello'), makeTempDir(t), LIMITS), /not a zip/);
  assert.throws(() => unpackZip(good.subarray(0, good.length - 30), makeTempDir(t), LIMITS), UnsafeZipError);
  // A zip with a comment after its end record still opens.
  const plain = zip({ 'c.txt': Buffer.from('c') });
  const comment = Buffer.from('made by a test');
  const commented = Buffer.concat([plain, comment]);
  commented.writeUInt16LE(comment.length, plain.length - 2);
  const withComment = makeTempDir(t);
  unpackZip(commented, withComment, LIMITS);
  assert.equal(fs.readFileSync(path.join(withComment, 'c.txt'), 'utf8'), 'c');
});
