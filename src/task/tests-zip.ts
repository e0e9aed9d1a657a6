// A task's tests given as a zip (issue 17's tests_zip): `<name>.in` / `<name>.out` pairs (`.ans` is taken
// for `.out`, as DOMjudge names them), anywhere in the zip (a folder zipped with its name is fine), read
// with the task zip reader and its limits, in natural order of their names (2 before 10). Other files
// (a README, __MACOSX/...) are left out; a test missing its input or its output is refused.
import { InvalidInputError } from '../common/errors';
import { packBytes } from './codec';
import { MAX_JUDGE_TESTS, MAX_TESTS_ZIP_UNPACKED_BYTES, TEST_NAME_PATTERN } from './limits';
import type { JudgeTest } from './types';
import { readZipFiles } from './zip';

/** Entries a tests zip may hold: every test's two files, and a few more (folders, a README). */
const MAX_TESTS_ZIP_ENTRIES = 2 * MAX_JUDGE_TESTS + 64;

const TEST_FILE = /^(?:.*\/)?([^/]+)\.(in|out|ans)$/;

/** The tests of a tests zip, their files packed as stored (zlib, bytes as they are). */
export function testsFromZip(zip: Buffer, field = 'tests_zip'): JudgeTest[] {
  let files: { name: string; data: Buffer }[];
  try {
    files = readZipFiles(zip, { maxBytes: MAX_TESTS_ZIP_UNPACKED_BYTES, maxFiles: MAX_TESTS_ZIP_ENTRIES });
  } catch (error) {
    throw new InvalidInputError(`${field}: ${(error as Error).message}`);
  }
  const tests = new Map<string, { input?: Buffer; output?: Buffer }>();
  for (const file of files) {
    const match = TEST_FILE.exec(file.name);
    if (!match || match[1]!.startsWith('.')) continue;
    const [, name, kind] = match as unknown as [string, string, 'in' | 'out' | 'ans'];
    if (!TEST_NAME_PATTERN.test(name)) throw new InvalidInputError(`${field}: the test name of ${JSON.stringify(file.name)} must be 1 to 64 letters, digits, "_", "." or "-"`);
    const test = tests.get(name) ?? {};
    const slot = kind === 'in' ? 'input' : 'output';
    if (test[slot]) throw new InvalidInputError(`${field} holds the ${slot} of test ${name} twice`);
    test[slot] = file.data;
    tests.set(name, test);
  }
  if (tests.size === 0) throw new InvalidInputError(`${field} holds no test: name them <name>.in and <name>.out`);
  if (tests.size > MAX_JUDGE_TESTS) throw new InvalidInputError(`${field} holds ${tests.size} tests, more than the ${MAX_JUDGE_TESTS} a task may have`);
  const names = [...tests.keys()].sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  return names.map((name) => {
    const { input, output } = tests.get(name)!;
    if (!input) throw new InvalidInputError(`${field}: test ${name} has an output but no ${name}.in`);
    if (!output) throw new InvalidInputError(`${field}: test ${name} has an input but no ${name}.out`);
    return { name, input: packBytes(input), output: packBytes(output) };
  });
}
