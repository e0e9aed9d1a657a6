// What the judging of a task (judging.ts, checker-program.ts) asks of the task's runner: one confined
// step at a time (compile, a test's run, a checker's build or run), and what it says of that step.
import type { StepLimits, StepReport, StopReason } from '../task/types';
import type { JudgedLimits } from './verdict';
import type { StepName } from './workdir';

export interface StepCall {
  /** Which of the task's steps this is (its texts, its process-group record). */
  step: StepName;
  /** A step of the task's checker program (its build, or a run), not of the solution. */
  checker?: boolean;
  /** A script in the work dir run by bash (compile.sh, execute.sh, a checker's build.sh)... */
  script?: string;
  /** ...or a program (an absolute path) and its arguments. */
  argv?: readonly string[];
  /** Where it runs; the task's work dir by default. */
  workDir?: string;
  /** Its stdin (null: /dev/null): a regular file of the work dir's owner. */
  stdinFile: string | null;
  /** Its wall-time limit, ms (0: none). */
  timeoutMs: number;
  /** What the task (or kv2, for a checker) asks of its limits; the executor's defaults and maxima apply. */
  limits: StepLimits | undefined;
}

export interface StepResult {
  /** It ran to the end with exit code 0 and no limit stopped it. */
  ok: boolean;
  output: Buffer;
  /** Its stderr, or the text saying which limit stopped it (the original's texts), or why it did not run. */
  error: Buffer;
  report: StepReport;
  stopped: StopReason | null;
  /** kv2 could not run it at all (the step launcher failed), with why: nothing of the task is to blame. */
  startError: string | null;
  /** The limits it ran with, as its verdict is judged against them. */
  limits: JudgedLimits;
}

export type StepRunner = (call: StepCall) => Promise<StepResult>;
