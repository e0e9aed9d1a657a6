// The `accepted` verdict: output against the expected output, trailing whitespace ignored per line and
// at the end, null when there is nothing to judge; the built-in checkers (issue 17), and verdicts as
// judges give them from how a run ended and what it took.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compareOutput, floatsMatch, judge } from '../../src/executor/judge';
import { TEST_MESSAGE_CHARS, runVerdict, taskOutcome, testReport } from '../../src/executor/verdict';
import { testReportSchema } from '../../src/task/schema';
import { TaskStatus, type StepReport } from '../../src/task/types';

const b = (text: string) => Buffer.from(text, 'latin1');

test('trailing whitespace on lines and trailing empty lines do not matter', () => {
  assert.equal(judge(true, b('1 2 \n3\t\r\n\n\n'), b('1 2\n3')), true);
  assert.equal(judge(true, b('x'), b('x\n')), true);
  assert.equal(judge(true, b('a\r\nb\r\n'), b('a\nb\n')), true);
});

test('anything else does', () => {
  assert.equal(judge(true, b('1  2\n'), b('1 2\n')), false);
  assert.equal(judge(true, b(' 1\n'), b('1\n')), false);
  assert.equal(judge(true, b('1\n\n2\n'), b('1\n2\n')), false);
  assert.equal(judge(true, b(''), b('1\n')), false);
});

test('bytes are compared as bytes, and non-ASCII spaces are not trimmed', () => {
  assert.equal(judge(true, Buffer.from([0xff, 0x0a]), Buffer.from([0xff])), true);
  assert.equal(judge(true, Buffer.from([0x61, 0xa0]), Buffer.from([0x61])), false);
});

test('null without a standard or without a successful execute', () => {
  assert.equal(judge(true, b('x'), b('')), null);
  assert.equal(judge(false, b('x'), b('x')), null);
});


test('exact says where the output differs, and calls the right tokens laid out differently a presentation error', () => {
  assert.deepEqual(compareOutput(b('1\n2\n'), b('1\n2'), { kind: 'exact' }), { verdict: 'accepted', message: '' });
  assert.deepEqual(compareOutput(b('1\n3\n'), b('1\n2\n'), { kind: 'exact' }), { verdict: 'wrong_answer', message: 'line 2 differs: expected "2", found "3"' });
  assert.equal(compareOutput(b('1 2\n'), b('1\n2\n'), { kind: 'exact' }).verdict, 'presentation_error');
  assert.match(compareOutput(b('1\n'), b('1\n2\n'), { kind: 'exact' }).message, /ends at line 1; 2 lines expected/);
});

test('tokens ignore whitespace, not order or count', () => {
  assert.equal(compareOutput(b(' a\tb\r\n\nc '), b('a b c'), { kind: 'tokens' }).verdict, 'accepted');
  assert.deepEqual(compareOutput(b('a c b'), b('a b c'), { kind: 'tokens' }), { verdict: 'wrong_answer', message: 'token 2 differs: expected "b", found "c"' });
  assert.deepEqual(compareOutput(b('a b'), b('a b c'), { kind: 'tokens' }), { verdict: 'wrong_answer', message: '3 tokens expected, 2 found' });
});

test('float: absolute or relative error, NaN and infinities as testlib compares them, other tokens exactly', () => {
  assert.equal(floatsMatch('1.0000001', '1', 1e-6), true);
  assert.equal(floatsMatch('1.00001', '1', 1e-6), false);
  assert.equal(floatsMatch('1000000.5', '1000000', 1e-6), true, 'relative');
  assert.equal(floatsMatch('0.1', '0.2', 0.1), true, 'the tolerance itself, written in decimal');
  assert.equal(floatsMatch('nan', 'NaN', 1e-9), true);
  assert.equal(floatsMatch('1', 'nan', 1e-9), false);
  assert.equal(floatsMatch('inf', '1e301', 1e-9), true);
  assert.equal(floatsMatch('-inf', '1e301', 1e-9), false);
  assert.equal(floatsMatch('yes', 'yes', 1e-9), true);
  assert.equal(floatsMatch('1e', '1e', 1e-9), true, 'not a number: compared as text');
  assert.equal(compareOutput(b('0.333 x'), b('0.3333333 x'), { kind: 'float', error: 1e-3 }).verdict, 'accepted');
});

