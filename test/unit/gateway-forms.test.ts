// The gateway's parsing of submissions and query parameters, and how it shows tasks: every bad field is
// refused with a message naming it, names cannot escape, zips are checked, and text is shown as the
// original did (truncated at 1000 characters, non-UTF-8 as replacement characters).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { unzipSync, zipSync } from 'fflate';
import { InvalidFieldsError, InvalidInputError, NotFoundError, TooLargeError, type FieldError } from '../../src/common/errors';
import { CallbackAllowList } from '../../src/task/callback-allow';
import { parseFlag, parseSearchQuery, parseSubmission, type Submission } from '../../src/gateway/forms';
import { checkFileName, checkZip } from '../../src/task/zip';
import { presentTask, taskDownload } from '../../src/gateway/present';
import { packBytes, packText, unpackText } from '../../src/task/codec';
import type { Task } from '../../src/task/types';

const MAX = 16_252_928;

function form(fields: Record<string, unknown>, files: Record<string, Buffer> = {}): Submission {
  return {
    fields: { user: '0', compile_command: 'g++ a.cpp', compile_timeout: '10', execute_input: '', execute_command: './a.out', execute_timeout: '5', execute_standard: '', ...fields },
    files,
    kind: 'form',
  };
}

describe('parseSubmission', () => {
  it('packs a valid form as the original did (CRLF to LF, zlib)', () => {
    const task = parseSubmission(form({ execute_input: 'a\r\nb' }), { taskMaxSize: MAX });
    assert.equal(task.user, 0);
    assert.equal(task.compile.timeout, 10);
    assert.equal(unpackText(task.execute.input), 'a\nb');
    assert.equal(unpackText(task.compile.command), 'g++ a.cpp');
    assert.equal(task.compile.source.length, 0);
  });

  it('refuses the original test\'s invalid add (compile_timeout=-1) and other bad numbers', () => {
    for (const [field, value] of [['compile_timeout', '-1'], ['user', 'abc'], ['execute_timeout', '2147483648'], ['user', '1.5'], ['user', '']]) {
      assert.throws(() => parseSubmission(form({ [field!]: value }), { taskMaxSize: MAX }), (error: Error) => {
        assert.ok(error instanceof InvalidInputError);
        assert.match(error.message, new RegExp(field!));
        return true;
      });
    }
  });

  it('requires every text field of a form, as the original', () => {
    const submission = form({});
    delete submission.fields.execute_standard;
    assert.throws(() => parseSubmission(submission, { taskMaxSize: MAX }), /execute_standard is required/);
  });

  it('lets JSON leave out input, standard and compile command, but refuses unknown fields', () => {
    const task = parseSubmission({ fields: { user: 3, compile_timeout: 0, execute_timeout: 1, execute_command: 'echo hi' }, files: {}, kind: 'json' }, { taskMaxSize: MAX });
    assert.equal(task.user, 3);
    assert.equal(unpackText(task.execute.standard), '');
    assert.throws(
      () => parseSubmission({ fields: { user: 3, compile_timeout: 0, execute_timeout: 1, execute_command: 'x', execute_timout: 3 }, files: {}, kind: 'json' }, { taskMaxSize: MAX }),
      /unknown field "execute_timout"/,
    );
  });

  it('zips a name+text pair and refuses names that could escape', () => {
    const task = parseSubmission(form({ compile_source_name: 'main.cpp', compile_source_str: 'int main(){}\r\n' }), { taskMaxSize: MAX });
    const files = unzipSync(task.compile.source);
    assert.deepEqual(Object.keys(files), ['main.cpp']);
    assert.equal(Buffer.from(files['main.cpp']!).toString(), 'int main(){}\n');
    for (const name of ['../x', '/etc/passwd', 'a/b', '..', '.', 'a\0b', 'a\\b', 'x'.repeat(256)]) {
      assert.throws(() => parseSubmission(form({ compile_source_name: name, compile_source_str: 'x' }), { taskMaxSize: MAX }), InvalidInputError, name);
    }
    assert.throws(() => parseSubmission(form({ execute_data_name: 'raw.dat' }), { taskMaxSize: MAX }), /go together/);
  });

  it('checks uploaded zips: not a zip, or entries leaving the task directory, are refused', () => {
    const good = Buffer.from(zipSync({ 'src/a.c': new Uint8Array([65]) }));
    assert.equal(parseSubmission(form({}, { compile_source: good }), { taskMaxSize: MAX }).compile.source.length, good.length);
    assert.throws(() => checkZip(Buffer.from('not a zip at all'), 'compile_source'), /not a zip/);
    assert.throws(() => checkZip(Buffer.from(zipSync({ '../evil': new Uint8Array([1]) })), 'execute_data'), /leaves the task directory/);
    assert.throws(() => checkZip(Buffer.from(zipSync({ '/abs': new Uint8Array([1]) })), 'execute_data'), /leaves the task directory/);
    // JSON carries zips as base64.
    const json = parseSubmission({ fields: { user: 1, compile_timeout: 1, execute_timeout: 1, execute_command: 'ls', execute_data: good.toString('base64') }, files: {}, kind: 'json' }, { taskMaxSize: MAX });
    assert.deepEqual(json.execute.data, good);
    assert.throws(() => parseSubmission({ fields: { user: 1, compile_timeout: 1, execute_timeout: 1, execute_command: 'ls', execute_data: '%%%' }, files: {}, kind: 'json' }, { taskMaxSize: MAX }), /base64/);
  });

  it('refuses a task over the size limit with TooLargeError', () => {
    const big = Buffer.from(zipSync({ 'big.bin': new Uint8Array(patternBytes(300_000)) }, { level: 0 }));
    assert.throws(() => parseSubmission(form({}, { compile_source: big }), { taskMaxSize: 100_000 }), TooLargeError);
  });

  it('passes per-step limits and network, validated', () => {
    const task = parseSubmission(form({ compile_memory: '268435456', execute_cpu_time: '2', execute_output: '1024', network: 'false' }), { taskMaxSize: MAX });
    assert.deepEqual(task.compile.limits, { memory: 268435456 });
    assert.deepEqual(task.execute.limits, { cpu_time: 2, output: 1024 });
    assert.equal(task.network, false);
    for (const [field, value] of [['compile_memory', '0'], ['execute_processes', '-3'], ['execute_cpu_time', 'lots'], ['network', 'maybe']]) {
      assert.throws(() => parseSubmission(form({ [field!]: value }), { taskMaxSize: MAX }), InvalidInputError, field);
    }
  });
});

