// Temporary directories that are removed when the test ends, passed or failed.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';

type Hooks = Pick<TestContext, 'after'> | { after: (fn: () => unknown) => void };

export function makeTempDir(hooks: Hooks, prefix = 'kv2-test-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  hooks.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * A directory that tasks of an unsandboxed executor can write to and the test can read, removed when
 * the test ends. As root, tasks run as their own users with a /tmp of their own, so it is not under /tmp
 * but under /var/lib (searchable by every user wherever the checkout is); otherwise tasks run as this
 * user with the machine's /tmp.
 */
export function makeTaskSharedDir(hooks: Hooks, prefix = 'kv2-shared-'): string {
  let base = os.tmpdir();
  if (process.getuid?.() === 0) {
    base = '/var/lib/kv2-test-shared';
    fs.mkdirSync(base, { recursive: true, mode: 0o755 });
    fs.chmodSync(base, 0o755);
  }
  const dir = fs.mkdtempSync(path.join(base, prefix));
  fs.chmodSync(dir, 0o777);
  hooks.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}
