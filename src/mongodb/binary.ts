// Where the mongod binary comes from, in the order SPEC §5 gives: --mongodb-exe, the copy embedded in
// kv2, the PATH, mongodb-memory-server's download cache, and (only with --mongodb-download) a download
// through mongodb-memory-server. Only its binary resolution and download are used, never MongoInstance,
// which forks a watchdog script by path (impossible inside the single executable).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { DryMongoBinary } from 'mongodb-memory-server-core';
// Deep imports: the download with a progress callback and its lock, as MongoBinary.download does them
// (MongoBinary itself prints progress to stdout and cannot be told otherwise).
import { MongoBinaryDownload } from 'mongodb-memory-server-core/lib/util/MongoBinaryDownload';
import { LockFile } from 'mongodb-memory-server-core/lib/util/lockfile';
import { DEFAULT_VERSION } from 'mongodb-memory-server-core/lib/util/resolveConfig';
import { lockfilePath } from 'mongodb-memory-server-core/lib/util/utils';
import { cacheDir, embeddedManifest, extractEmbedded, findOnPath } from '../common/assets';
import { ConfigError, UnavailableError, describeError } from '../common/errors';

export type MongodSource = 'flag' | 'environment' | 'embedded' | 'path' | 'cache' | 'download';

export interface ResolvedMongod {
  path: string;
  source: MongodSource;
}

export interface MongodLookup {
  /** `--mongodb-exe` / config "exe": used as given, and an error when it is not there. */
  exe?: string | null;
  /** Version looked for in the cache, and downloaded; default: mongodb-memory-server's default. */
  version?: string | null;
}

/** The oldest mongod kv2 runs: the driver (v7) supports 4.4+, which also brings JSON logs and safe reconfig. */
export const MIN_MONGOD_VERSION = [4, 4, 0] as const;

/** Where `kv2 fetch mongod` and `--mongodb-download` put binaries (mongodb-memory-server's layout). */
export function mongodDownloadDir(): string {
  return process.env.MONGOMS_DOWNLOAD_DIR || path.join(cacheDir(), 'mongodb-binaries');
}

export function defaultMongodVersion(): string {
  return process.env.MONGOMS_VERSION || DEFAULT_VERSION;
}

function isExecutableFile(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

/**
 * Finds a mongod without downloading anything. `undefined` means there is none; an `exe` that is given
 * but missing is an error (a typo must not silently fall back to another binary).
 */
export async function findMongod(lookup: MongodLookup = {}, options: { extract?: boolean } = {}): Promise<ResolvedMongod | undefined> {
  if (lookup.exe) {
    const exe = path.resolve(lookup.exe);
    if (!isExecutableFile(exe)) throw new ConfigError(`--mongodb-exe ${lookup.exe}: no executable file there`);
    return { path: exe, source: 'flag' };
  }
  const override = process.env.KV2_MONGOD_BINARY;
  if (override) {
    if (!isExecutableFile(override)) throw new ConfigError(`KV2_MONGOD_BINARY=${override}: no executable file there`);
    return { path: override, source: 'environment' };
  }
  if (options.extract === false) {
    // Only whether there is one: extracting the embedded mongod (about 100 MB) can wait until it runs.
    if (embeddedManifest()?.files['bin/mongod']) return { path: 'bin/mongod (embedded, not extracted yet)', source: 'embedded' };
  } else {
    const embedded = extractEmbedded('bin/mongod');
    if (embedded) return { path: embedded, source: 'embedded' };
  }
  const onPath = findOnPath('mongod');
  if (onPath) return { path: onPath, source: 'path' };
  const cached = await findInCache(lookup.version ?? undefined);
  if (cached) return { path: cached, source: 'cache' };
  return undefined;
}

/** Finds a mongod, downloading one into the cache when `download` allows it and none is found. */
export async function resolveMongod(lookup: MongodLookup & { download: boolean; onProgress?: ProgressListener }): Promise<ResolvedMongod> {
  const found = await findMongod(lookup);
  if (found) return found;
  if (!lookup.download) {
    throw new ConfigError(
      'no mongod binary: this kv2 embeds none, there is none on the PATH or in the cache ' +
        `(${mongodDownloadDir()}). Give --mongodb-exe <path>, run "kv2 fetch mongod" on a machine with internet, ` +
        'or allow --mongodb-download',
    );
  }
  const downloaded = await downloadMongod({ version: lookup.version ?? defaultMongodVersion(), onProgress: lookup.onProgress });
  return { path: downloaded, source: 'download' };
}

/**
 * mongodb-memory-server's cache: first its own lookup for the wanted version (its download dir, then
 * ~/.cache/mongodb-binaries, node_modules/.cache), then any complete download of another version in
 * kv2's download dir (`kv2 fetch mongod --version X`), newest version first.
 */
export async function findInCache(version?: string): Promise<string | undefined> {
  const wanted = version || defaultMongodVersion();
  try {
    const located = await DryMongoBinary.locateBinary({ version: wanted, downloadDir: mongodDownloadDir() });
    if (located && isExecutableFile(located)) return located;
  } catch {
    // an unsupported OS or a bad MONGOMS_* setting: the scan below still looks
  }
  if (version) return undefined; // a specific version was asked for: no other will do
  return newestInDir(mongodDownloadDir());
}

/** `mongod-<arch>-<dist>-<version>` files with the `.md5` sidecar a finished extraction writes. */
function newestInDir(dir: string): string | undefined {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return undefined;
  }
  const candidates = names
    .map((name) => ({ name, version: /^mongod-.+-(\d+)\.(\d+)\.(\d+)(?:\.exe)?$/.exec(name) }))
    .filter((c): c is { name: string; version: RegExpExecArray } => c.version !== null)
    .filter((c) => names.includes(`${c.name}.md5`) && isExecutableFile(path.join(dir, c.name)))
    .map((c) => ({ file: path.join(dir, c.name), key: c.version.slice(1, 4).map(Number) }))
    .sort((a, b) => compareVersions(b.key, a.key));
  return candidates[0]?.file;
}

