// What a client submits (the original's form fields, as a multipart or urlencoded form or as a JSON
// object) turned into a TaskInput, or refused with an InvalidFieldsError that names every bad field and
// says why (issue 17: all of them at once, not one a time), or a TooLargeError (the task's own rules are
// task/schema.ts's). Also the validation of the query parameters of the other routes.
import { InvalidFieldsError, InvalidInputError, TooLargeError, type FieldError } from '../common/errors';
import { ID_PATTERN } from '../common/ids';
import { parseTime } from '../common/time';
import type { CallbackAllowList } from '../task/callback-allow';
import { packText } from '../task/codec';
import { MAX_INT, MAX_JUDGE_TESTS } from '../task/limits';
import { checkCallbackUrl, checkTaskInput, floatErrorSchema, stepLimitsSchema } from '../task/schema';
import { testsFromZip } from '../task/tests-zip';
import { CHECKER_KINDS, TEST_MODES, type Checker, type JudgeSpec, type JudgeTest, type StepLimits, type TaskInput } from '../task/types';
import { checkFileName, zipOneFile } from '../task/zip';

/** A submission as it arrived: text fields, uploaded files, and whether it came as JSON. */
export interface Submission {
  fields: Record<string, unknown>;
  files: Record<string, Buffer>;
  kind: 'form' | 'json';
}

const TEXT_FIELDS = ['compile_command', 'execute_input', 'execute_command', 'execute_standard'] as const;
const INT_FIELDS = ['user', 'compile_timeout', 'execute_timeout'] as const;
/** The limit fields of each step: the isolation issue's, then issue 17's in the judges' units. */
const LIMIT_FIELDS: Record<string, keyof StepLimits> = {
  cpu_time: 'cpu_time',
  memory: 'memory',
  processes: 'processes',
  file_size: 'file_size',
  output: 'output',
  time_limit_ms: 'time_ms',
  wall_limit_ms: 'wall_ms',
  memory_limit_kb: 'memory_kb',
  stack_limit_kb: 'stack_kb',
};
const STEP_LIMIT_FIELDS = (['compile', 'execute'] as const).flatMap((step) => Object.keys(LIMIT_FIELDS).map((name) => `${step}_${name}`));
/** Uploaded zips: as files in a form, base64 in JSON. */
export const ARCHIVE_FIELDS = ['compile_source', 'execute_data', 'tests_zip'] as const;
const PAIR_FIELDS = ['compile_source_name', 'compile_source_str', 'execute_data_name', 'execute_data_str'] as const;
/** Issue 17's fields. */
const JUDGE_FIELDS = ['tests', 'test_mode', 'checker', 'checker_source_name', 'checker_source_str'] as const;

/** Every field a submission may carry (JSON bodies are checked against it to catch typos). */
export const SUBMISSION_FIELDS: readonly string[] = [
  ...INT_FIELDS,
  ...TEXT_FIELDS,
  ...ARCHIVE_FIELDS,
  ...PAIR_FIELDS,
  ...STEP_LIMIT_FIELDS,
  ...JUDGE_FIELDS,
  'network',
  'callback_url',
];

/** JSON submissions may leave these out (the original's form required them): they default to ''. */
const JSON_OPTIONAL_TEXT = new Set(['compile_command', 'execute_input', 'execute_standard']);

/** Parses a whole number in 0..2147483647 (the original's int check); `what` names the field. */
export function parseCount(value: unknown, what: string): number {
  let number: number;
  if (typeof value === 'number') number = value;
  else if (typeof value === 'string' && /^\s*\+?\d{1,10}\s*$/.test(value)) number = Number(value.trim());
  else throw new InvalidInputError(`${what} must be a whole number from 0 to ${MAX_INT}, not ${describe(value)}`);
  if (!Number.isInteger(number) || number < 0 || number > MAX_INT) {
    throw new InvalidInputError(`${what} must be a whole number from 0 to ${MAX_INT}, not ${describe(value)}`);
  }
  return number;
}

