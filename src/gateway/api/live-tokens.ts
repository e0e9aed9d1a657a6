// The gateway's API tokens as they are now: the flags' admin tokens plus the tokens file, read again on
// SIGHUP and whenever the file changes (fs.watch on its directory, which also sees an editor's
// rename-over-the-file, and a periodic stat in case the watch misses it: network file systems, a
// container's bind mount). A file that cannot be read or parsed keeps the tokens in force and says why
// in the log; no restart is ever needed.
import fs from 'node:fs';
import path from 'node:path';
import { describeError } from '../../common/errors';
import type { Logger } from '../../common/logging';
import { TokenCheck, adminTokens, readTokensFile, type TokenEntry } from './auth';

/** Milliseconds between two stats of the tokens file (the fallback to fs.watch). */
export const TOKENS_FILE_POLL_MS = 5_000;
/** Milliseconds a burst of change events (an editor writing in steps) is let settle before the file is read. */
const CHANGE_SETTLE_MS = 100;

export interface LiveTokensOptions {
  /** `--server-token`: admin tokens, fixed for the process's life. */
  flagTokens: readonly string[];
  /** The tokens file, or null. */
  file: string | null;
  logger: Logger;
  pollMs?: number;
}

export class LiveTokens {
  private check: TokenCheck;
  private fileEntries: TokenEntry[] = [];
  private lastStat = '';
  private timer: NodeJS.Timeout | undefined;
  private settle: NodeJS.Timeout | undefined;
  private watcher: fs.FSWatcher | undefined;
  private readonly onHangup = () => this.reload('SIGHUP');

  /** Reads the file once: at start a bad file is a ConfigError (the gateway does not start on it). */
  constructor(private readonly options: LiveTokensOptions) {
    if (options.file) {
      this.fileEntries = readTokensFile(options.file);
      this.lastStat = statKey(options.file);
    }
    this.check = this.build();
  }

  /** The check in force now. */
  get current(): TokenCheck {
    return this.check;
  }

  /** Starts following SIGHUP and the file; stops when `signal` aborts. */
  follow(signal: AbortSignal): void {
    process.on('SIGHUP', this.onHangup);
    const file = this.options.file;
    if (file) {
      try {
        this.watcher = fs.watch(path.dirname(file), { persistent: false }, (_event, name) => {
          if (name === null || name === path.basename(file)) this.soon();
        });
        this.watcher.on('error', (error) => this.options.logger.warn({ err: describeError(error) }, 'cannot watch the API tokens file; it is still checked every few seconds'));
      } catch (error) {
        this.options.logger.warn({ err: describeError(error) }, 'cannot watch the API tokens file; it is still checked every few seconds');
      }
      this.timer = setInterval(() => {
        if (statKey(file) !== this.lastStat) this.reload('change');
      }, this.options.pollMs ?? TOKENS_FILE_POLL_MS);
      this.timer.unref();
    }
    signal.addEventListener('abort', () => this.stop(), { once: true });
  }

  stop(): void {
    process.off('SIGHUP', this.onHangup);
    clearInterval(this.timer);
    clearTimeout(this.settle);
    this.watcher?.close();
  }

  /** Reads the tokens file again; keeps the tokens in force when it cannot. */
  reload(why: string): void {
    const { file, logger } = this.options;
    if (!file) {
      if (why === 'SIGHUP') logger.info('SIGHUP: no API tokens file to read again (the --server-token tokens stay as they are)');
      return;
    }
    this.lastStat = statKey(file);
    try {
      this.fileEntries = readTokensFile(file);
    } catch (error) {
      logger.error({ file, err: describeError(error), why }, `the API tokens file cannot be used; the ${this.check.counts.tokens} token(s) in force stay: ${describeError(error)}`);
      return;
    }
    this.check = this.build();
    const counts = this.check.counts;
    logger.info({ file, why, ...counts }, `API tokens read again (${why}): ${counts.tokens} token(s), ${counts.users} of them users'`);
  }

  private soon(): void {
    clearTimeout(this.settle);
    this.settle = setTimeout(() => this.reload('change'), CHANGE_SETTLE_MS);
    this.settle.unref();
  }

  private build(): TokenCheck {
    // With a tokens file the API is never open, not even while the file holds no token.
    return new TokenCheck([...adminTokens(this.options.flagTokens), ...this.fileEntries], this.options.file !== null);
  }
}

/** What changes when the file does (a missing file counts as a state too). */
function statKey(file: string): string {
  try {
    const stat = fs.statSync(file);
    return `${stat.ino}:${stat.size}:${stat.mtimeMs}`;
  } catch (error) {
    return `missing:${(error as NodeJS.ErrnoException).code ?? ''}`;
  }
}
