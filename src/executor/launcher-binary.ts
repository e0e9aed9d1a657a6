// Where the step launcher (step-launcher.c) comes from: KV2_STEP_LAUNCHER, else the copy embedded in the
// kv2 executable (extracted to $KV2_CACHE_DIR by its hash), else, when kv2 runs from its sources, compiled
// from step-launcher.c with the machine's C compiler into the cache (once per version of the source).
// The compiler flags live here so that the build and the sources-run compile the same program.
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cacheDir, embeddedManifest, extractEmbedded, isSingleExecutable } from '../common/assets';
import { ConfigError } from '../common/errors';

/** The launcher's name as an asset of the executable. */
export const LAUNCHER_ASSET = 'bin/kv2-step-launcher';
const LAUNCHER_NAME = 'kv2-step-launcher';

/**
 * It runs as root: every warning on, and the usual hardening (fortified libc calls, stack protector,
 * position-independent, read-only relocations).
 */
export const LAUNCHER_CFLAGS = [
  '-std=gnu11',
  '-O2',
  '-Wall',
  '-Wextra',
  '-Wshadow',
  '-Wformat=2',
  '-Wconversion',
  '-Wno-sign-conversion',
  '-D_FORTIFY_SOURCE=2',
  '-fstack-protector-strong',
  '-fPIE',
  '-pie',
  '-Wl,-z,relro,-z,now',
];

/** How long compiling the launcher may take. */
const COMPILE_TIMEOUT_MS = 60_000;

/** The C compiler: $CC, else cc, else gcc. */
function compiler(): string {
  return process.env.CC || 'cc';
}

/** Compiles `source` into the executable `output` (written under a temporary name, then renamed). */
export function compileLauncher(source: string, output: string): void {
  const temp = `${output}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    execFileSync(compiler(), [...LAUNCHER_CFLAGS, '-o', temp, source], { stdio: ['ignore', 'pipe', 'pipe'], timeout: COMPILE_TIMEOUT_MS });
  } catch (error) {
    fs.rmSync(temp, { force: true });
    const stderr = (error as { stderr?: Buffer }).stderr?.toString().trim();
    throw new ConfigError(`cannot compile the step launcher (${source}) with ${compiler()}: ${stderr || (error as Error).message}; install gcc (and libc6-dev)`);
  }
  fs.chmodSync(temp, 0o755);
  fs.renameSync(temp, output);
}

/** step-launcher.c beside this module, when kv2 runs from its sources. */
function sourceFile(): string | undefined {
  try {
    const file = path.join(path.dirname(fileURLToPath(import.meta.url)), 'step-launcher.c');
    return fs.existsSync(file) ? file : undefined;
  } catch {
    return undefined;
  }
}

let resolved: string | undefined;

/** The launcher's path; throws ConfigError when there is none and none can be made. */
export function launcherPath(): string {
  const override = process.env.KV2_STEP_LAUNCHER;
  if (override) return override;
  if (resolved && fs.existsSync(resolved)) return resolved;
  const embedded = extractEmbedded(LAUNCHER_ASSET);
  if (embedded) {
    // It runs as root: the copy in the cache must be the very program this executable carries.
    const digest = createHash('sha256').update(fs.readFileSync(embedded)).digest('hex');
    if (digest !== embeddedManifest()?.files[LAUNCHER_ASSET]?.sha256) throw new ConfigError(`${embedded} differs from the step launcher kv2 carries: remove it (kv2 extracts it again)`);
    return (resolved = embedded);
  }
  if (isSingleExecutable()) throw new ConfigError('this kv2 executable carries no step launcher; rebuild it (npm run build)');
  const source = sourceFile();
  if (!source) throw new ConfigError('no step launcher: set KV2_STEP_LAUNCHER to a built kv2-step-launcher');
  const text = fs.readFileSync(source);
  const hash = createHash('sha256').update(text).update(LAUNCHER_CFLAGS.join(' ')).digest('hex');
  const dir = path.join(cacheDir(), `launcher-${hash.slice(0, 16)}`);
  const output = path.join(dir, LAUNCHER_NAME);
  if (!fs.existsSync(output)) {
    fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
    compileLauncher(source, output);
  }
  return (resolved = output);
}