/** The original's truthy flags, made strict: 1/true/0/false (any case); absent or '' is `fallback`. */
export function parseFlag(value: unknown, what: string, fallback = false): boolean {
  if (value === undefined || value === null || value === '') return fallback;
  if (typeof value === 'boolean') return value;
  if (value === 1 || value === 0) return value === 1;
  if (typeof value === 'string') {
    const lower = value.trim().toLowerCase();
    if (lower === '1' || lower === 'true') return true;
    if (lower === '0' || lower === 'false') return false;
  }
  throw new InvalidInputError(`${what} must be 1, true, 0 or false, not ${describe(value)}`);
}

/**
 * GET /api/task's `wait`: seconds (a decimal number, such as 30 or 0.5) to hold the answer until the task
 * is done; absent or '' is 0 (answer at once). More than `maxSeconds` is cut to it: the client asks again.
 * Returns milliseconds.
 */
export function parseWait(value: unknown, maxSeconds: number): number {
  if (value === undefined || value === null || value === '') return 0;
  const seconds = typeof value === 'number' ? value : typeof value === 'string' && /^\s*\+?(\d{1,9}(\.\d*)?|\.\d+)\s*$/.test(value) ? Number(value) : NaN;
  if (!Number.isFinite(seconds) || seconds < 0) {
    throw new InvalidInputError(`wait must be a number of seconds from 0 to ${maxSeconds} (how long to wait for the task to be done), not ${describe(value)}`);
  }
  return Math.round(Math.min(seconds, maxSeconds) * 1000);
}

/** A task id (24 lower-case hex characters). */
export function parseId(value: unknown, what = 'id'): string {
  if (typeof value === 'string' && ID_PATTERN.test(value)) return value;
  if (value === undefined || value === null || value === '') throw new InvalidInputError(`${what} is required`);
  throw new InvalidInputError(`${what} must be a task id (24 lower-case hex characters), not ${describe(value)}`);
}

function describe(value: unknown): string {
  const text = typeof value === 'string' ? value : JSON.stringify(value) ?? String(value);
  const short = text.length > 60 ? `${text.slice(0, 60)}...` : text;
  return JSON.stringify(short);
}

/** Whether a field was given at all ('' in a form is "left empty"). */
function given(value: unknown): boolean {
  return value !== undefined && value !== null && value !== '';
}

/** Collects every bad field of a submission, so that all of them are reported at once. */
class FieldCheck {
  readonly errors: FieldError[] = [];

  /** `parse()`'s value; undefined, with its error recorded against `field`, when it throws InvalidInputError. */
  take<T>(field: string, parse: () => T): T | undefined {
    try {
      return parse();
    } catch (error) {
      if (error instanceof InvalidFieldsError) this.errors.push(...error.errors);
      else if (error instanceof InvalidInputError) this.errors.push({ field, message: error.message });
      else throw error;
      return undefined;
    }
  }

  fail(field: string, message: string): void {
    this.errors.push({ field, message });
  }

  throwIfAny(): void {
    if (this.errors.length > 0) throw new InvalidFieldsError(this.errors);
  }
}

/** A text field: forms send strings; JSON may only use strings too (numbers would be a mistake). */
function text(submission: Submission, name: string, required: boolean): string {
  const value = submission.fields[name];
  if (value === undefined || value === null) {
    if (required) throw new InvalidInputError(`${name} is required`);
    return '';
  }
  if (typeof value !== 'string') throw new InvalidInputError(`${name} must be text, not ${describe(value)}`);
  return value;
}

function optionalText(submission: Submission, name: string): string {
  return text(submission, name, false);
}

/** An uploaded zip (a form file, or base64 in JSON); undefined when none was given. */
function upload(submission: Submission, field: (typeof ARCHIVE_FIELDS)[number]): Buffer | undefined {
  const uploaded = submission.files[field];
  if (uploaded && uploaded.length > 0) return uploaded;
  const inline = submission.fields[field];
  if (!given(inline)) return undefined;
  if (typeof inline !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(inline.replace(/\s+/g, ''))) {
    throw new InvalidInputError(`${field} must be a zip archive in base64`);
  }
  return Buffer.from(inline, 'base64');
}

