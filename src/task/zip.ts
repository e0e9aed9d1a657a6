// Unpacking a task's zip (compile sources, execute data) into its work dir, refusing anything that could
// reach outside it or flood the disk: absolute or `..` paths, links and other special entries, encrypted
// entries, too many files, too many unpacked bytes (counted while inflating: declared sizes can lie).
// The central directory is read here (fflate does not expose entry types). node:zlib inflates an entry in
// one call, bounded by what it may unpack to; fflate streams the rare entry too large to hold at once.
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { Inflate } from 'fflate';
import { InvalidInputError } from '../common/errors';

export interface ZipLimits {
  /** Total bytes all entries may unpack to. */
  maxBytes: number;
  /** Entries (files and directories) a zip may hold. */
  maxFiles: number;
}

/** A zip that cannot be unpacked safely; the message says why, for the task's compile_error. */
export class UnsafeZipError extends InvalidInputError {}

interface Entry {
  name: string;
  method: number;
  flags: number;
  crc: number;
  compressedSize: number;
  size: number;
  localOffset: number;
  /** Unix mode from the external attributes, when the zip was made on Unix. */
  mode: number | undefined;
  directory: boolean;
}

const EOCD = 0x06054b50;
const ZIP64_LOCATOR = 0x07064b50;
const ZIP64_EOCD = 0x06064b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;
const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;
/** Bytes copied at a time, and compressed bytes inflated at a time (deflate expands up to ~1000x). */
const CHUNK = 64 * 1024;
const INFLATE_CHUNK = 4 * 1024;
/**
 * Entries that may unpack to at most this many bytes are inflated in one zlib call (its output bounded
 * by maxOutputLength: 20x faster than streaming, and still never more than the entry may hold); larger
 * ones are streamed, so that memory stays bounded whatever the limits.
 */
const INFLATE_WHOLE_MAX = 64 * 1024 * 1024;

function bad(message: string): never {
  throw new UnsafeZipError(message);
}

function findEnd(zip: Buffer): number {
  // The end record is at least 22 bytes and followed by a comment of at most 65535 bytes.
  const lowest = Math.max(0, zip.length - 22 - 0xffff);
  for (let at = zip.length - 22; at >= lowest; at--) {
    if (zip.readUInt32LE(at) === EOCD) return at;
  }
  return bad('not a zip file (no end of central directory record)');
}

function u64(buffer: Buffer, at: number): number {
  const value = buffer.readBigUInt64LE(at);
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) bad('a zip64 size or offset is out of range');
  return Number(value);
}

