// Tasks as the gateway shows them: the original's JSON (text decompressed, long text truncated at 1000
// characters + '...' unless asked not to), and the single fields a client downloads (`&file=`).
import { NotFoundError, InvalidInputError } from '../common/errors';
import { truncate, unpackBytes } from '../task/codec';
import type { WireBrief } from '../rpc/contract';
import type { StepLimits, StepReport, Task, TaskBrief, TaskVerdict, TestMode, TestReport } from '../task/types';

/** A brief as the API shows it: the RPC's brief, times '' when missing. */
export type PresentedBrief = WireBrief;

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

/** The names `&file=` accepts. */
export const ZIP_FILES = ['compile_source', 'execute_data'] as const;
export const INPUT_TEXT_FILES = ['compile_command', 'execute_input', 'execute_command', 'execute_standard'] as const;
export const RESULT_FILES = ['compile_output', 'compile_error', 'execute_output', 'execute_error'] as const;
export const DOWNLOADABLE = [...ZIP_FILES, ...INPUT_TEXT_FILES, ...RESULT_FILES] as const;

export interface Download {
  body: Buffer;
  contentType: string;
  filename: string;
}

/**
 * One field of a task as a download: zips as they were uploaded, text and output as their raw bytes (a
 * program's binary output downloads unchanged). An empty field, or a result before there is one, is
 * NotFoundError (HTTP 404, as the original for empty content); an unknown name is InvalidInputError.
 */
export function taskDownload(task: Task, file: string): Download {
  if (!(DOWNLOADABLE as readonly string[]).includes(file)) {
    throw new InvalidInputError(`file must be one of ${DOWNLOADABLE.join(', ')}, not ${JSON.stringify(file)}`);
  }
  let body: Buffer;
  if ((ZIP_FILES as readonly string[]).includes(file)) {
    body = file === 'compile_source' ? task.compile.source : task.execute.data;
    if (body.length === 0) throw new NotFoundError(`task ${task.id} has no ${file}`);
    return { body, contentType: 'application/zip', filename: `${task.id}_${file}.zip` };
  }
  if ((RESULT_FILES as readonly string[]).includes(file)) {
    if (!task.result) throw new NotFoundError(`task ${task.id} has no result yet, so no ${file}; ask again when it is done`);
    body = unpackBytes(task.result[file as (typeof RESULT_FILES)[number]]);
  } else {
    const packed = {
      compile_command: task.compile.command,
      execute_input: task.execute.input,
      execute_command: task.execute.command,
      execute_standard: task.execute.standard,
    }[file as (typeof INPUT_TEXT_FILES)[number]];
    body = unpackBytes(packed);
  }
  if (body.length === 0) throw new NotFoundError(`${file} of task ${task.id} is empty`);
  return { body, contentType: 'text/plain; charset=utf-8', filename: `${task.id}_${file}.txt` };
}
