// The task's schema: the shapes of a task's parts (zod, for the RPC contract and the HTTP forms) and the
// one check a task meets before anything stores it (checkTaskInput). Each edge that takes a task in (the
// gateway's forms, the judicator's RPC `add`) parses it into a TaskInput and calls checkTaskInput; the
// store counts its size with checkTaskSize, the same rule. Nothing past the edges checks a task again.
import zlib from 'node:zlib';
import { z } from 'zod';
import { InvalidInputError, TooLargeError } from '../common/errors';
import { ID_PATTERN } from '../common/ids';
import { checkAllowEntry } from './callback-allow';
import { checkerBuild, CHECKER_BUILDS } from './checker';
import { inputSize } from './codec';
import {
  MAX_CALLBACK_URL_LENGTH,
  MAX_FLOAT_CHECKER_ERROR,
  MAX_INFLATED_TEXT_BYTES,
  MAX_INT,
  MAX_JUDGE_TESTS,
  MAX_STEP_CPU_TIME_S,
  MAX_STEP_MEMORY_KB,
  MAX_STEP_PROCESSES,
  MAX_STEP_WALL_MS,
  TEST_NAME_PATTERN,
} from './limits';
import { STOP_REASONS, TASK_VERDICTS, TEST_MODES, TEST_VERDICTS, TaskStatus, type JudgeSpec, type TaskInput } from './types';
import { checkFileName, checkZip } from './zip';

/** A whole number as the original's clients send them (user, timeouts, search limit and page). */
export const countSchema = z.number().int().min(0).max(MAX_INT);

export const taskIdSchema = z.string().regex(ID_PATTERN, 'must be 24 lower-case hex characters');

export const taskStatusSchema = z.union(
  Object.values(TaskStatus).map((s) => z.literal(s)) as [z.ZodLiteral<number>, z.ZodLiteral<number>, ...z.ZodLiteral<number>[]],
);

/** The per-step limits a task may ask for (each optional; the executor's defaults and maxima apply). */
export const stepLimitsSchema = z
  .object({
    cpu_time: z.number().positive().max(MAX_STEP_CPU_TIME_S).optional(),
    memory: z.number().int().positive().optional(),
    processes: z.number().int().positive().max(MAX_STEP_PROCESSES).optional(),
    file_size: z.number().int().positive().optional(),
    output: z.number().int().positive().optional(),
    time_ms: z.number().int().positive().max(MAX_STEP_CPU_TIME_S * 1000).optional(),
    wall_ms: z.number().int().positive().max(MAX_STEP_WALL_MS).optional(),
    memory_kb: z.number().int().positive().max(MAX_STEP_MEMORY_KB).optional(),
    stack_kb: z.number().int().positive().max(MAX_STEP_MEMORY_KB).optional(),
  })
  .strict();

export const testModeSchema = z.enum(TEST_MODES);
export const testVerdictSchema = z.enum(TEST_VERDICTS);
export const taskVerdictSchema = z.enum(TASK_VERDICTS);

/** A test's name (`<name>.in` / `<name>.out` in a tests zip). */
export const testNameSchema = z.string().regex(TEST_NAME_PATTERN, 'must be 1 to 64 letters, digits, "_", "." or "-"');

/** The float checker's tolerance. */
export const floatErrorSchema = z.number().positive().max(MAX_FLOAT_CHECKER_ERROR);

/** The operator's callback allow list as configs hold it (--task-callback-allow); empty: none allowed. */
export const callbackAllowSchema = z.array(z.string().superRefine((entry, context) => {
  const problem = checkAllowEntry(entry);
  if (problem) context.addIssue({ code: 'custom', message: problem });
}));

/** What an executor says of one test it judged. */
export const testReportSchema = z.object({
  name: testNameSchema,
  verdict: testVerdictSchema,
  time_ms: z.number().min(0).nullable(),
  wall_ms: z.number().min(0).nullable(),
  memory_kb: z.number().min(0).nullable(),
  exit_code: z.number().int().nullable(),
  signal: z.string().max(32).nullable(),
  message: z.string().max(1024),
});

/** What an executor says of one step it ran. */
export const stepReportSchema = z.object({
  exit_code: z.number().int().nullable(),
  signal: z.string().max(32).nullable(),
  wall_ms: z.number().min(0),
  cpu_ms: z.number().min(0).nullable(),
  memory_kb: z.number().min(0).nullable(),
  stopped: z.enum(STOP_REASONS).nullable(),
});

/** The limits checkTaskInput applies. */
export interface TaskInputLimits {
  /** The cluster's task size limit (--task-max-size), bytes. */
  maxTaskSize: number;
  /** Largest text field once inflated, bytes (default MAX_INFLATED_TEXT_BYTES). */
  maxInflatedBytes?: number;
}