/** An uploaded zip, else the zip of the name+text pair, else empty. */
function archive(submission: Submission, field: 'compile_source' | 'execute_data'): Buffer {
  // Checked with the whole task (checkTaskInput), as every edge checks it.
  const uploaded = upload(submission, field);
  if (uploaded) return uploaded;
  const name = optionalText(submission, `${field}_name`);
  const str = optionalText(submission, `${field}_str`);
  if (!name && !str) return Buffer.alloc(0);
  if (!name || !str) {
    throw new InvalidInputError(`${field}_name and ${field}_str go together: give both (a file name and its text) or neither`);
  }
  return zipOneFile(checkFileName(name, `${field}_name`), str);
}

/** One limit field: a positive whole number within the schema's bounds. */
function limitValue(value: unknown, field: string, key: keyof StepLimits): number {
  const number = typeof value === 'number' ? value : typeof value === 'string' && /^\s*\+?\d{1,16}\s*$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(number) || number <= 0) throw new InvalidInputError(`${field} must be a positive whole number, not ${describe(value)}`);
  const checked = stepLimitsSchema.shape[key].safeParse(number);
  if (!checked.success) throw new InvalidInputError(`${field} ${checked.error.issues[0]!.message.toLowerCase()}`);
  return number;
}

function limits(submission: Submission, step: 'compile' | 'execute', check: FieldCheck): StepLimits | undefined {
  const found: StepLimits = {};
  for (const [name, key] of Object.entries(LIMIT_FIELDS)) {
    const field = `${step}_${name}`;
    const value = submission.fields[field];
    if (!given(value)) continue;
    const number = check.take(field, () => limitValue(value, field, key));
    if (number !== undefined) found[key] = number;
  }
  return Object.keys(found).length > 0 ? found : undefined;
}

/** `tests` as a JSON array (a string in a form, the array itself in a JSON body) of {name?, input, output}. */
function testsFromJson(value: unknown): JudgeTest[] {
  let list: unknown = value;
  if (typeof value === 'string') {
    try {
      list = JSON.parse(value);
    } catch {
      throw new InvalidInputError('tests must be a JSON array of {"name", "input", "output"} (name may be left out)');
    }
  }
  if (!Array.isArray(list)) throw new InvalidInputError('tests must be a JSON array of {"name", "input", "output"} (name may be left out)');
  if (list.length === 0) throw new InvalidInputError('tests is empty: give at least one test, or leave the field out');
  if (list.length > MAX_JUDGE_TESTS) throw new InvalidInputError(`tests holds ${list.length} tests, more than the ${MAX_JUDGE_TESTS} a task may have`);
  return list.map((item: unknown, index) => {
    const at = `tests[${index}]`;
    if (!item || typeof item !== 'object' || Array.isArray(item)) throw new InvalidInputError(`${at} must be an object {"name", "input", "output"}`);
    const { name, input, output, ...rest } = item as Record<string, unknown>;
    const extra = Object.keys(rest);
    if (extra.length > 0) throw new InvalidInputError(`${at} has an unknown field ${describe(extra[0])}; a test has name, input and output`);
    if (typeof input !== 'string') throw new InvalidInputError(`${at}.input must be text`);
    if (typeof output !== 'string') throw new InvalidInputError(`${at}.output must be text`);
    if (name !== undefined && typeof name !== 'string') throw new InvalidInputError(`${at}.name must be text`);
    return { name: name ?? String(index + 1), input: packText(input), output: packText(output) };
  });
}

