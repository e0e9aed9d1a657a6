// The task's zip format, read and written in one place. Reading: unpacking a task's zip (compile sources,
// execute data) into its work dir (or, for a tests zip, into memory), refusing anything that could reach outside it or flood the disk:
// absolute or `..` paths, links and other special entries, encrypted entries, too many files, too many
// unpacked bytes (counted while inflating: declared sizes can lie); and the lighter check the edges make
// of an uploaded zip before anything is stored. Both walk the central directory here (fflate does not
// expose entry types). node:zlib inflates an entry in one call, bounded by what it may unpack to; fflate
// streams the rare entry too large to hold at once. Writing: the zips kv2 makes itself (a submission's
// name+text pairs, `kv2 task submit --source`).
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { Inflate } from 'fflate';
import { InvalidInputError, TooLargeError } from '../common/errors';
import { MAX_FILE_NAME_BYTES } from './limits';

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

/** An entry as the central directory records it, before any of kv2's rules. */
interface RawEntry {
  raw: string;
  madeBy: number;
  flags: number;
  method: number;
  crc: number;
  compressedSize: number;
  size: number;
  external: number;
  localOffset: number;
}

/**
 * The central directory's entries (zip64 too). Throws UnsafeZipError when `zip` is not a zip or its
 * directory is damaged, or when it holds more than `maxFiles` entries (checked before walking them).
 */
function centralDirectory(zip: Buffer, maxFiles: number): RawEntry[] {
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
  if (count > maxFiles) bad(`the zip holds ${count} entries, more than the limit of ${maxFiles}`);
  if (cdOffset + cdSize > zip.length) bad('corrupt zip (central directory out of bounds)');

  const entries: RawEntry[] = [];
  let at = cdOffset;
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
    entries.push({ raw: nameBytes.toString('utf8'), madeBy, flags, method, crc, compressedSize, size, external, localOffset });
  }
  return entries;
}

/** Lists the entries from the central directory, checking every name and type. */
export function readEntries(zip: Buffer, limits: ZipLimits): Entry[] {
  const entries: Entry[] = [];
  const seen = new Set<string>();
  let declared = 0;
  for (const { raw, madeBy, flags, method, crc, compressedSize, size, external, localOffset } of centralDirectory(zip, limits.maxFiles)) {
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
      inflateEntry(zip, entry, limits, budget, (chunk) => writeAll(fd, chunk));
    } finally {
      fs.closeSync(fd);
    }
  }
}

/** Writes all of `chunk` (a write may be partial). */
function writeAll(fd: number, chunk: Uint8Array): void {
  for (let at = 0; at < chunk.length; ) at += fs.writeSync(fd, chunk, at, chunk.length - at);
}

/**
 * Reads the files of `zip` into memory (issue 17: a task's tests_zip), with the same rules and limits as
 * unpacking it: the names are checked, directories are left out. Throws UnsafeZipError saying why.
 */
export function readZipFiles(zip: Buffer, limits: ZipLimits): { name: string; data: Buffer }[] {
  const budget = { bytes: 0, files: 0 };
  return readEntries(zip, limits)
    .filter((entry) => !entry.directory)
    .map((entry) => {
      const chunks: Buffer[] = [];
      inflateEntry(zip, entry, limits, budget, (chunk) => chunks.push(Buffer.from(chunk)));
      return { name: entry.name, data: Buffer.concat(chunks) };
    });
}

