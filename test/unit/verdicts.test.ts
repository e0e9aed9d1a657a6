// Verdicts as people read them (issue 17): the verdict of a result (or, without one, what its status says),
// the CLI's exit code for each, and the UI's comparison of expected and actual output.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TaskExit, exitCodeOf } from '../../src/cli/task-view';
import type { PresentedTask } from '../../src/gateway/present';
import { difference } from '../../src/gateway/ui/diff';
import { TaskStatus } from '../../src/task/types';
import { verdictName, verdictOf } from '../../src/task/verdicts';

test("a result's verdict wins; without one, the status, accepted and the stopped step say it", () => {
  assert.equal(verdictOf({ done: true, status: TaskStatus.SUCCESS, result: { verdict: 'wrong_answer', accepted: false } }), 'wrong_answer');
  assert.equal(verdictOf({ done: true, status: TaskStatus.SUCCESS, result: { accepted: true } }), 'accepted');
  assert.equal(verdictOf({ done: true, status: TaskStatus.SUCCESS, result: { accepted: false } }), 'wrong_answer');
  assert.equal(verdictOf({ done: true, status: TaskStatus.SUCCESS, result: { accepted: null } }), 'ok');
  assert.equal(verdictOf({ done: true, status: TaskStatus.COMPILE_FAILED, result: {} }), 'compile_error');
  assert.equal(verdictOf({ done: true, status: TaskStatus.RUN_FAILED, result: { execute: { stopped: 'time' } } }), 'time_limit');
  assert.equal(verdictOf({ done: true, status: TaskStatus.RUN_FAILED, result: { execute: { stopped: 'memory' } } }), 'memory_limit');
  assert.equal(verdictOf({ done: true, status: TaskStatus.RUN_FAILED, result: { execute: { stopped: null } } }), 'runtime_error');
  assert.equal(verdictOf({ done: true, status: TaskStatus.RUN_FAILED, result: { accepted: null } }), null, 'a brief cannot tell which limit');
  assert.equal(verdictOf({ done: true, status: TaskStatus.CANCELLED }), null);
  assert.equal(verdictOf({ done: false, status: TaskStatus.RUNNING }), null);
  assert.equal(verdictName('time_limit'), 'Time limit exceeded');
});

test('the exit code tells the verdict; 4 only for a run that failed by itself', () => {
  const task = (status: number, result: Partial<NonNullable<PresentedTask['result']>> | null) => ({ status, done: true, result }) as unknown as PresentedTask;
  const cases: [PresentedTask, number][] = [
    [task(TaskStatus.SUCCESS, { verdict: 'accepted' }), TaskExit.SUCCESS],
    [task(TaskStatus.SUCCESS, { verdict: 'ok' }), 0],
    [task(TaskStatus.COMPILE_FAILED, { verdict: 'compile_error' }), 3],
    [task(TaskStatus.RUN_FAILED, { verdict: 'runtime_error' }), 4],
    [task(TaskStatus.SUCCESS, { verdict: 'wrong_answer' }), 5],
    [task(TaskStatus.CANCELLED, null), 6],
    [task(TaskStatus.UNKNOWN_ERROR, null), 7],
    [task(TaskStatus.RUN_FAILED, { verdict: 'time_limit' }), 9],
    [task(TaskStatus.RUN_FAILED, { verdict: 'memory_limit' }), 10],
    [task(TaskStatus.RUN_FAILED, { verdict: 'output_limit' }), 11],
    [task(TaskStatus.SUCCESS, { verdict: 'presentation_error' }), 12],
    [task(TaskStatus.SUCCESS, { verdict: 'checker_error' }), 13],
  ];
  for (const [given, code] of cases) assert.equal(exitCodeOf(given), code, JSON.stringify(given));
  assert.equal(new Set(Object.values(TaskExit)).size, Object.values(TaskExit).length, 'every code means one thing');
});

test('expected against actual: lines compared as the exact checker does, the first difference found to its column', () => {
  assert.deepEqual(difference('1\n2\n3\n', '1\n2  \n3\n\n'), { line: undefined, column: undefined, differing: new Set() });
  const found = difference('one\n2\nthree\n', 'one\ntwo\nthree\nfour\n');
  assert.equal(found.line, 2);
  assert.equal(found.column, 1);
  assert.deepEqual([...found.differing], [2, 4]);
  assert.equal(difference('abcdef', 'abcXef').column, 4);
});