/** `checker`: exact, tokens, float:<error> or program (with checker_source_name and checker_source_str). */
function parseChecker(submission: Submission): Checker {
  const value = optionalText(submission, 'checker').trim();
  const sourceName = optionalText(submission, 'checker_source_name');
  const source = optionalText(submission, 'checker_source_str');
  if (value !== 'program' && (sourceName || source)) {
    throw new InvalidFieldsError([{ field: 'checker', message: 'checker_source_name and checker_source_str are for checker=program' }]);
  }
  if (value === '' || value === 'exact') return { kind: 'exact' };
  if (value === 'tokens') return { kind: 'tokens' };
  if (value.startsWith('float:')) {
    const text = value.slice('float:'.length);
    const error = /^(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text) ? Number(text) : NaN;
    if (!floatErrorSchema.safeParse(error).success) throw new InvalidInputError(`checker float:<error> needs a tolerance above 0 and at most 1, such as float:1e-6, not ${describe(value)}`);
    return { kind: 'float', error };
  }
  if (value === 'program') {
    const errors: FieldError[] = [];
    if (!sourceName) errors.push({ field: 'checker_source_name', message: 'checker_source_name is required with checker=program (the extension says how to build it)' });
    if (!source) errors.push({ field: 'checker_source_str', message: 'checker_source_str is required with checker=program (the checker\'s source)' });
    if (errors.length > 0) throw new InvalidFieldsError(errors);
    return { kind: 'program', source_name: sourceName, source: packText(source) };
  }
  throw new InvalidInputError(`checker must be one of ${CHECKER_KINDS.map((kind) => (kind === 'float' ? 'float:<error>' : kind)).join(', ')}, not ${describe(value)}`);
}

/** Issue 17's judge: undefined when the submission gives none of its fields (the original's task). */
function parseJudge(submission: Submission, check: FieldCheck, texts: Partial<Record<(typeof TEXT_FIELDS)[number], string>>): JudgeSpec | undefined {
  const zip = check.take('tests_zip', () => upload(submission, 'tests_zip'));
  const inline = submission.fields.tests;
  const anyGiven = zip !== undefined || JUDGE_FIELDS.some((field) => given(submission.fields[field]));
  if (!anyGiven) return undefined;
  let tests: JudgeTest[] | undefined = [];
  if (zip && given(inline)) check.fail('tests', 'give tests or tests_zip, not both');
  else if (zip) tests = check.take('tests_zip', () => testsFromZip(zip));
  else if (given(inline)) tests = check.take('tests', () => testsFromJson(inline));
  const mode = check.take('test_mode', () => {
    const value = optionalText(submission, 'test_mode') || 'first_fail';
    if (!(TEST_MODES as readonly string[]).includes(value)) throw new InvalidInputError(`test_mode must be ${TEST_MODES.join(' or ')}, not ${describe(value)}`);
    return value as JudgeSpec['mode'];
  });
  const checker = check.take('checker', () => parseChecker(submission));
  if (tests && tests.length > 0) {
    for (const field of ['execute_input', 'execute_standard'] as const) {
      if (texts[field]) check.fail(field, `${field} is for a task without tests; with tests, each test carries its input and expected output`);
    }
  }
  return tests && mode && checker ? { tests, mode, checker } : undefined;
}

/** callback_url: an http(s) URL to a host the operator allows (`allowed`). */
function parseCallback(submission: Submission, allowed: CallbackAllowList | undefined): string | undefined {
  const value = optionalText(submission, 'callback_url').trim();
  if (!value) return undefined;
  const url = checkCallbackUrl(value);
  const refusal = allowed ? allowed.refusal(url) : 'callbacks are off on this gateway';
  if (refusal) throw new InvalidInputError(refusal);
  return value;
}

/** The field a task rule's message is about: it starts with the field's name, else it is the task's. */
function fieldOf(message: string): string {
  const named = SUBMISSION_FIELDS.find((field) => message.startsWith(`${field} `) || message.startsWith(`${field}:`));
  return named ?? (/\btests?\b/.test(message) ? 'tests' : 'task');
}

export interface SubmissionOptions {
  /** The cluster's task size limit, bytes. */
  taskMaxSize: number;
  /** The hosts callbacks may go to (--task-callback-allow); undefined or empty: none. */
  callbacks?: CallbackAllowList;
}

/**
 * The TaskInput of a submission, checked as every edge checks a task (task/schema.ts checkTaskInput).
 * Throws InvalidFieldsError naming every bad field (the task's own rules, checked once the fields are
 * fine, name the first they find), or TooLargeError when the packed task is over `taskMaxSize` bytes.
 */
