// Runs the test suite with node's test runner: every *.test.ts under the given folders (default: unit,
// integration, e2e), one file at a time, because integration tests start clusters of real processes;
// `--concurrency N` first runs N files at once (the container tests: each waits on its engine).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const args = process.argv.slice(2);
const concurrencyAt = args.indexOf('--concurrency');
const concurrency = concurrencyAt >= 0 ? Number(args.splice(concurrencyAt, 2)[1]) : 1;
if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 8) {
  process.stderr.write('--concurrency takes a whole number of test files from 1 to 8\n');
  process.exit(2);
}
const folders = args.length ? args : ['test/unit', 'test/integration', 'test/e2e'];

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
  ['--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, '--test-reporter=spec', ...files],
  { cwd: root, stdio: 'inherit' },
);
process.exit(result.status ?? 1);