/** Lists the entries from the central directory, checking every name and type. */
export function readEntries(zip: Buffer, limits: ZipLimits): Entry[] {
  if (zip.length < 22) bad('not a zip file (too short)');
  const end = findEnd(zip);
  let count = zip.readUInt16LE(end + 10);
  let cdSize = zip.readUInt32LE(end + 12);
  let cdOffset = zip.readUInt32LE(end + 16);
  if ((count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) && end >= 20 && zip.readUInt32LE(end - 20) === ZIP64_LOCATOR) {
    const record = u64(zip, end - 20 + 8);
    if (record + 56 > zip.length || zip.readUInt32LE(record) !== ZIP64_EOCD) bad('corrupt zip64 end record');
    count = u64(zip, record + 32);
    cdSize = u64(zip, record + 40);
    cdOffset = u64(zip, record + 48);
  }
  if (count > limits.maxFiles) bad(`the zip holds ${count} entries, more than the limit of ${limits.maxFiles}`);
  if (cdOffset + cdSize > zip.length) bad('corrupt zip (central directory out of bounds)');

  const entries: Entry[] = [];
  const seen = new Set<string>();
  let at = cdOffset;
  let declared = 0;
  for (let i = 0; i < count; i++) {
    if (at + 46 > zip.length || zip.readUInt32LE(at) !== CENTRAL) bad('corrupt zip (bad central directory entry)');
    const madeBy = zip.readUInt16LE(at + 4) >> 8;
    const flags = zip.readUInt16LE(at + 8);
    const method = zip.readUInt16LE(at + 10);
    const crc = zip.readUInt32LE(at + 16);
    let compressedSize = zip.readUInt32LE(at + 20);
    let size = zip.readUInt32LE(at + 24);
    const nameLength = zip.readUInt16LE(at + 28);
    const extraLength = zip.readUInt16LE(at + 30);
    const commentLength = zip.readUInt16LE(at + 32);
    const external = zip.readUInt32LE(at + 38);
    let localOffset = zip.readUInt32LE(at + 42);
    const nameBytes = zip.subarray(at + 46, at + 46 + nameLength);
    const extra = zip.subarray(at + 46 + nameLength, at + 46 + nameLength + extraLength);
    at += 46 + nameLength + extraLength + commentLength;
    if (at > zip.length) bad('corrupt zip (central directory entry out of bounds)');

    // zip64: the real values follow in order for each field that is saturated.
    for (let e = 0; e + 4 <= extra.length; ) {
      const id = extra.readUInt16LE(e);
      const length = extra.readUInt16LE(e + 2);
      if (id === 0x0001) {
        let p = e + 4;
        if (size === 0xffffffff && p + 8 <= e + 4 + length) (size = u64(extra, p)), (p += 8);
        if (compressedSize === 0xffffffff && p + 8 <= e + 4 + length) (compressedSize = u64(extra, p)), (p += 8);
        if (localOffset === 0xffffffff && p + 8 <= e + 4 + length) localOffset = u64(extra, p);
      }
      e += 4 + length;
    }

    const raw = nameBytes.toString('utf8');
    const name = checkName(raw);
    const mode = madeBy === 3 ? external >>> 16 : undefined;
    const type = mode === undefined ? 0 : mode & S_IFMT;
    if (type === S_IFLNK) bad(`the zip entry "${raw}" is a symbolic link; links are not allowed in task zips`);
    if (type !== 0 && type !== S_IFREG && type !== S_IFDIR) bad(`the zip entry "${raw}" is not a regular file or directory`);
    const directory = raw.endsWith('/') || raw.endsWith('\\') || type === S_IFDIR || (mode === undefined && (external & 0x10) !== 0);
    if (flags & 0x1) bad(`the zip entry "${raw}" is encrypted; encrypted zips are not supported`);
    if (!directory && method !== 0 && method !== 8) bad(`the zip entry "${raw}" uses compression method ${method}; only stored and deflated entries are supported`);
    if (name === '') continue; // "./" and the like: the work dir itself
    if (seen.has(name)) bad(`the zip holds "${name}" twice`);
    seen.add(name);
    declared += directory ? 0 : size;
    if (declared > limits.maxBytes) bad(`the zip unpacks to more than the limit of ${limits.maxBytes} bytes`);
    entries.push({ name, method, flags, crc, compressedSize, size, localOffset, mode, directory });
  }
  return entries;
}

/**
 * The entry's path relative to the target dir, `/`-separated and without `.` parts; refuses names that
 * are absolute or climb out with `..` (zip-slip). Backslashes count as separators (zips made on Windows).
 */
export function checkName(raw: string): string {
  if (raw.includes('\0')) bad('a zip entry name contains a NUL byte');
  const unified = raw.replace(/\\/g, '/');
  if (unified.startsWith('/') || /^[A-Za-z]:/.test(unified)) bad(`the zip entry "${raw}" has an absolute path; only relative paths are allowed`);
  const parts = unified.split('/').filter((part) => part !== '' && part !== '.');
  if (parts.includes('..')) bad(`the zip entry "${raw}" contains ".."; paths that leave the task directory are not allowed`);
  return parts.join('/');
}

function entryData(zip: Buffer, entry: Entry): Buffer {
  const at = entry.localOffset;
  if (at + 30 > zip.length || zip.readUInt32LE(at) !== LOCAL) bad(`corrupt zip (bad local header for "${entry.name}")`);
  const start = at + 30 + zip.readUInt16LE(at + 26) + zip.readUInt16LE(at + 28);
  if (start + entry.compressedSize > zip.length) bad(`corrupt zip ("${entry.name}" is cut short)`);
  return zip.subarray(start, start + entry.compressedSize);
}

/** Makes `relative` (already checked) as a directory under `root`, refusing to go through anything that is not one. */
function ensureDir(root: string, relative: string): void {
  let current = root;
  for (const part of relative.split('/').filter(Boolean)) {
    current = path.join(current, part);
    let stat: fs.Stats | undefined;
    try {
      stat = fs.lstatSync(current);
    } catch {
      fs.mkdirSync(current, { mode: 0o755 });
      continue;
    }
    if (!stat.isDirectory()) bad(`the zip needs "${relative}" to be a directory, but it is also a file`);
  }
}

