// Judging a compiled task (issue 17): its tests, each run in a fresh work dir made from what the compile
// step left (test-dirs.ts) with the execute step's limits, in order, stopping at the first failure or
// running them all, each judged as judges do (verdict.ts) and, when it ran to its end, checked (a built-in
// checker, judge.ts, or the task's checker program); or, for a task without tests, its one execute in
// place as the original ran it, checked against execute_standard.
import { unpackBytes } from '../task/codec';
import type { JudgeTest, Task, TestReport } from '../task/types';
import type { CheckerProgram, CheckerVerdict } from './checker-program';
import { compareOutput } from './judge';
import { wallLimitMs } from './limits';
import type { StepResult, StepRunner } from './step-runner';
import { TestWorkDirs } from './test-dirs';
import type { TaskIdentity } from './task-user';
import { failed, runVerdict, skippedTest, testReport } from './verdict';
import type { TaskPaths } from './workdir';

export interface JudgingContext {
  task: Task;
  paths: TaskPaths;
  run: StepRunner;
  /** The task user (who owns each test's dir), or undefined when tasks run as the executor's user. */
  owner: TaskIdentity | undefined;
  /** The task's checker program, built already, when it has one. */
  checker: CheckerProgram | undefined;
  cancelled(): boolean;
  /** Told as each test starts (1-based), for progress. */
  onTest?(test: number, of: number): void;
}

export interface Judged {
  tests: TestReport[];
  /** The run whose output the result keeps: the first failing test's, else the last one run. */
  shown: StepResult;
  /** A test that kv2 could not run at all (the step launcher failed): the task gets no verdict. */
  unknownError: string | null;
}

/** The name of the one test of a task without a tests list. */
export const ONLY_TEST = '1';

/** How a test's output is checked: null when nothing is to be compared (no standard, no judge). */
type Check = ((output: Buffer) => Promise<CheckerVerdict>) | null;

function checkAgainst(context: JudgingContext, input: Buffer, expected: Buffer): Check {
  const checker = context.task.judge?.checker ?? { kind: 'exact' as const };
  if (checker.kind === 'program') return (output) => context.checker!.check(input, output, expected);
  return async (output) => compareOutput(output, expected, checker);
}

/** A test's report from its run: the run's verdict when it did not end well, else the check's. */
async function evaluate(name: string, run: StepResult, check: Check): Promise<TestReport> {
  if (run.startError !== null) return testReport(name, run.report, 'runtime_error', `Unknown error. ${run.startError}`);
  const bad = runVerdict(run.report, run.limits);
  if (bad) return testReport(name, run.report, bad.verdict, bad.message);
  if (!check) return testReport(name, run.report, 'ok', '');
  const checked = await check(run.output);
  return testReport(name, run.report, checked.verdict, checked.message);
}

function executeCall(task: Task, stdinFile: string) {
  return { step: 'execute' as const, script: 'execute.sh', stdinFile, timeoutMs: wallLimitMs(task.execute.timeout, task.execute.limits), limits: task.execute.limits };
}

/** Judges the task; undefined when it was cancelled meanwhile. */
export async function judgeTask(context: JudgingContext): Promise<Judged | undefined> {
  const tests = context.task.judge?.tests ?? [];
  return tests.length > 0 ? judgeTests(context, tests) : judgeInPlace(context);
}

/** The original's one execute, in the work dir as compile left it, checked against execute_standard. */
async function judgeInPlace(context: JudgingContext): Promise<Judged | undefined> {
  const { task, paths } = context;
  context.onTest?.(1, 1);
  const run = await context.run(executeCall(task, paths.executeInput));
  if (context.cancelled()) return undefined;
  const standard = unpackBytes(task.execute.standard);
  // The original compared only with a standard; a task that names a checker is always checked.
  const check = task.judge || standard.length > 0 ? checkAgainst(context, unpackBytes(task.execute.input), standard) : null;
  const report = await evaluate(ONLY_TEST, run, check);
  return { tests: [report], shown: run, unknownError: run.startError };
}

/** Every test in a fresh work dir, in order; after a failure the rest are skipped in first_fail mode. */
async function judgeTests(context: JudgingContext, tests: readonly JudgeTest[]): Promise<Judged | undefined> {
  const { task, paths } = context;
  const dirs = TestWorkDirs.keep(paths, context.owner);
  const reports: TestReport[] = [];
  let firstFailure: StepResult | undefined;
  let last: StepResult | undefined;
  let unknownError: string | null = null;
  try {
    for (const [index, test] of tests.entries()) {
      if ((firstFailure && task.judge!.mode === 'first_fail') || unknownError !== null) {
        reports.push(skippedTest(test.name));
        continue;
      }
      context.onTest?.(index + 1, tests.length);
      const input = unpackBytes(test.input);
      dirs.prepare(input);
      const run = await context.run(executeCall(task, paths.executeInput));
      if (context.cancelled()) return undefined;
      const report = await evaluate(test.name, run, checkAgainst(context, input, unpackBytes(test.output)));
      if (context.cancelled()) return undefined;
      reports.push(report);
      last = run;
      if (run.startError !== null) unknownError = run.startError;
      if (failed(report.verdict)) firstFailure ??= run;
    }
  } finally {
    dirs.clear();
  }
  return { tests: reports, shown: firstFailure ?? last!, unknownError };
}