function patternBytes(n: number): Uint8Array {
  const bytes = new Uint8Array(n);
  for (let i = 0; i < n; i++) bytes[i] = (i * 2654435761) >>> 24;
  return bytes;
}

describe('parseSubmission, issue 17: tests, checkers, ms limits, callbacks, every bad field at once', () => {
  const allow = new CallbackAllowList(['hooks.example.com', '127.0.0.1']);
  const errorsOf = (submission: Submission, options = { taskMaxSize: MAX, callbacks: allow }): FieldError[] => {
    try {
      parseSubmission(submission, options);
    } catch (error) {
      assert.ok(error instanceof InvalidFieldsError, String(error));
      return [...error.errors];
    }
    assert.fail('the submission was accepted');
  };

  it('lists every bad field, each with its message, not only the first', () => {
    const errors = errorsOf(form({ user: 'abc', execute_timeout: '-1', execute_time_limit_ms: 'soon', test_mode: 'most', checker: 'float:2', callback_url: 'ftp://x' }));
    assert.deepEqual(
      errors.map((e) => e.field),
      ['user', 'execute_timeout', 'execute_time_limit_ms', 'test_mode', 'checker', 'callback_url'],
    );
    assert.match(errors[0]!.message, /^user must be a whole number/);
    assert.match(errors[2]!.message, /^execute_time_limit_ms must be a positive whole number/);
    assert.match(errors[4]!.message, /tolerance above 0 and at most 1/);
    assert.match(errors[5]!.message, /http:\/\/ or https:\/\//);
    const json = errorsOf({ fields: { user: 1, compile_timeout: 1, execute_timeout: 1, execute_command: 'x', tests: 'x', typo: 1 }, files: {}, kind: 'json' });
    assert.deepEqual(json.map((e) => e.field), ['typo', 'tests']);
  });

  it('takes tests as JSON (names default to their position) and refuses execute_input or execute_standard beside them', () => {
    const task = parseSubmission(
      form({ execute_input: '', execute_standard: '', tests: JSON.stringify([{ input: '1 2', output: '3' }, { name: 'big', input: 'x', output: 'y' }]), test_mode: 'all', checker: 'tokens' }),
      { taskMaxSize: MAX },
    );
    assert.deepEqual(task.judge!.tests.map((t) => [t.name, unpackText(t.input), unpackText(t.output)]), [['1', '1 2', '3'], ['big', 'x', 'y']]);
    assert.equal(task.judge!.mode, 'all');
    assert.deepEqual(task.judge!.checker, { kind: 'tokens' });
    const both = errorsOf(form({ execute_input: 'in', tests: JSON.stringify([{ input: '1', output: '2' }]) }));
    assert.deepEqual(both.map((e) => e.field), ['execute_input']);
    assert.match(errorsOf(form({ tests: '[{"input": 1, "output": "2"}]' }))[0]!.message, /tests\[0\]\.input must be text/);
    assert.match(errorsOf(form({ tests: JSON.stringify([{ name: 'a', input: '', output: '' }, { name: 'a', input: '', output: '' }]) }))[0]!.message, /two tests are named "a"/);
    assert.match(errorsOf(form({ tests: JSON.stringify([{ name: '../x', input: '', output: '' }]) }))[0]!.message, /test name/);
    // Only a checker: the original's one test judged with it.
    assert.deepEqual(parseSubmission(form({ checker: 'float:1e-6' }), { taskMaxSize: MAX }).judge, { tests: [], mode: 'first_fail', checker: { kind: 'float', error: 1e-6 } });
    assert.equal(parseSubmission(form({}), { taskMaxSize: MAX }).judge, undefined, 'no judge field: the original task');
  });

  it('reads a tests zip: <name>.in / <name>.out (or .ans) pairs in natural order, anywhere in the zip, other files left out', () => {
    const zip = Buffer.from(
      zipSync({
        tests: { '10.in': Buffer.from('ten'), '10.out': Buffer.from('TEN'), '2.in': Buffer.from('two'), '2.ans': Buffer.from('TWO') },
        'README.txt': Buffer.from('read me'),
      }),
    );
    const task = parseSubmission(form({}, { tests_zip: zip }), { taskMaxSize: MAX });
    assert.deepEqual(task.judge!.tests.map((t) => [t.name, unpackText(t.input), unpackText(t.output)]), [['2', 'two', 'TWO'], ['10', 'ten', 'TEN']]);
    const json = parseSubmission({ fields: { user: 1, compile_timeout: 1, execute_timeout: 1, execute_command: 'x', tests_zip: zip.toString('base64') }, files: {}, kind: 'json' }, { taskMaxSize: MAX });
    assert.equal(json.judge!.tests.length, 2);
    const lonely = Buffer.from(zipSync({ 'a.in': Buffer.from('x') }));
    assert.match(errorsOf(form({}, { tests_zip: lonely }))[0]!.message, /test a has an input but no a\.out/);
    assert.match(errorsOf(form({}, { tests_zip: Buffer.from('not a zip') }))[0]!.message, /^tests_zip: not a zip/);
    assert.match(errorsOf(form({ tests: '[]' }, { tests_zip: zip }))[0]!.message, /tests or tests_zip, not both/);
  });

  it('checker program needs its source name (a kind kv2 can build) and text', () => {
    const task = parseSubmission(form({ checker: 'program', checker_source_name: 'check.cpp', checker_source_str: 'int main() {}' }), { taskMaxSize: MAX });
    assert.equal(task.judge!.checker.kind, 'program');
    assert.deepEqual(errorsOf(form({ checker: 'program' })).map((e) => e.field), ['checker_source_name', 'checker_source_str']);
    assert.match(errorsOf(form({ checker: 'program', checker_source_name: 'check.rs', checker_source_str: 'fn main() {}' }))[0]!.message, /must end with one of \.cpp/);
    assert.match(errorsOf(form({ checker: 'tokens', checker_source_name: 'c.cpp' }))[0]!.message, /for checker=program/);
    assert.match(errorsOf(form({ checker: 'fuzzy' }))[0]!.message, /exact, tokens, float:<error>, program/);
  });

  it('takes the ms and KiB limits of either step, within bounds', () => {
    const task = parseSubmission(form({ execute_time_limit_ms: '200', execute_wall_limit_ms: '1000', execute_memory_limit_kb: '65536', execute_stack_limit_kb: '8192', compile_time_limit_ms: '30000' }), { taskMaxSize: MAX });
    assert.deepEqual(task.execute.limits, { time_ms: 200, wall_ms: 1000, memory_kb: 65536, stack_kb: 8192 });
    assert.deepEqual(task.compile.limits, { time_ms: 30000 });
    assert.match(errorsOf(form({ execute_time_limit_ms: String(86_400_001) }))[0]!.message, /execute_time_limit_ms/);
  });

  it('callback_url: only to hosts the operator allows, named in the refusal with the flag', () => {
    assert.equal(parseSubmission(form({ callback_url: 'https://hooks.example.com/kv2' }), { taskMaxSize: MAX, callbacks: allow }).callback_url, 'https://hooks.example.com/kv2');
    assert.equal(parseSubmission(form({ callback_url: 'http://127.0.0.1:9/x' }), { taskMaxSize: MAX, callbacks: allow }).callback_url, 'http://127.0.0.1:9/x');
    assert.match(errorsOf(form({ callback_url: 'https://evil.example.net/' }))[0]!.message, /evil\.example\.net, which --task-callback-allow does not allow/);
    assert.match(errorsOf(form({ callback_url: 'http://169.254.169.254/' }))[0]!.message, /only when --task-callback-allow lists it/);
    assert.match(errorsOf(form({ callback_url: 'https://hooks.example.com/' }), { taskMaxSize: MAX, callbacks: new CallbackAllowList([]) })[0]!.message, /allows no callback host \(--task-callback-allow\)/);
    assert.match(errorsOf(form({ callback_url: 'https://user:pw@hooks.example.com/' }))[0]!.message, /user name or password/);
  });
});

describe('query parameters', () => {
  it('reads old_to_new and no_truncate strictly: 1/true/0/false only', () => {
    assert.equal(parseFlag('1', 'x'), true);
    assert.equal(parseFlag('TRUE', 'x'), true);
    assert.equal(parseFlag('false', 'x'), false);
    assert.equal(parseFlag('0', 'x'), false);
    assert.equal(parseFlag(undefined, 'x'), false);
    assert.throws(() => parseFlag('yes', 'old_to_new'), /old_to_new must be 1, true, 0 or false/);
  });

  it('validates search filters and leaves empty ones out', () => {
    assert.deepEqual(parseSearchQuery({ id: '', user: '', limit: '10', page: '0', old_to_new: 'false' }), { old_to_new: false, limit: 10, page: 0 });
    const query = parseSearchQuery({ user: '7', start_time: '2026-01-01T00:00:00+01:00', end_time: '2026-12-31' });
    assert.equal(query.user, 7);
    assert.equal(query.start_time, '2025-12-31T23:00:00.000Z');
    assert.equal(query.end_time, '2026-12-31T00:00:00.000Z');
    for (const bad of [{ id: 'xyz' }, { user: '-1' }, { start_time: 'yesterday' }, { limit: 'ten' }, { old_to_new: 'yes' }, { page: ['1', '2'] }]) {
      assert.throws(() => parseSearchQuery(bad), InvalidInputError, JSON.stringify(bad));
    }
  });

  it('file names: plain names only', () => {
    assert.equal(checkFileName('main.cpp', 'n'), 'main.cpp');
    assert.equal(checkFileName('a..b', 'n'), 'a..b');
    assert.throws(() => checkFileName('..', 'n'));
  });
});

function storedTask(overrides: Partial<Task> = {}): Task {
  return {
    id: '65a1b2c3d4e5f60718293a4b',
    user: 0,
    add_time: '2026-01-01T00:00:00.000Z',
    report_time: '',
    done: false,
    status: 0,
    executor: null,
    retries: 0,
    compile: { source: Buffer.alloc(0), command: packText('echo compile'), timeout: 10 },
    execute: { input: packText(''), data: Buffer.alloc(0), command: packText('echo run'), timeout: 10, standard: packText('') },
    result: null,
    ...overrides,
  };
}

describe('presentTask and taskDownload', () => {
  const output = `${'a'.repeat(1500)}\n`;
  const done = storedTask({
    done: true,
    status: 5,
    result: {
      compile_output: packText(output),
      compile_error: packBytes(Buffer.from([0x68, 0x69, 0xff, 0xfe])),
      execute_output: packText(''),
      execute_error: packText(''),
      accepted: null,
    },
  });

  it('shows the original\'s shape, truncated at 1000 characters + "..." unless no_truncate', () => {
    const shown = presentTask(done, { noTruncate: false });
    assert.deepEqual(Object.keys(shown).slice(0, 7), ['id', 'user', 'add_time', 'done', 'status', 'executor', 'report_time']);
    assert.equal(shown.report_time, '');
    assert.deepEqual(shown.compile, { source: false, command: 'echo compile', timeout: 10 });
    assert.equal(shown.result!.compile_output, `${'a'.repeat(1000)}...`);
    assert.equal(presentTask(done, { noTruncate: true }).result!.compile_output, output);
    // Bytes that are not UTF-8 show as U+FFFD instead of failing the request.
    assert.equal(shown.result!.compile_error, 'hi\uFFFD\uFFFD');
  });

  it('downloads raw bytes, 404s a result before there is one and empty fields', () => {
    const file = taskDownload(done, 'compile_error');
    assert.deepEqual(file.body, Buffer.from([0x68, 0x69, 0xff, 0xfe]));
    assert.equal(file.contentType, 'text/plain; charset=utf-8');
    assert.equal(file.filename, `${done.id}_compile_error.txt`);
    assert.throws(() => taskDownload(storedTask(), 'execute_output'), NotFoundError);
    assert.throws(() => taskDownload(done, 'execute_output'), NotFoundError);
    assert.throws(() => taskDownload(done, 'compile_source'), NotFoundError);
    assert.throws(() => taskDownload(done, 'passwd'), InvalidInputError);
    const zip = Buffer.from(zipSync({ 'a.c': new Uint8Array([1]) }));
    const withZip = taskDownload(storedTask({ compile: { ...done.compile, source: zip } }), 'compile_source');
    assert.equal(withZip.contentType, 'application/zip');
    assert.equal(withZip.filename, `${done.id}_compile_source.zip`);
  });
});
