// Structured logs (pino, JSON lines) for every kv2 process: one rotated file per module, and optionally a
// copy on stdout (pretty on a terminal, JSON otherwise). Everything runs in-process: pino transports
// start worker threads from module paths, which a single executable cannot provide.
import fs from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import pretty from 'pino-pretty';

export type Logger = pino.Logger;

export interface LogSettings {
  /** Directory of the module's log files; undefined logs to stdout only. */
  dir?: string;
  /** File name inside `dir`. */
  file?: string;
  /** Rotate when the file grows past this many bytes. */
  maxBytes: number;
  /** How many rotated files to keep (`<file>.1` is the newest). */
  keep: number;
  /** Also copy every line to stdout (the `--<module>-print-log` flags). */
  printToStdout: boolean;
  level?: pino.Level;
}

export const DEFAULT_LOG_ROTATION = { maxBytes: 10 * 1024 * 1024, keep: 5 } as const;

/**
 * Opens a log file for appending, readable by its owner only: logs name tasks, users and addresses,
 * and a task run without a sandbox must not read them. A file made 0644 by an older kv2 is closed up.
 */
function openPrivate(file: string): number {
  const fd = fs.openSync(file, 'a', 0o600);
  if ((fs.fstatSync(fd).mode & 0o077) !== 0) fs.fchmodSync(fd, 0o600);
  return fd;
}

/**
 * A size-rotated log file written synchronously, so that a crash never loses the last lines (the ones an
 * operator needs most) and no worker thread is involved.
 */
export class RotatingFile {
  private fd: number;
  private size: number;

  constructor(
    private readonly file: string,
    private readonly maxBytes: number,
    private readonly keep: number,
  ) {
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    this.fd = openPrivate(file);
    this.size = fs.fstatSync(this.fd).size;
  }

  write(chunk: string): boolean {
    const bytes = Buffer.byteLength(chunk);
    if (this.size > 0 && this.size + bytes > this.maxBytes) this.rotate();
    fs.writeSync(this.fd, chunk);
    this.size += bytes;
    return true;
  }

  private rotate(): void {
    fs.closeSync(this.fd);
    for (let i = this.keep - 1; i >= 1; i--) {
      const from = `${this.file}.${i}`;
      if (fs.existsSync(from)) fs.renameSync(from, `${this.file}.${i + 1}`);
    }
    if (this.keep > 0) fs.renameSync(this.file, `${this.file}.1`);
    else fs.truncateSync(this.file);
    this.fd = openPrivate(this.file);
    this.size = 0;
  }

  close(): void {
    fs.closeSync(this.fd);
  }
}

/** Creates the logger of one module (or of the supervisor, or of a command). */
export function createLogger(name: string, settings: LogSettings): Logger {
  const streams: pino.StreamEntry[] = [];
  if (settings.dir) {
    const file = path.join(settings.dir, settings.file ?? `${name}.log`);
    streams.push({ level: 'trace', stream: new RotatingFile(file, settings.maxBytes, settings.keep) });
  }
  if (settings.printToStdout || !settings.dir) {
    streams.push({ level: 'trace', stream: stdoutStream() });
  }
  return pino(
    {
      level: settings.level ?? (process.env.KV2_LOG_LEVEL as pino.Level | undefined) ?? 'info',
      // `component` (not `module`/`name`): the supervisor logs about modules, and etcd has `name` fields.
      base: { pid: process.pid, component: name },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    pino.multistream(streams),
  );
}

function stdoutStream(): pino.DestinationStream {
  if (process.stdout.isTTY) {
    return pretty({ colorize: true, sync: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' });
  }
  return pino.destination({ fd: 1, sync: true });
}

/** Maps a severity word from another program's log (etcd's zap, mongod's JSON) to a pino level. */
export function levelFromWord(word: string | undefined): pino.Level {
  switch ((word ?? '').toLowerCase()) {
    case 'debug':
    case 'd':
      return 'debug';
    case 'warn':
    case 'warning':
    case 'w':
      return 'warn';
    case 'error':
    case 'e':
      return 'error';
    case 'fatal':
    case 'panic':
    case 'dpanic':
    case 'f':
    case 'c':
      return 'fatal';
    default:
      return 'info';
  }
}
