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
