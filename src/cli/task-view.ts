// How `kv2 task` shows tasks (issue 17): the verdict first, in the judges' words, then the status; time,
// wall time and memory as judges report them; for `get`, every test with its verdict, time, memory, exit
// code, signal and message; and the exit code each outcome gives (TASK_EXIT_HELP says the table).
import type { PresentedBrief, PresentedTask } from '../gateway/present';
import { type StopReason, type TestReport } from '../task/types';
import { VERDICT_CODES, verdictName, verdictOf } from '../task/verdicts';
import { formatTable, statusName } from './shared';

/**
 * Exit codes of `kv2 task submit --wait` and `kv2 task wait`, by the task's verdict (2 stays "usage", as
 * everywhere; 0-8 keep the meanings they had before verdicts, 4 now only for a run that failed by itself).
 */
export const TaskExit = {
  SUCCESS: 0,
  ERROR: 1,
  COMPILE_ERROR: 3,
  RUNTIME_ERROR: 4,
  WRONG_ANSWER: 5,
  CANCELLED: 6,
  UNKNOWN_ERROR: 7,
  WAIT_TIMEOUT: 8,
  TIME_LIMIT: 9,
  MEMORY_LIMIT: 10,
  OUTPUT_LIMIT: 11,
  PRESENTATION_ERROR: 12,
  CHECKER_ERROR: 13,
} as const;

/** The table, as `kv2 task --help` and docs/api.md print it. */
export const TASK_EXIT_HELP =
  'Exit codes of submit --wait and wait, by verdict: 0 accepted (or ok: nothing to compare), 3 compilation\n' +
  'error, 4 runtime error, 5 wrong answer, 9 time limit, 10 memory limit, 11 output limit, 12 presentation\n' +
  'error, 13 judgement failed (the checker); 6 cancelled, 7 unknown error, 8 --wait-timeout reached;\n' +
  'otherwise 1 error, 2 bad usage.';

const EXIT_BY_VERDICT: Record<string, number> = {
  accepted: TaskExit.SUCCESS,
  ok: TaskExit.SUCCESS,
  compile_error: TaskExit.COMPILE_ERROR,
  runtime_error: TaskExit.RUNTIME_ERROR,
  wrong_answer: TaskExit.WRONG_ANSWER,
  time_limit: TaskExit.TIME_LIMIT,
  memory_limit: TaskExit.MEMORY_LIMIT,
  output_limit: TaskExit.OUTPUT_LIMIT,
  presentation_error: TaskExit.PRESENTATION_ERROR,
  checker_error: TaskExit.CHECKER_ERROR,
};

/** The exit code that tells a finished task's outcome. */
export function exitCodeOf(task: PresentedTask): number {
  const verdict = verdictOf(task);
  if (verdict) return EXIT_BY_VERDICT[verdict] ?? TaskExit.UNKNOWN_ERROR;
  return task.status === 7 ? TaskExit.CANCELLED : TaskExit.UNKNOWN_ERROR;
}

/** The verdict (or, without one, the status) as the first column says it. */
export function outcomeText(task: { status: number; done: boolean; verdict?: string | null }): string {
  return task.verdict ? verdictName(task.verdict) : statusName(task.status);
}

export function ms(value: number | null | undefined): string {
  if (value === null || value === undefined) return '-';
  return value < 10_000 ? `${Math.round(value)} ms` : `${(value / 1000).toFixed(2)} s`;
}

export function kib(value: number | null | undefined): string {
  if (value === null || value === undefined) return '-';
  return value < 10 * 1024 ? `${Math.round(value)} KiB` : `${(value / 1024).toFixed(1)} MiB`;
}

/** The task's tests; a result from before tests (no list) is one test, from its execute step. */
export function testsOf(task: PresentedTask): TestReport[] {
  const result = task.result;
  if (!result) return [];
  if (result.tests?.length) return result.tests;
  const execute = result.execute;
  const verdict = verdictOf(task);
  if (!execute || !verdict || verdict === 'compile_error') return [];
  return [
    {
      name: '1',
      verdict: verdict === 'checker_error' ? 'checker_error' : verdict,
      time_ms: execute.cpu_ms,
      wall_ms: execute.wall_ms,
      memory_kb: execute.memory_kb,
      exit_code: execute.exit_code,
      signal: execute.signal,
      message: stoppedText(execute.stopped),
    },
  ];
}

function stoppedText(stopped: StopReason | null): string {
  return stopped ? `stopped: ${stopped}` : '';
}

