// The mongod child process: its command line (the original's flags plus what kv2 needs), its output
// captured line by line into the module log at mongod's own severity, a leftover mongod from a killed
// module found and stopped, and a clean stop (the shutdown command, then SIGTERM, then SIGKILL).
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { MongoClient } from 'mongodb';
import { describeError } from '../common/errors';
import type { Logger } from '../common/logging';
import { exited, exitedWithin, forEachLine, isAlive, sleep, spawnInGroup, stopChild } from '../common/processes';
import { shutdown } from './commands';
import { directUri, type MongodbConfig } from './config';

export function mongodArgs(config: Pick<MongodbConfig, 'replica_set' | 'listen' | 'cache_size_gb'>, dataDir: string): string[] {
  const address = config.listen.address;
  // The shutdown command is only accepted over loopback on a mongod without authentication, and local
  // clients use 127.0.0.1: make sure mongod listens there too.
  const bind = ['0.0.0.0', '::', '127.0.0.1', 'localhost'].includes(address) ? address : `${address},127.0.0.1`;
  const args = [
    '--replSet', config.replica_set,
    '--bind_ip', bind,
    '--port', String(config.listen.port),
    '--dbpath', dataDir,
    // No /tmp/mongodb-<port>.sock: kv2 talks TCP, and a socket left by a killed mongod blocks the next one.
    '--nounixsocket',
  ];
  if (address === '::') args.push('--ipv6');
  if (config.cache_size_gb !== null) args.push('--wiredTigerCacheSizeGB', String(config.cache_size_gb));
  return args;
}

export interface MongodLogLine {
  level: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';
  message: string;
  fields: Record<string, unknown>;
}

/** mongod 4.4+ severities ("s"): F, E, W, I, D1..D5. */
function levelFromSeverity(severity: string): MongodLogLine['level'] {
  switch (severity[0]) {
    case 'F':
      return 'fatal';
    case 'E':
      return 'error';
    case 'W':
      return 'warn';
    case 'D':
      return 'debug';
    default:
      return 'info';
  }
}

/** Index of the severity letter in mongod's text log (4.2 and older): "2020-02-27T10:15:52.123+0000 I  CONTROL". */
export const TEXT_SEVERITY_POSITION = 29;

/**
 * One line of mongod output: structured JSON (4.4+: {"t":{"$date":...},"s":"I","c":"NETWORK","id":...,
 * "ctx":...,"msg":...,"attr":{...}}) or the older text format, whose severity letter sits at column 29.
 */
export function parseMongodLogLine(line: string): MongodLogLine {
  if (line.startsWith('{')) {
    try {
      const entry = JSON.parse(line) as Record<string, unknown>;
      if (typeof entry.s === 'string' && typeof entry.msg === 'string') {
        const fields: Record<string, unknown> = { c: entry.c, id: entry.id, ctx: entry.ctx };
        if (entry.attr !== undefined) fields.attr = entry.attr;
        if (entry.tags !== undefined) fields.tags = entry.tags;
        return { level: levelFromSeverity(entry.s), message: entry.msg, fields };
      }
    } catch {
      // not JSON after all: fall through
    }
  }
  const letter = line[TEXT_SEVERITY_POSITION];
  const level = letter && /[FEWID]/.test(letter) && /^\d{4}-\d{2}-\d{2}T/.test(line) ? levelFromSeverity(letter) : 'info';
  return { level, message: line, fields: {} };
}

export function logMongodLine(logger: Logger, line: string): void {
  if (!line.trim()) return;
  const { level, message, fields } = parseMongodLogLine(line);
  logger[level]({ source: 'mongod', ...fields }, message);
}

/**
 * A mongod left running on this data dir by a module that was killed (SIGKILL skips our cleanup, and
 * mongod runs in its own process group): its pid is in <dbpath>/mongod.lock while it runs. It is stopped
 * before a new one starts, which would otherwise fail on the lock and the port.
 */
export async function stopLeftoverMongod(dataDir: string, logger: Logger, graceMs: number): Promise<void> {
  let pid: number;
  try {
    pid = Number(fs.readFileSync(path.join(dataDir, 'mongod.lock'), 'utf8').trim());
  } catch {
    return;
  }
  if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid || !isAlive(pid)) return;
  let cmdline = '';
  try {
    cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
  } catch {
    return;
  }
  if (!/mongod/.test(cmdline) || !cmdline.includes(dataDir)) return;
  logger.warn({ pid, dataDir }, `a mongod (pid ${pid}) left by an earlier run still holds ${dataDir}; stopping it`);
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (isAlive(pid) && Date.now() < deadline) await sleep(100);
  if (isAlive(pid)) {
    logger.warn({ pid }, `mongod ${pid} did not stop within ${graceMs} ms; killing it`);
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
    while (isAlive(pid)) await sleep(100);
  }
}

export class MongodProcess {
  readonly child: ChildProcess;
  readonly exit: Promise<number | NodeJS.Signals>;
  /** The last lines mongod printed, for the message when it dies. */
  private readonly tail: string[] = [];

  constructor(exe: string, args: readonly string[], logger: Logger) {
    this.child = spawnInGroup(exe, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.exit = exited(this.child);
    const onLine = (line: string) => {
      this.tail.push(line);
      if (this.tail.length > 20) this.tail.shift();
      logMongodLine(logger, line);
    };
    forEachLine(this.child.stdout, onLine);
    forEachLine(this.child.stderr, onLine);
    this.child.on('error', (error) => logger.error({ err: describeError(error) }, `could not run ${exe}`));
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  lastLines(): string[] {
    return [...this.tail];
  }

  /**
   * Stops mongod cleanly: the shutdown command (a primary hands over to a caught-up secondary within
   * `step_down_secs`; if it cannot, a forced shutdown), then SIGTERM, then SIGKILL of its process group,
   * each after `timeout` seconds.
   */
  async stop(config: Pick<MongodbConfig, 'listen' | 'stop'>, logger: Logger): Promise<void> {
    if (!this.running) {
      await stopChild(this.child, { graceMs: 0 });
      return;
    }
    const graceMs = config.stop.timeout * 1000;
    const client = new MongoClient(directUri(config), { serverSelectionTimeoutMS: 3_000, connectTimeoutMS: 3_000 });
    try {
      const admin = client.db('admin');
      const signal = AbortSignal.timeout(config.stop.step_down_secs * 1000 + graceMs);
      try {
        await shutdown(admin, { timeoutSecs: config.stop.step_down_secs, signal });
      } catch (error) {
        logger.warn({ err: describeError(error) }, 'mongod refused a clean shutdown (no caught-up secondary to hand over to?); forcing it');
        await shutdown(admin, { timeoutSecs: 0, force: true, signal }).catch((forced: unknown) =>
          logger.warn({ err: describeError(forced) }, 'the forced shutdown command failed too'),
        );
      }
    } catch (error) {
      logger.warn({ err: describeError(error) }, 'could not send mongod the shutdown command');
    } finally {
      await client.close().catch(() => undefined);
    }
    if (await exitedWithin(this.child, graceMs)) {
      await stopChild(this.child, { graceMs: 0 });
      logger.info('mongod stopped');
      return;
    }
    logger.warn(`mongod did not exit within ${config.stop.timeout} s of the shutdown command; sending SIGTERM`);
    await stopChild(this.child, { signal: 'SIGTERM', graceMs });
    logger.info('mongod stopped');
  }
}
