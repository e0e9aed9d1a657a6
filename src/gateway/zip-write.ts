// Writing a zip of a few files held in memory: the name+text pairs of a submission (compile_source_name
// and _str) and the files `kv2 task submit --source` sends. fflate's deflate (JavaScript) at level 6 took
// 1.4 s of a gateway's CPU profile in the benchmark; node's zlib deflates natively, several times faster,
// and a zip needs no more around the deflated bytes than a local header per file, a central directory
// and its end record (APPNOTE.TXT 4.3), written here. No zip64: a task is far below 4 GiB.
import zlib from 'node:zlib';
import { TooLargeError } from '../common/errors';

export interface ZipEntry {
  /** Path inside the zip, `/`-separated (the caller checks it). */
  name: string;
  data: Buffer;
}

const LOCAL = 0x04034b50;
const CENTRAL = 0x02014b50;
const END = 0x06054b50;
/** Version 2.0 (deflate) needed; made by 2.0 on Unix (3), so the external attributes carry a Unix mode. */
const VERSION_NEEDED = 20;
const MADE_BY = (3 << 8) | 20;
/** A regular file, rw-r--r--. */
const FILE_MODE = 0o100644;
/** General purpose flag bit 11: the name is UTF-8. */
const UTF8_NAME = 0x0800;
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
  end.writeUInt32LE(END, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(directory.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...parts, directory, end]);
}