export function parseSubmission(submission: Submission, options: SubmissionOptions): TaskInput {
  const check = new FieldCheck();
  if (submission.kind === 'json') {
    for (const key of Object.keys(submission.fields).filter((key) => !SUBMISSION_FIELDS.includes(key))) {
      check.fail(key, `unknown field ${describe(key)}; the fields are ${SUBMISSION_FIELDS.join(', ')}`);
    }
  }
  const ints: Partial<Record<(typeof INT_FIELDS)[number], number>> = {};
  for (const name of INT_FIELDS) {
    ints[name] = check.take(name, () => {
      const value = submission.fields[name];
      if (!given(value)) throw new InvalidInputError(`${name} is required`);
      return parseCount(value, name);
    });
  }
  const texts: Partial<Record<(typeof TEXT_FIELDS)[number], string>> = {};
  for (const name of TEXT_FIELDS) texts[name] = check.take(name, () => text(submission, name, submission.kind === 'form' || !JSON_OPTIONAL_TEXT.has(name)));
  const source = check.take('compile_source', () => archive(submission, 'compile_source'));
  const data = check.take('execute_data', () => archive(submission, 'execute_data'));
  const compileLimits = limits(submission, 'compile', check);
  const executeLimits = limits(submission, 'execute', check);
  const network = given(submission.fields.network) ? check.take('network', () => parseFlag(submission.fields.network, 'network')) : undefined;
  const judge = parseJudge(submission, check, texts);
  const callback = check.take('callback_url', () => parseCallback(submission, options.callbacks));
  check.throwIfAny();

  const task: TaskInput = {
    user: ints.user!,
    compile: {
      source: source!,
      command: packText(texts.compile_command!),
      timeout: ints.compile_timeout!,
      ...(compileLimits ? { limits: compileLimits } : {}),
    },
    execute: {
      input: packText(texts.execute_input!),
      data: data!,
      command: packText(texts.execute_command!),
      timeout: ints.execute_timeout!,
      standard: packText(texts.execute_standard!),
      ...(executeLimits ? { limits: executeLimits } : {}),
    },
  };
  if (network !== undefined) task.network = network;
  if (judge) task.judge = judge;
  if (callback !== undefined) task.callback_url = callback;
  try {
    checkTaskInput(task, { maxTaskSize: options.taskMaxSize });
  } catch (error) {
    if (error instanceof InvalidInputError && !(error instanceof InvalidFieldsError) && !(error instanceof TooLargeError)) {
      throw new InvalidFieldsError([{ field: fieldOf(error.message), message: error.message }]);
    }
    throw error;
  }
  return task;
}

/** Search filters as the judicator's `search` takes them. */
export interface SearchQuery {
  id?: string;
  user?: number;
  start_time?: string;
  end_time?: string;
  old_to_new: boolean;
  limit: number;
  page: number;
}

/** GET /api/task/list's query: empty parameters are left out (an HTML form sends them empty). */
export function parseSearchQuery(query: Record<string, unknown>): SearchQuery {
  const given = (name: string): unknown => {
    const value = query[name];
    if (Array.isArray(value)) throw new InvalidInputError(`${name} is given more than once`);
    return value === '' ? undefined : value;
  };
  const result: SearchQuery = { old_to_new: parseFlag(given('old_to_new'), 'old_to_new'), limit: 0, page: 0 };
  const id = given('id');
  if (id !== undefined) result.id = parseId(id);
  const user = given('user');
  if (user !== undefined) result.user = parseCount(user, 'user');
  for (const name of ['start_time', 'end_time'] as const) {
    const value = given(name);
    if (value === undefined) continue;
    const ms = typeof value === 'string' ? parseTime(value) : undefined;
    if (ms === undefined) throw new InvalidInputError(`${name} must be an ISO-8601 time such as 2026-01-31T12:00:00Z, not ${describe(value)}`);
    result[name] = new Date(ms).toISOString();
  }
  const limit = given('limit');
  if (limit !== undefined) result.limit = parseCount(limit, 'limit');
  const page = given('page');
  if (page !== undefined) result.page = parseCount(page, 'page');
  return result;
}
