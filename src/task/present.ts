// A task as the API shows it (GET /api/task's JSON, and the body of a task's callback, issue 17): the
// original's fields, text decompressed and long text truncated at 1000 characters + '...' unless asked
// not to, and kv2's additions. One shape, made here for the gateway and the judicator alike.
import { truncate, unpackBytes } from './codec';
import type { StepLimits, StepReport, Task, TaskBrief, TaskVerdict, TestMode, TestReport } from './types';

/** A brief as the API shows it: the task's brief, times '' when missing. */
export type PresentedBrief = TaskBrief;

export interface PresentedTask extends PresentedBrief {
  compile: { source: boolean; command: string; timeout: number; limits?: StepLimits };
  execute: { input: string; data: boolean; command: string; timeout: number; standard: string; limits?: StepLimits };
  network?: boolean;
  /** Issue 17: the tests (text truncated as the other fields), test mode and checker, when the task has them. */
  judge?: PresentedJudge;
  /** Issue 17: where the finished task is POSTed. */
  callback_url?: string;
  /** Addition: how many times the task went back to Retrying. */
  retries: number;
  result: {
    compile_output: string;
    compile_error: string;
    execute_output: string;
    execute_error: string;
    accepted: boolean | null;
    compile: StepReport | null;
    execute: StepReport | null;
    /** Issue 17: the task's verdict (null: none, e.g. an Unknown error, or a result from an older executor). */
    verdict: TaskVerdict | null;
    /** Issue 17: one report per test, in order. */
    tests: TestReport[];
  } | null;
}

export interface PresentedJudge {
  mode: TestMode;
  checker: { kind: 'exact' | 'tokens' } | { kind: 'float'; error: number } | { kind: 'program'; source_name: string; source: string };
  tests: { name: string; input: string; output: string }[];
}

/** A brief as the original showed it: missing times are ''. */
export function presentBrief(task: TaskBrief | PresentedBrief): PresentedBrief {
  return {
    id: task.id,
    user: task.user,
    add_time: task.add_time || '',
    done: task.done,
    status: task.status,
    executor: task.executor ?? null,
    report_time: task.report_time || '',
    // Issue 17: the verdict first, in lists too (null until the task is done, or when it has none).
    verdict: task.verdict ?? null,
  };
}

/**
 * A stored text field as text. Output that is not UTF-8 shows U+FFFD where the bytes were (the original
 * answered HTTP 500); a field that is not even zlib (a store that went wrong) shows as empty.
 */
function shown(packed: Buffer | undefined, full: boolean): string {
  let text: string;
  try {
    text = unpackBytes(packed).toString('utf8');
  } catch {
    text = '';
  }
  return full ? text : truncate(text);
}

export function presentTask(task: Task, options: { noTruncate: boolean }): PresentedTask {
  const full = options.noTruncate;
  const presented: PresentedTask = {
    ...presentBrief(task),
    // The brief's verdict is its result's; a task from a judicator older than briefs with verdicts has only the latter.
    verdict: task.verdict ?? task.result?.verdict ?? null,
    compile: {
      source: task.compile.source.length > 0,
      command: shown(task.compile.command, full),
      timeout: task.compile.timeout,
      ...(task.compile.limits ? { limits: task.compile.limits } : {}),
    },
    execute: {
      input: shown(task.execute.input, full),
      data: task.execute.data.length > 0,
      command: shown(task.execute.command, full),
      timeout: task.execute.timeout,
      standard: shown(task.execute.standard, full),
      ...(task.execute.limits ? { limits: task.execute.limits } : {}),
    },
    retries: task.retries ?? 0,
    result: task.result
      ? {
          compile_output: shown(task.result.compile_output, full),
          compile_error: shown(task.result.compile_error, full),
          execute_output: shown(task.result.execute_output, full),
          execute_error: shown(task.result.execute_error, full),
          accepted: task.result.accepted ?? null,
          compile: task.result.compile ?? null,
          execute: task.result.execute ?? null,
          verdict: task.result.verdict ?? null,
          tests: task.result.tests ?? [],
        }
      : null,
  };
  if (task.network !== undefined) presented.network = task.network;
  if (task.judge) {
    const checker = task.judge.checker;
    presented.judge = {
      mode: task.judge.mode,
      checker: checker.kind === 'program' ? { kind: 'program', source_name: checker.source_name, source: shown(checker.source, full) } : checker,
      tests: task.judge.tests.map((test) => ({ name: test.name, input: shown(test.input, full), output: shown(test.output, full) })),
    };
  }
  if (task.callback_url !== undefined) presented.callback_url = task.callback_url;
  return presented;
}

