// The benchmark's cleanup registry: every process and temp dir it makes is registered here and undone in
// reverse order at the end, on failure, on Ctrl-C (SIGINT/SIGTERM) and when the whole run overstays its
// time bound. Last of all, any process still descending from the benchmark is killed.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { listProcesses } from '../../test/helpers/process-table';

type Cleanup = () => unknown;

const cleanups: { what: string; run: Cleanup }[] = [];
let cleaning: Promise<void> | undefined;
let stopping = false;

/** True once the run was interrupted (signal or time bound): the benchmark stops measuring and saves nothing. */
export function interrupted(): boolean {
  return stopping;
}

/** The `hooks` shape the test helpers take: their stops land in this registry. */
export const hooks = { after: (fn: Cleanup) => void cleanups.push({ what: 'test helper', run: fn }) };

export function onCleanup(what: string, run: Cleanup): void {
  cleanups.push({ what, run });
}

/** A temp dir removed at the end. */
export function tempDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  onCleanup(`remove ${dir}`, () => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Each cleanup gets this long before the next one runs (a node that will not stop is killed by its own stop). */
const CLEANUP_STEP_TIMEOUT_MS = 90_000;

/** Runs every cleanup once, newest first; a failing one is reported and the others still run. */
export function cleanupAll(): Promise<void> {
  cleaning ??= (async () => {
    while (cleanups.length) {
      const { what, run } = cleanups.pop()!;
      try {
        await Promise.race([
          Promise.resolve().then(run),
          new Promise((_, reject) => setTimeout(() => reject(new Error(`took longer than ${CLEANUP_STEP_TIMEOUT_MS} ms`)), CLEANUP_STEP_TIMEOUT_MS).unref()),
        ]);
      } catch (error) {
        console.error(`bench: cleanup "${what}" failed: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
    killDescendants();
  })();
  return cleaning;
}

/** SIGKILLs every process descending from this one (all started by the benchmark), deepest first. */
export function killDescendants(): number {
  const table = listProcesses().filter((p) => p.state !== 'Z');
  const children = new Map<number, number[]>();
  for (const p of table) children.set(p.ppid, [...(children.get(p.ppid) ?? []), p.pid]);
  const found: number[] = [];
  const walk = (pid: number) => {
    for (const child of children.get(pid) ?? []) {
      walk(child);
      found.push(child);
    }
  };
  walk(process.pid);
  for (const pid of found) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
  return found.length;
}

/**
 * Runs `main` with cleanup guaranteed: at its end, on SIGINT/SIGTERM, on an uncaught error, and when
 * `maxSeconds` pass (then the run is abandoned, cleaned up and exits 1).
 */
export function runWithCleanup(main: () => Promise<number>, maxSeconds: number): void {
  const finish = async (code: number) => {
    await cleanupAll();
    process.exit(code);
  };
  let signalled = false;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      if (signalled) {
        console.error('bench: second signal; killing what is left and leaving');
        killDescendants();
        process.exit(130);
      }
      signalled = true;
      stopping = true;
      console.error(`bench: ${signal}: stopping every system and removing temp dirs...`);
      void finish(130);
    });
  }
  const bound = setTimeout(() => {
    stopping = true;
    console.error(`bench: still running after ${maxSeconds} s (BENCH_MAX_SECONDS): giving up and cleaning up`);
    void finish(1);
  }, maxSeconds * 1000);
  bound.unref();
  main().then(
    (code) => finish(code),
    (error) => {
      console.error(`bench: ${error instanceof Error ? error.stack : String(error)}`);
      void finish(1);
    },
  );
}