export function compareVersions(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/** Parses the first line of `mongod --version` ("db version v7.0.14"). */
export function parseMongodVersion(output: string): number[] | undefined {
  const match = /db version v?(\d+)\.(\d+)\.(\d+)/i.exec(output);
  return match ? match.slice(1, 4).map(Number) : undefined;
}

/** Runs `mongod --version`; throws a ConfigError when it does not run or is older than 4.4. */
export function checkMongodVersion(exe: string): string {
  const result = spawnSync(exe, ['--version'], { encoding: 'utf8', timeout: 30_000 });
  if (result.error) throw new ConfigError(`cannot run ${exe} --version: ${describeError(result.error)}`);
  const output = `${result.stdout ?? ''}${result.stderr ?? ''}`;
  const version = parseMongodVersion(output);
  if (!version) {
    throw new ConfigError(`${exe} --version did not print a mongod version (exit ${result.status}): ${output.trim().split('\n')[0] ?? ''}`);
  }
  if (compareVersions(version, MIN_MONGOD_VERSION) < 0) {
    throw new ConfigError(`${exe} is mongod ${version.join('.')}; kv2 needs mongod ${MIN_MONGOD_VERSION.join('.')} or newer`);
  }
  return version.join('.');
}

export type ProgressListener = (progress: { received: number; total: number; done: boolean }) => void;

/**
 * Downloads mongod `version` into kv2's download dir through mongodb-memory-server (its URL rules, MD5
 * check and archive extraction), under its per-version lock so concurrent downloads wait for each other.
 * MONGOMS_DOWNLOAD_URL / MONGOMS_DOWNLOAD_MIRROR are honoured, for mirrors.
 */
export async function downloadMongod(options: { version: string; onProgress?: ProgressListener }): Promise<string> {
  const downloadDir = mongodDownloadDir();
  fs.mkdirSync(downloadDir, { recursive: true });
  let binaryOptions;
  try {
    binaryOptions = { ...(await DryMongoBinary.generateOptions({ version: options.version, downloadDir })), checkMD5: true, downloadDir };
  } catch (error) {
    throw new UnavailableError(`cannot work out which mongod ${options.version} to download for this machine: ${describeError(error)}`, { cause: error });
  }
  const lock = await LockFile.lock(lockfilePath(downloadDir, binaryOptions.version));
  try {
    const downloader = new ProgressDownload(binaryOptions, options.onProgress);
    const file = await downloader.getMongodPath();
    return file;
  } catch (error) {
    throw new UnavailableError(`could not download mongod ${options.version}: ${describeError(error)}`, { cause: error });
  } finally {
    await lock.unlock();
  }
}

/** mongodb-memory-server's downloader, reporting progress to a listener instead of printing it. */
class ProgressDownload extends MongoBinaryDownload {
  constructor(
    options: ConstructorParameters<typeof MongoBinaryDownload>[0],
    private readonly listener: ProgressListener | undefined,
  ) {
    super(options);
  }

  /** The archive's progress is reported, not that of its small .md5 file fetched after it. */
  private reporting = true;

  override async download(downloadUrl: string): Promise<string> {
    this.reporting = !downloadUrl.endsWith('.md5');
    return super.download(downloadUrl);
  }

  override printDownloadProgress(chunk: { length: number }, forcePrint = false): void {
    // The base class counts the bytes here too; its check for a truncated download reads this count.
    this.dlProgress.current += chunk.length;
    if (this.reporting) this.listener?.({ received: this.dlProgress.current, total: this.dlProgress.length, done: forcePrint });
  }
}

/**
 * For the store decision (store/open-store.ts): `local` when a mongod is found without downloading,
 * `download` when none is but downloading is allowed, `none` otherwise.
 */
export async function mongodAvailability(options: MongodLookup & { download: boolean }): Promise<'local' | 'download' | 'none'> {
  if (await findMongod(options, { extract: false })) return 'local';
  return options.download ? 'download' : 'none';
}
