// Verdicts as people read them (issue 17): the judges' words for each verdict, and the verdict of a task
// whose result has none (a result recorded before verdicts existed, or by an older executor during a
// rolling update), read from what it does have: its status, `accepted`, and why its execute step stopped.
import { TaskStatus, type StopReason, type TaskVerdict, type TestVerdict } from './types';

/** The judges' words, as lists, pages and the CLI show them. */
export const VERDICT_NAMES: Record<TaskVerdict | TestVerdict, string> = {
  accepted: 'Accepted',
  wrong_answer: 'Wrong answer',
  presentation_error: 'Presentation error',
  time_limit: 'Time limit exceeded',
  memory_limit: 'Memory limit exceeded',
  output_limit: 'Output limit exceeded',
  runtime_error: 'Runtime error',
  compile_error: 'Compilation error',
  checker_error: 'Judgement failed',
  ok: 'OK',
  skipped: 'Skipped',
};

/** The short forms judges print in tables (Codeforces, DOMjudge): AC, WA, TLE... */
export const VERDICT_CODES: Record<TaskVerdict | TestVerdict, string> = {
  accepted: 'AC',
  wrong_answer: 'WA',
  presentation_error: 'PE',
  time_limit: 'TLE',
  memory_limit: 'MLE',
  output_limit: 'OLE',
  runtime_error: 'RE',
  compile_error: 'CE',
  checker_error: 'JF',
  ok: 'OK',
  skipped: '--',
};

export function verdictName(verdict: string | null | undefined): string {
  return verdict ? (VERDICT_NAMES[verdict as TaskVerdict] ?? verdict) : '';
}

/** What a stopped execute step means as a verdict. */
const STOPPED_VERDICTS: Partial<Record<StopReason, TaskVerdict>> = {
  time: 'time_limit',
  cpu_time: 'time_limit',
  memory: 'memory_limit',
  output: 'output_limit',
  file_size: 'output_limit',
};

/**
 * The verdict of a done task: its result's, or, for a result without one, what its status says
 * (Compile failed: compile_error; Success: accepted, wrong_answer or ok by `accepted`; Run failed: the
 * limit that stopped its execute step, else runtime_error; unknown without the step's facts). Null while
 * it is not done, and for Cancelled and Unknown error, which have no verdict.
 */
export function verdictOf(task: {
  done: boolean;
  status: number;
  verdict?: TaskVerdict | null;
  result?: { verdict?: TaskVerdict | null; accepted?: boolean | null; execute?: { stopped: StopReason | null } | null } | null;
}): TaskVerdict | null {
  const given = task.result?.verdict ?? task.verdict;
  if (given) return given;
  if (!task.done) return null;
  const accepted = task.result?.accepted;
  switch (task.status) {
    case TaskStatus.COMPILE_FAILED:
      return 'compile_error';
    case TaskStatus.SUCCESS:
      return accepted === true ? 'accepted' : accepted === false ? 'wrong_answer' : 'ok';
    case TaskStatus.RUN_FAILED: {
      // Without the execute step's facts (a task's brief), which limit stopped it is not known.
      if (!task.result || task.result.execute === undefined) return null;
      const stopped = task.result.execute?.stopped;
      return (stopped && STOPPED_VERDICTS[stopped]) || 'runtime_error';
    }
    default:
      return null;
  }
}