/** Inflates one entry into `sink`, counting it against the budget and checking its size and checksum. */
function inflateEntry(zip: Buffer, entry: Entry, limits: ZipLimits, budget: { bytes: number }, sink: (chunk: Uint8Array) => void): void {
  const data = entryData(zip, entry);
  let written = 0;
  let crc = 0;
  const write = (chunk: Uint8Array) => {
    written += chunk.length;
    budget.bytes += chunk.length;
    if (written > entry.size) bad(`corrupt zip ("${entry.name}" unpacks to more than its declared size)`);
    if (budget.bytes > limits.maxBytes) bad(`the task's zips unpack to more than the limit of ${limits.maxBytes} bytes`);
    crc = zlib.crc32(chunk, crc);
    sink(chunk);
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

// ---------------------------------------------------------------------------------------------------
// The edges' check of an uploaded zip

/**
 * Checks that uploaded bytes are a zip whose entries stay inside the directory they are unpacked into.
 * The executor checks again (and more) when it unpacks; refusing here tells the user at once, and
 * stores nothing. `what` names the field in the message.
 */
export function checkZip(bytes: Buffer, what: string): void {
  if (bytes.length === 0) return;
  let entries: RawEntry[];
  try {
    // The directory only: nothing is inflated.
    entries = centralDirectory(bytes, Number.POSITIVE_INFINITY);
  } catch (error) {
    throw new InvalidInputError(`${what} is not a zip archive (${(error as Error).message})`);
  }
  for (const { raw: name } of entries) {
    const parts = name.split(/[/\\]+/);
    if (name.startsWith('/') || name.startsWith('\\') || /^[A-Za-z]:/.test(name) || parts.includes('..')) {
      throw new InvalidInputError(`${what} holds ${quoted(name)}, a path that leaves the task directory; only relative paths without ".." are accepted`);
    }
    if (name.includes('\0')) throw new InvalidInputError(`${what} holds an entry whose name contains NUL`);
  }
}

/**
 * A file name for a name+text pair: a plain name that lands in the task's directory and nowhere else
 * (the original joined it onto a path unchecked, so `../x` or `/etc/x` wrote anywhere).
 */
export function checkFileName(name: string, what: string): string {
  if (name === '.' || name === '..') throw new InvalidInputError(`${what} cannot be "${name}"`);
  if (/[/\\]/.test(name)) throw new InvalidInputError(`${what} must be a plain file name, without "/" or "\\": ${quoted(name)}`);
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(name)) throw new InvalidInputError(`${what} cannot contain control characters (NUL, newline, ...)`);
  if (Buffer.byteLength(name) > MAX_FILE_NAME_BYTES) throw new InvalidInputError(`${what} is longer than ${MAX_FILE_NAME_BYTES} bytes`);
  return name;
}

/** A name (or any text) in a message: quoted, and cut at 60 characters. */
function quoted(text: string): string {
  return JSON.stringify(text.length > 60 ? `${text.slice(0, 60)}...` : text);
}

// ---------------------------------------------------------------------------------------------------
// Writing: a zip of a few files held in memory. fflate's deflate (JavaScript) at level 6 took 1.4 s of a
// gateway's CPU profile in the benchmark; node's zlib deflates natively, several times faster, and a zip
// needs no more around the deflated bytes than a local header per file, a central directory and its end
// record (APPNOTE.TXT 4.3), written here. No zip64: a task is far below 4 GiB.

export interface ZipEntry {
  /** Path inside the zip, `/`-separated (the caller checks it). */
  name: string;
  data: Buffer;
}

/** Version 2.0 (deflate) needed; made by 2.0 on Unix (3), so the external attributes carry a Unix mode. */
const VERSION_NEEDED = 20;
const MADE_BY = (3 << 8) | 20;
/** A regular file, rw-r--r--. */
const FILE_MODE = 0o100644;
/** General purpose flag bit 11: the name is UTF-8. */
const UTF8_NAME = 0x0800;
/** Sizes and offsets a zip without zip64 can hold (none of kv2's zips needs more: a task is far smaller). */
const LIMIT = 0xffffffff;

/** The DOS time and date of `date` (local time, 2-second resolution, from 1980), as zips keep them. */
function dosTime(date: Date): { time: number; date: number } {
  const year = Math.min(Math.max(date.getFullYear(), 1980), 2107);
  return {
    time: (date.getHours() << 11) | (date.getMinutes() << 5) | (date.getSeconds() >> 1),
    date: ((year - 1980) << 9) | ((date.getMonth() + 1) << 5) | date.getDate(),
  };
}

/**
 * A zip of `entries`, each deflated by zlib at `level` (stored as is when deflating does not make it
 * smaller), dated `modified`.
 */
export function writeZip(entries: readonly ZipEntry[], options: { level?: number; modified?: Date } = {}): Buffer {
  if (entries.length > 0xffff) throw new TooLargeError(`a zip holds at most 65535 files here, not ${entries.length}`);
  const { time, date } = dosTime(options.modified ?? new Date());
  const parts: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const entry of entries) {
    const name = Buffer.from(entry.name, 'utf8');
    const deflated = zlib.deflateRawSync(entry.data, { level: options.level ?? 6 });
    const stored = deflated.length >= entry.data.length;
    const body = stored ? entry.data : deflated;
    if (entry.data.length >= LIMIT || offset + body.length >= LIMIT) throw new TooLargeError(`${entry.name} makes the zip larger than 4 GiB`);
    const flags = /[^\x20-\x7e]/.test(entry.name) ? UTF8_NAME : 0;
    const method = stored ? 0 : 8;
    const crc = zlib.crc32(entry.data);

    // The fields from "version needed" to the name's length are the same in both headers.
    const common = (header: Buffer, at: number) => {
      header.writeUInt16LE(VERSION_NEEDED, at);
      header.writeUInt16LE(flags, at + 2);
      header.writeUInt16LE(method, at + 4);
      header.writeUInt16LE(time, at + 6);
      header.writeUInt16LE(date, at + 8);
      header.writeUInt32LE(crc, at + 10);
      header.writeUInt32LE(body.length, at + 14);
      header.writeUInt32LE(entry.data.length, at + 18);
      header.writeUInt16LE(name.length, at + 22);
    };
    // Extra fields, comments, disk numbers and internal attributes: all 0 (Buffer.alloc).
    const local = Buffer.alloc(30);
    local.writeUInt32LE(LOCAL, 0);
    common(local, 4);
    const record = Buffer.alloc(46);
    record.writeUInt32LE(CENTRAL, 0);
    record.writeUInt16LE(MADE_BY, 4);
    common(record, 6);
    record.writeUInt32LE(FILE_MODE * 0x10000, 38);
    record.writeUInt32LE(offset, 42);

    parts.push(local, name, body);
    central.push(record, name);
    offset += local.length + name.length + body.length;
  }
  const directory = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(EOCD, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(directory.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...parts, directory, end]);
}

/** A zip holding one file: the original's name+text pairs (CRLF turned into LF, as it did). */
export function zipOneFile(name: string, text: string): Buffer {
  return writeZip([{ name, data: Buffer.from(text.replace(/\r\n/g, '\n'), 'utf8') }]);
}