/**
 * Unpacks `zip` into `root` (which must exist). `budget` tracks bytes and files across the zips of one
 * task. Throws UnsafeZipError with a message for the user on anything refused or corrupt.
 */
export function unpackZip(zip: Buffer, root: string, limits: ZipLimits, budget: { bytes: number; files: number } = { bytes: 0, files: 0 }): void {
  const entries = readEntries(zip, limits);
  budget.files += entries.length;
  if (budget.files > limits.maxFiles) bad(`the task's zips hold ${budget.files} entries, more than the limit of ${limits.maxFiles}`);
  for (const entry of entries) {
    if (entry.directory) {
      ensureDir(root, entry.name);
      continue;
    }
    const slash = entry.name.lastIndexOf('/');
    if (slash > 0) ensureDir(root, entry.name.slice(0, slash));
    const target = path.join(root, entry.name);
    // Never write through a link (none can exist, we make none) and never into an existing directory.
    try {
      const stat = fs.lstatSync(target);
      if (stat.isDirectory()) bad(`the zip holds "${entry.name}" both as a file and as a directory`);
      fs.unlinkSync(target);
    } catch (error) {
      if (error instanceof UnsafeZipError) throw error;
    }
    const executable = entry.mode !== undefined && (entry.mode & 0o111) !== 0;
    const fd = fs.openSync(target, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, executable ? 0o755 : 0o644);
    try {
      writeEntry(fd, entryData(zip, entry), entry, limits, budget);
    } finally {
      fs.closeSync(fd);
    }
  }
}

/** Writes all of `chunk` (a write may be partial). */
function writeAll(fd: number, chunk: Uint8Array): void {
  for (let at = 0; at < chunk.length; ) at += fs.writeSync(fd, chunk, at, chunk.length - at);
}

function writeEntry(fd: number, data: Buffer, entry: Entry, limits: ZipLimits, budget: { bytes: number }): void {
  let written = 0;
  let crc = 0;
  const write = (chunk: Uint8Array) => {
    written += chunk.length;
    budget.bytes += chunk.length;
    if (written > entry.size) bad(`corrupt zip ("${entry.name}" unpacks to more than its declared size)`);
    if (budget.bytes > limits.maxBytes) bad(`the task's zips unpack to more than the limit of ${limits.maxBytes} bytes`);
    crc = zlib.crc32(chunk, crc);
    writeAll(fd, chunk);
  };
  // The most this entry may unpack to: its declared size, and what is left of the task's budget.
  const cap = Math.max(0, Math.min(entry.size, limits.maxBytes - budget.bytes));
  if (entry.method === 0) {
    for (let at = 0; at < data.length; at += CHUNK) write(data.subarray(at, at + CHUNK));
  } else if (cap < INFLATE_WHOLE_MAX) {
    let inflated: Buffer;
    try {
      // One byte past the cap is enough to tell that the entry lies or the budget is exceeded.
      inflated = zlib.inflateRawSync(data, { maxOutputLength: cap + 1 });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
        if (cap === entry.size) bad(`corrupt zip ("${entry.name}" unpacks to more than its declared size)`);
        bad(`the task's zips unpack to more than the limit of ${limits.maxBytes} bytes`);
      }
      if ((error as NodeJS.ErrnoException).code === 'Z_BUF_ERROR') bad(`corrupt zip ("${entry.name}" is cut short)`);
      bad(`corrupt zip ("${entry.name}" cannot be inflated: ${(error as Error).message})`);
    }
    write(inflated);
  } else {
    let finished = false;
    const inflate = new Inflate((chunk, final) => {
      if (chunk.length) write(chunk);
      if (final) finished = true;
    });
    try {
      for (let at = 0; at < data.length; at += INFLATE_CHUNK) inflate.push(data.subarray(at, at + INFLATE_CHUNK), at + INFLATE_CHUNK >= data.length);
      if (data.length === 0) inflate.push(new Uint8Array(0), true);
    } catch (error) {
      if (error instanceof UnsafeZipError) throw error;
      bad(`corrupt zip ("${entry.name}" cannot be inflated: ${(error as Error).message})`);
    }
    if (!finished) bad(`corrupt zip ("${entry.name}" is cut short)`);
  }
  if (written !== entry.size) bad(`corrupt zip ("${entry.name}" unpacks to ${written} bytes, not the ${entry.size} it declares)`);
  if ((crc >>> 0) !== entry.crc) bad(`corrupt zip ("${entry.name}" fails its checksum)`);
}
