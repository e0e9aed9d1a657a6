// The images the container tests run: the Dockerfile's base images (made here when no registry has
// them, kept in the engine's store for the next run), then kv2's plain and judge images built from this
// checkout with the commands docs/operations.md shows. Built once per test process, and by one test
// process at a time (the container tests run side by side: the second finds the engine installed and
// every layer built).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT } from '../helpers/kv2';
import { sectionCommands, theCommand, words } from './docs-commands';
import { ENGINE_COMMAND_TIMEOUT_MS, Engine, tail } from './engine';

/** Where docs/operations.md shows the single-container commands (the builds among them). */
export const SINGLE_CONTAINER_SECTION = '### A single container';
export const PLAIN_IMAGE = 'kv2:latest';
export const JUDGE_IMAGE = 'kv2:judge';

export interface BuiltImages {
  /** Seconds each step took: base images, plain build, judge build. */
  seconds: { base: number; plain: number; judge: number };
}

let built: BuiltImages | undefined;

/**
 * Held while a test process readies the engine (apt-get may install podman: two at once would fail on
 * dpkg's lock) and builds the images: another one waits for it, then finds both done.
 */
const ENGINE_LOCK = path.join(os.tmpdir(), 'kv2-container-engine.lock');
/** How often a waiting process looks at the lock, ms. */
const ENGINE_LOCK_POLL_MS = 500;

/** Runs `work` holding ENGINE_LOCK; a lock whose holder died is taken over (by one waiting process). */
function underEngineLock<T>(work: () => T): T {
  for (;;) {
    try {
      fs.writeFileSync(ENGINE_LOCK, String(process.pid), { flag: 'wx' });
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      // Empty for the moment between its holder's create and write (that holder is alive); gone when it
      // was released meanwhile.
      const holder = readIfThere(ENGINE_LOCK);
      if (holder && !holderAlive(Number(holder))) {
        // The rename is atomic: of the processes that saw the dead holder, one moves the lock away.
        try {
          fs.renameSync(ENGINE_LOCK, `${ENGINE_LOCK}.${process.pid}`);
          fs.rmSync(`${ENGINE_LOCK}.${process.pid}`, { force: true });
        } catch {
          // another process took it over first
        }
      } else if (holder !== undefined) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ENGINE_LOCK_POLL_MS);
    }
  }
  try {
    return work();
  } finally {
    fs.rmSync(ENGINE_LOCK, { force: true });
  }
}

function readIfThere(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

function holderAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: alive, another user's.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function buildImages(engine: Engine, say: (line: string) => void): BuiltImages {
  if (built) return built;
  return buildImagesNow(engine, say);
}

function buildImagesNow(engine: Engine, say: (line: string) => void): BuiltImages {
  const time = (fn: () => void) => {
    const started = Date.now();
    fn();
    return Math.round((Date.now() - started) / 100) / 10;
  };
  const base = time(() => {
    const result = spawnSync('bash', [path.join(REPO_ROOT, 'test/container/base-images.sh'), engine.cli], {
      encoding: 'utf8',
      env: engine.env,
      timeout: ENGINE_COMMAND_TIMEOUT_MS,
    });
    for (const line of result.stdout.trim().split('\n').filter(Boolean)) say(line);
    if (result.status !== 0) throw new Error(`test/container/base-images.sh failed:\n${tail(result.stdout)}\n${tail(result.stderr)}`);
  });
  const commands = sectionCommands('docs/operations.md', SINGLE_CONTAINER_SECTION);
  const build = (prefix: string) => {
    const argv = words(theCommand(commands, prefix, `docs/operations.md "${SINGLE_CONTAINER_SECTION}"`));
    // `docker build ...` as documented, with this engine's build options; the context is the checkout.
    engine.must([argv[1]!, ...engine.buildOptions, ...argv.slice(2)], { cwd: REPO_ROOT });
  };
  const plain = time(() => build(`docker build -t ${PLAIN_IMAGE} `));
  const judge = time(() => build(`docker build --target judge -t ${JUDGE_IMAGE} `));
  built = { seconds: { base, plain, judge } };
  say(`images: base images ${base} s, ${PLAIN_IMAGE} built in ${plain} s, ${JUDGE_IMAGE} in ${judge} s`);
  return built;
}

/** An image's size in bytes, as the engine counts it. */
export function imageSize(engine: Engine, image: string): number {
  return Number(engine.must(['image', 'inspect', '--format', '{{.Size}}', image]).trim());
}

/**
 * The engine with both images built from this checkout, or why there is none (the caller's tests then
 * skip, saying so). `dir` is the caller's temp dir (see Engine.find).
 */
export function readyEngine(dir: string, say: (line: string) => void): Engine | string {
  return underEngineLock(() => {
    const found = Engine.find(dir);
    if (typeof found === 'string') {
      say(`container tests skipped: ${found}`);
      return found;
    }
    say(`engine: ${found.cli}`);
    buildImages(found, say);
    return found;
  });
}