/**
 * Checks everything of a task that its shape does not say: its archives are zips whose entries stay in
 * the task's directory, its text fields are zlib that inflates to a sane size, and it fits the size
 * limit. Throws InvalidInputError naming the field, or TooLargeError.
 */
export function checkTaskInput(task: TaskInput, limits: TaskInputLimits): void {
  checkZip(task.compile.source, 'compile_source');
  checkZip(task.execute.data, 'execute_data');
  const maxInflated = limits.maxInflatedBytes ?? MAX_INFLATED_TEXT_BYTES;
  const texts: [string, Buffer][] = [
    ['compile_command', task.compile.command],
    ['execute_input', task.execute.input],
    ['execute_command', task.execute.command],
    ['execute_standard', task.execute.standard],
  ];
  if (task.judge) texts.push(...judgeTexts(task.judge));
  if (task.callback_url !== undefined) checkCallbackUrl(task.callback_url);
  for (const [name, bytes] of texts) {
    if (bytes.length === 0) continue;
    try {
      zlib.inflateSync(bytes, { maxOutputLength: maxInflated });
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      throw new InvalidInputError(code === 'ERR_BUFFER_TOO_LARGE' ? `${name} inflates to more than ${maxInflated} bytes` : `${name} is not zlib-compressed text`);
    }
  }
  checkTaskSize(task, limits.maxTaskSize);
}

/** Throws TooLargeError when the task's packed input is over `maxTaskSize` bytes; returns its size. */
export function checkTaskSize(task: TaskInput, maxTaskSize: number): number {
  const size = inputSize(task);
  if (size > maxTaskSize) {
    throw new TooLargeError(
      `the task takes ${size} bytes packed, more than the limit of ${maxTaskSize} bytes (--task-max-size); make its sources, data or input smaller`,
    );
  }
  return size;
}

/**
 * Checks a task's judge beyond its shape (test names unique and well formed, at most MAX_JUDGE_TESTS, a
 * checker that can be built and a sane tolerance) and returns its text fields, for the zlib check.
 */
function judgeTexts(judge: JudgeSpec): [string, Buffer][] {
  if (judge.tests.length > MAX_JUDGE_TESTS) throw new InvalidInputError(`tests: a task holds at most ${MAX_JUDGE_TESTS} tests, not ${judge.tests.length}`);
  const seen = new Set<string>();
  const texts: [string, Buffer][] = [];
  for (const test of judge.tests) {
    if (!TEST_NAME_PATTERN.test(test.name)) throw new InvalidInputError(`tests: the test name ${JSON.stringify(test.name.slice(0, 70))} must be 1 to 64 letters, digits, "_", "." or "-"`);
    if (seen.has(test.name)) throw new InvalidInputError(`tests: two tests are named ${JSON.stringify(test.name)}; test names must be unique`);
    seen.add(test.name);
    texts.push([`the input of test ${test.name}`, test.input], [`the output of test ${test.name}`, test.output]);
  }
  const checker = judge.checker;
  if (checker.kind === 'float' && !floatErrorSchema.safeParse(checker.error).success) {
    throw new InvalidInputError(`checker: the float tolerance must be a number above 0 and at most ${MAX_FLOAT_CHECKER_ERROR}, not ${checker.error}`);
  }
  if (checker.kind === 'program') {
    checkFileName(checker.source_name, 'checker_source_name');
    if (!checkerBuild(checker.source_name)) {
      throw new InvalidInputError(`checker_source_name must end with one of ${Object.keys(CHECKER_BUILDS).join(', ')} (how kv2 builds the checker), not ${JSON.stringify(checker.source_name)}`);
    }
    texts.push(['checker_source_str', checker.source]);
  }
  return texts;
}

/**
 * A callback URL as a task may carry one: absolute http(s), no user name or password in it, not too long.
 * Which hosts it may name is the operator's choice (the callback allow list), checked apart.
 */
export function checkCallbackUrl(url: string): URL {
  if (url.length > MAX_CALLBACK_URL_LENGTH) throw new InvalidInputError(`callback_url is longer than ${MAX_CALLBACK_URL_LENGTH} characters`);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new InvalidInputError(`callback_url must be an absolute http:// or https:// URL, not ${JSON.stringify(url.slice(0, 70))}`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new InvalidInputError(`callback_url must be an http:// or https:// URL, not ${parsed.protocol}`);
  if (parsed.username || parsed.password) throw new InvalidInputError('callback_url must not carry a user name or password (callbacks are signed instead)');
  return parsed;
}
