// What the kv2 executable carries inside it (etcd, etcdctl, bwrap, optionally mongod, the web UI) and how to get
// at it. Embedded programs are extracted on first use into $KV2_CACHE_DIR/<sha256>/ and reused, so
// copying the one `kv2` file to a machine is enough. Outside the single executable (development, tests
// under tsx) the same names resolve to the machine's own binaries.
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sea from 'node:sea';

/** The build writes this manifest as the asset `manifest.json`. */
export interface AssetManifest {
  version: string;
  builtAt: string;
  files: Record<string, { sha256: string; size: number; executable: boolean }>;
}

export type EmbeddedProgram = 'etcd' | 'etcdctl' | 'mongod' | 'bwrap';

const PROGRAM_ENV: Record<EmbeddedProgram, string> = {
  etcd: 'KV2_ETCD_BINARY',
  etcdctl: 'KV2_ETCDCTL_BINARY',
  mongod: 'KV2_MONGOD_BINARY',
  bwrap: 'KV2_BWRAP_BINARY',
};

let manifestCache: AssetManifest | null | undefined;

export function isSingleExecutable(): boolean {
  try {
    return sea.isSea();
  } catch {
    return false;
  }
}

export function embeddedManifest(): AssetManifest | null {
  if (manifestCache !== undefined) return manifestCache;
  manifestCache = isSingleExecutable() ? (JSON.parse(sea.getAsset('manifest.json', 'utf8')) as AssetManifest) : null;
  return manifestCache;
}

/** The bytes of an embedded asset, or undefined when this build does not carry it. */
export function readEmbedded(name: string): Buffer | undefined {
  const manifest = embeddedManifest();
  if (!manifest?.files[name]) return undefined;
  return Buffer.from(sea.getRawAsset(name) as ArrayBuffer);
}

export function cacheDir(): string {
  return process.env.KV2_CACHE_DIR || path.join(os.homedir(), '.cache', 'kv2');
}

/**
 * The path of a program kv2 runs: the environment override (KV2_ETCD_BINARY, ...) first, then the copy
 * embedded in this executable (extracted to the cache), then the machine's own (/usr/bin, PATH).
 * Returns undefined when there is none anywhere.
 */
export function resolveProgram(program: EmbeddedProgram): string | undefined {
  const override = process.env[PROGRAM_ENV[program]];
  if (override) return override;
  const extracted = extractEmbedded(`bin/${program}`);
  if (extracted) return extracted;
  return findOnPath(program);
}

/**
 * A program the machine's package manager keeps up to date is better than the copy in this executable:
 * the override first, then the machine's own, then the embedded one (bwrap: a sandbox with the
 * distribution's security fixes is preferred; the embedded one makes sure there is one at all).
 */
export function resolveSystemFirst(program: EmbeddedProgram): { path: string; source: 'environment' | 'system' | 'embedded' } | undefined {
  const override = process.env[PROGRAM_ENV[program]];
  if (override) return { path: override, source: 'environment' };
  const onPath = findOnPath(program);
  if (onPath) return { path: onPath, source: 'system' };
  const extracted = extractEmbedded(`bin/${program}`);
  return extracted ? { path: extracted, source: 'embedded' } : undefined;
}

/** Where `resolveProgram` found the program, for logs and `kv2 --version`. */
export function programSource(program: EmbeddedProgram): 'environment' | 'embedded' | 'system' | 'missing' {
  if (process.env[PROGRAM_ENV[program]]) return 'environment';
  if (embeddedManifest()?.files[`bin/${program}`]) return 'embedded';
  return findOnPath(program) ? 'system' : 'missing';
}

/** Extracts an embedded executable into the cache under its content hash, once; returns its path. */
export function extractEmbedded(name: string): string | undefined {
  const entry = embeddedManifest()?.files[name];
  if (!entry) return undefined;
  const dir = path.join(cacheDir(), entry.sha256);
  const target = path.join(dir, path.basename(name));
  try {
    if (fs.statSync(target).size === entry.size) return target;
  } catch {
    // not extracted yet
  }
  const bytes = readEmbedded(name)!;
  const digest = createHash('sha256').update(bytes).digest('hex');
  if (digest !== entry.sha256) {
    throw new Error(`the embedded ${name} is corrupt (sha256 ${digest}, expected ${entry.sha256}); rebuild kv2`);
  }
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  // Write under a unique name and rename: processes that extract at the same moment never see half a file.
  const temp = `${target}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  fs.writeFileSync(temp, bytes, { mode: entry.executable ? 0o755 : 0o644 });
  fs.renameSync(temp, target);
  return target;
}

export function findOnPath(program: string): string | undefined {
  const dirs = (process.env.PATH ?? '').split(':').filter(Boolean);
  for (const dir of ['/usr/bin', '/usr/local/bin', ...dirs]) {
    const candidate = path.join(dir, program);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      if (fs.statSync(candidate).isFile()) return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/**
 * The argv prefix that runs this kv2 again (for module processes): the executable itself when kv2 is
 * the single executable, else node with the same loader flags and entry script.
 */
export function selfCommand(): { command: string; args: string[] } {
  if (isSingleExecutable()) return { command: process.execPath, args: [] };
  return { command: process.execPath, args: [...process.execArgv, process.argv[1]!] };
}