const ran = (fields: Partial<StepReport>): StepReport => ({ exit_code: 0, signal: null, wall_ms: 10, cpu_ms: 5, memory_kb: 1000, stopped: null, ...fields });
const limits = { cpuMs: 1000, memoryKb: 65536, wallMs: 3000 };

test('a run is judged by what stopped it and by what it took, measured: over the CPU limit is a time limit even when it finished', () => {
  assert.equal(runVerdict(ran({}), limits), undefined);
  assert.deepEqual(runVerdict(ran({ cpu_ms: 1200 }), limits), { verdict: 'time_limit', message: 'CPU time 1.20 s > 1.00 s' });
  assert.equal(runVerdict(ran({ stopped: 'cpu_time', signal: 'SIGKILL', cpu_ms: 1010 }), limits)!.verdict, 'time_limit');
  assert.deepEqual(runVerdict(ran({ stopped: 'time', signal: 'SIGKILL', wall_ms: 3001 }), limits), { verdict: 'time_limit', message: 'wall time 3.00 s >= 3.00 s' });
  assert.deepEqual(runVerdict(ran({ memory_kb: 70000 }), limits), { verdict: 'memory_limit', message: 'memory 68.4 MiB > 64.0 MiB' });
  assert.equal(runVerdict(ran({ stopped: 'memory', signal: 'SIGKILL' }), limits)!.verdict, 'memory_limit');
  // Pressed against a memory cgroup's limit, then stopped for its CPU time: out of memory.
  assert.equal(runVerdict(ran({ stopped: 'cpu_time', signal: 'SIGKILL', memory_kb: 65536, cpu_ms: 1100 }), limits)!.verdict, 'memory_limit');
  assert.equal(runVerdict(ran({ memory_kb: 65536 }), limits), undefined, 'at the limit and finished: fine');
  assert.equal(runVerdict(ran({ stopped: 'output', signal: 'SIGKILL' }), limits)!.verdict, 'output_limit');
  assert.equal(runVerdict(ran({ stopped: 'file_size', signal: 'SIGXFSZ' }), limits)!.verdict, 'output_limit');
  assert.deepEqual(runVerdict(ran({ signal: 'SIGSEGV', exit_code: null }), limits), { verdict: 'runtime_error', message: 'killed by SIGSEGV' });
  assert.deepEqual(runVerdict(ran({ exit_code: 42 }), limits), { verdict: 'runtime_error', message: 'exit code 42' });
  assert.equal(runVerdict(ran({ cpu_ms: 5000 }), { cpuMs: null, memoryKb: null, wallMs: null }), undefined, 'no limit, no verdict');
});

test("a task's verdict is its first failing test's; Run failed only when a test did not finish normally; accepted only when all are", () => {
  const t = (verdict: Parameters<typeof testReport>[2]) => testReport('x', ran({}), verdict, '');
  assert.deepEqual(taskOutcome([t('accepted'), t('accepted')]), { verdict: 'accepted', status: TaskStatus.SUCCESS, accepted: true });
  assert.deepEqual(taskOutcome([t('accepted'), t('wrong_answer'), t('skipped')]), { verdict: 'wrong_answer', status: TaskStatus.SUCCESS, accepted: false });
  assert.deepEqual(taskOutcome([t('accepted'), t('presentation_error'), t('time_limit')]), { verdict: 'presentation_error', status: TaskStatus.RUN_FAILED, accepted: false });
  assert.deepEqual(taskOutcome([t('runtime_error')]), { verdict: 'runtime_error', status: TaskStatus.RUN_FAILED, accepted: null });
  assert.deepEqual(taskOutcome([t('ok')]), { verdict: 'ok', status: TaskStatus.SUCCESS, accepted: null });
  assert.deepEqual(taskOutcome([t('accepted'), t('checker_error')]), { verdict: 'checker_error', status: TaskStatus.SUCCESS, accepted: false });
});

test("a test's message is cut to what the RPC carries", () => {
  const report = testReport('x', ran({}), 'runtime_error', `Unknown error. ${'why '.repeat(500)}`);
  assert.equal(report.message.length, TEST_MESSAGE_CHARS);
  assert.ok(testReportSchema.safeParse(report).success);
});