/** What a task took, as judges report it: the most any test took. */
export function usageOf(task: PresentedTask): { time: number | null; wall: number | null; memory: number | null } {
  const tests = testsOf(task).filter((t) => t.verdict !== 'skipped');
  const most = (values: (number | null)[]) => (values.some((v) => v !== null) ? Math.max(...values.filter((v): v is number => v !== null)) : null);
  return { time: most(tests.map((t) => t.time_ms)), wall: most(tests.map((t) => t.wall_ms)), memory: most(tests.map((t) => t.memory_kb)) };
}

/**
 * A task for a person: the verdict first, its facts, its tests, then its texts. `streamed`: output already
 * shown as it came (kv2 task wait --follow): only what follows it is printed, not the whole again.
 */
export function formatTask(task: PresentedTask, streamed?: { stdout: string; stderr: string }): { out: string; err: string } {
  const verdict = verdictOf(task);
  const used = usageOf(task);
  const tests = testsOf(task);
  const passed = tests.filter((t) => t.verdict === 'accepted' || t.verdict === 'ok').length;
  const rows: [string, string][] = [
    ['verdict', verdict ? `${verdictName(verdict)} (${VERDICT_CODES[verdict]})` : task.done ? '-' : 'not done yet'],
    ['status', statusName(task.status)],
    ['id', task.id],
    ['time', task.result ? `${ms(used.time)} CPU, ${ms(used.wall)} wall, ${kib(used.memory)} peak` : '-'],
  ];
  if (tests.length) rows.push(['tests', `${passed} of ${tests.length} passed`]);
  rows.push(
    ['done', task.done ? 'yes' : 'no'],
    ['user', String(task.user)],
    ['executor', task.executor ?? '-'],
    ['added', task.add_time],
    ['reported', task.report_time || '-'],
    ['retries', String(task.retries ?? 0)],
    ['compile', `${task.compile.command || '(none)'}  [timeout ${task.compile.timeout || 'none'}${task.compile.source ? ', with source zip' : ''}]`],
    ['execute', `${task.execute.command}  [timeout ${task.execute.timeout || 'none'}${task.execute.data ? ', with data zip' : ''}]`],
  );
  let out = '';
  let err = '';
  // What follows the output shown as it came first, so that it reads on from there.
  const rest = (whole: string, shown: string | undefined) => (shown !== undefined && whole.startsWith(shown) ? whole.slice(shown.length) : undefined);
  const stdoutRest = streamed && task.result ? rest(task.result.execute_output, streamed.stdout) : undefined;
  const stderrRest = streamed && task.result ? rest(task.result.execute_error, streamed.stderr) : undefined;
  if (stdoutRest) out += stdoutRest;
  if (stderrRest) err += stderrRest;
  if (out && !out.endsWith('\n')) out += '\n';
  out += `${formatTable(['field', 'value'], rows).split('\n').slice(1).join('\n')}\n`;
  if (tests.length) {
    out += `\n${formatTable(
      ['#', 'TEST', 'VERDICT', 'TIME', 'WALL', 'MEMORY', 'EXIT', 'SIGNAL', 'MESSAGE'],
      tests.map((t, i) => [i + 1, t.name, VERDICT_CODES[t.verdict] ?? t.verdict, ms(t.time_ms), ms(t.wall_ms), kib(t.memory_kb), t.exit_code ?? '-', t.signal ?? '-', t.message.split('\n')[0] ?? '']),
    )}\n`;
  }
  if (task.result) {
    for (const name of ['compile_output', 'compile_error', 'execute_output', 'execute_error'] as const) {
      const value = task.result[name];
      if (!value) continue;
      // Shown as it came (whole, or up to what was just printed): not again.
      if (name === 'execute_output' && stdoutRest !== undefined) continue;
      if (name === 'execute_error' && stderrRest !== undefined) continue;
      out += `--- ${name} ---\n${value.endsWith('\n') ? value : `${value}\n`}`;
    }
  }
  return { out, err };
}

export function formatBriefs(tasks: PresentedBrief[], pages: number, page: number): string {
  if (tasks.length === 0) return 'No task matches.\n';
  const table = formatTable(
    ['VERDICT', 'STATUS', 'ID', 'USER', 'ADDED', 'EXECUTOR'],
    tasks.map((t) => [t.verdict ? verdictName(t.verdict) : '-', statusName(t.status), t.id, t.user, t.add_time, t.executor ?? '-']),
  );
  return `${table}\n${pages > 1 ? `(page ${page + 1} of ${pages}; --page N for another)\n` : ''}`;
}
