// Runs the test suite with node's test runner: every *.test.ts under the given folders (default: unit,
// integration, e2e), one file at a time, because integration tests start clusters of real processes.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const folders = process.argv.slice(2).length ? process.argv.slice(2) : ['test/unit', 'test/integration', 'test/e2e'];

function testFiles(dir: string): string[] {
  const absolute = path.resolve(root, dir);
  if (fs.existsSync(absolute) && fs.statSync(absolute).isFile()) return [absolute];
  if (!fs.existsSync(absolute)) return [];
  return fs
    .readdirSync(absolute, { withFileTypes: true })
    .flatMap((entry) => (entry.isDirectory() ? testFiles(path.join(dir, entry.name)) : entry.name.endsWith('.test.ts') ? [path.join(absolute, entry.name)] : []))
    .sort();
}

const files = folders.flatMap(testFiles);
if (files.length === 0) {
  process.stderr.write(`no test files under ${folders.join(', ')}\n`);
  process.exit(1);
}
const result = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-concurrency=1', '--test-reporter=spec', ...files],
  { cwd: root, stdio: 'inherit' },
);
process.exit(result.status ?? 1);
