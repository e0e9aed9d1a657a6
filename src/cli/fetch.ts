// `kv2 fetch mongod [--version x.y.z]`: downloads a mongod into the cache (mongodb-memory-server's layout
// under $KV2_CACHE_DIR/mongodb-binaries), with a progress bar, on a machine with internet. Judicators then
// find it there (src/mongodb/binary.ts) without --mongodb-download.
import type { CAC } from 'cac';
import { UsageError } from '../common/errors';
// The MongoDB libraries load only when a download is asked for: every other kv2 command stays light.
import type { ProgressListener } from '../mongodb/binary';
import type { Run } from './shared';

export const FETCHABLE = ['mongod'] as const;

export function registerFetchCommand(cli: CAC, run: Run): void {
  cli
    .command('fetch <program> [version]', 'Download a program into the cache: mongod (through mongodb-memory-server; needs internet)')
    .usage('fetch mongod [--version x.y.z]')
    .option('--version [version]', "mongod version to download (default: mongodb-memory-server's default)")
    .example('fetch mongod')
    .example('fetch mongod --version 7.0.14')
    // The global boolean `-v, --version` shadows the option in cac's parsing: read it as typed.
    // (cac then leaves its value as a positional argument, hence `[version]`, which also allows
    // `kv2 fetch mongod 7.0.14`).
    .action((program: string, positional: string | undefined) => {
      const flag = versionArgument(cli.rawArgs);
      const version = typeof flag === 'string' ? flag : (positional ?? flag);
      run(() => fetchProgram(program, { version }));
    });
}

/** The value of `--version x` / `--version=x` after the command; `true` when it has none. */
export function versionArgument(rawArgs: readonly string[]): string | true | undefined {
  let found: string | true | undefined;
  for (let i = 0; i < rawArgs.length; i++) {
    const arg = rawArgs[i]!;
    if (arg === '--') break;
    if (arg.startsWith('--version=')) found = arg.slice('--version='.length);
    else if (arg === '--version' || arg === '-v') {
      const next = rawArgs[i + 1];
      found = next !== undefined && !next.startsWith('-') ? next : true;
    }
  }
  return found;
}

/** Draws `[#####-----]  45.2%  60.1 / 133.0 MiB` on a terminal, a line per 10% otherwise. */
export function progressBar(stream: NodeJS.WriteStream = process.stderr): ProgressListener & { finish(): void } {
  let lastTenth = -1;
  let drawn = false;
  const mib = (bytes: number) => (bytes / 1048576).toFixed(1);
  const listener = ({ received, total }: { received: number; total: number }) => {
    const fraction = total > 0 ? Math.min(1, received / total) : 0;
    const text = `${(fraction * 100).toFixed(1).padStart(5)}%  ${mib(received)} / ${total > 0 ? mib(total) : '?'} MiB`;
    if (stream.isTTY) {
      const width = 30;
      const filled = Math.round(fraction * width);
      stream.write(`\r[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${text}`);
      drawn = true;
      return;
    }
    const tenth = Math.floor(fraction * 10);
    if (tenth > lastTenth) {
      lastTenth = tenth;
      stream.write(`downloading mongod: ${text}\n`);
    }
  };
  return Object.assign(listener, {
    finish() {
      if (drawn) stream.write('\n');
    },
  });
}

export async function fetchProgram(program: string, options: { version?: unknown }): Promise<number> {
  if (!(FETCHABLE as readonly string[]).includes(program)) {
    throw new UsageError(`kv2 fetch knows ${FETCHABLE.join(', ')}, not "${program}"`);
  }
  if (options.version !== undefined && (typeof options.version !== 'string' || !/^\d+\.\d+\.\d+$/.test(options.version))) {
    throw new UsageError(`--version must be a mongod version such as 7.0.14, not ${JSON.stringify(options.version)}`);
  }
  const { defaultMongodVersion, downloadMongod, findInCache, mongodDownloadDir } = await import('../mongodb/binary');
  const version = (options.version as string | undefined) ?? defaultMongodVersion();
  const cached = await findInCache(version);
  if (cached) {
    process.stdout.write(`mongod ${version} is already in the cache: ${cached}\n`);
    return 0;
  }
  process.stderr.write(`downloading mongod ${version} into ${mongodDownloadDir()} ...\n`);
  const bar = progressBar();
  try {
    const file = await downloadMongod({ version, onProgress: bar });
    bar.finish();
    process.stdout.write(`mongod ${version} downloaded: ${file}\n`);
    return 0;
  } catch (error) {
    bar.finish();
    throw error;
  }
}
