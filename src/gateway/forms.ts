// What a client submits (the original's form fields, as a multipart or urlencoded form or as a JSON
// object) turned into a TaskInput, or refused with an InvalidFieldsError that names every bad field and
// says why (issue 17: all of them at once, not one a time), or a TooLargeError (the task's own rules are
// task/schema.ts's). Also the validation of the query parameters of the other routes.
import { InvalidFieldsError, InvalidInputError, TooLargeError, type FieldError } from '../common/errors';
import { ID_PATTERN } from '../common/ids';
import type { CallbackAllowList } from '../task/callback-allow';
import { listQuery, parseQuery } from './api/queries';
import { packText } from '../task/codec';
import { z } from 'zod';
import { MAX_FLOAT_CHECKER_ERROR, MAX_INT, MAX_JUDGE_TESTS } from '../task/limits';
import { checkCallbackUrl, checkTaskInput, countSchema, floatErrorSchema, stepLimitsSchema, testModeSchema } from '../task/schema';
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

/** What each field is, for the API's documentation (docs/api.md, GET /api/openapi.json). */
const FIELD_HELP: Record<string, string> = {
  user: 'The user the task belongs to (any whole number; it groups tasks).',
  compile_timeout: 'Seconds the compile step may run (0: no limit).',
  execute_timeout: 'Seconds the execute step (each test) may run (0: no limit).',
  compile_command: 'The compile command, run by bash in the task directory (empty: no compile step).',
  execute_input: 'Standard input of the execute step (a task without tests).',
  execute_command: 'The execute command, run by bash in the task directory.',
  execute_standard: 'The expected output (a task without tests); trailing spaces and empty lines at the end do not count.',
  compile_source: 'A zip unpacked at the top of the task directory (a file in a form, base64 in JSON).',
  execute_data: 'A zip unpacked into data/ (a file in a form, base64 in JSON).',
  tests_zip: 'Issue 17: the tests as a zip of <name>.in / <name>.out (or .ans) pairs (a file in a form, base64 in JSON).',
  compile_source_name: 'One source file instead of a zip: its name (with compile_source_str).',
  compile_source_str: 'One source file instead of a zip: its text (with compile_source_name).',
  execute_data_name: 'One data file instead of a zip: its name (with execute_data_str).',
  execute_data_str: 'One data file instead of a zip: its text (with execute_data_name).',
  tests: 'Issue 17: a JSON array of {"name"?, "input", "output"} (a JSON string in a form); names default to 1..N.',
  test_mode: 'Issue 17: first_fail (default: stop at the first test that fails) or all.',
  checker: 'Issue 17: exact (default), tokens (whitespace-insensitive), float:<error> (absolute or relative tolerance), or program.',
  checker_source_name: 'Issue 17: the checker program\'s file name; its extension says how it is built (checker=program).',
  checker_source_str: "Issue 17: the checker program's source, testlib's convention: exit 0 OK, 1 wrong answer, 2 presentation error, 3 fail.",
  network: 'The task asks for network access in its sandbox (1, true, 0 or false; the executor may refuse).',
  callback_url: 'Issue 17: where the finished task is POSTed (signed); only to hosts the gateway allows (--task-callback-allow).',
};
const LIMIT_HELP: Record<keyof StepLimits, string> = {
  cpu_time: 'CPU seconds',
  memory: 'bytes of memory',
  processes: 'processes at once',
  file_size: 'largest file written, bytes',
  output: 'bytes of output kept per stream',
  time_ms: 'issue 17: CPU time in milliseconds (over it: time limit)',
  wall_ms: 'issue 17: wall time in milliseconds',
  memory_kb: 'issue 17: peak resident memory in KiB (over it: memory limit)',
  stack_kb: 'issue 17: stack size in KiB',
};

/**
 * The submission's fields as zod schemas, for the API's documentation: one per field of SUBMISSION_FIELDS
 * (the list parseSubmission walks), their values bounded by the schemas parseSubmission checks them with
 * (countSchema, stepLimitsSchema, testModeSchema, floatErrorSchema's bound). A form sends every value as
 * text (zips as files); JSON sends numbers as numbers and zips as base64.
 */
export function submissionSchemas(): { form: z.ZodObject; json: z.ZodObject } {
  const form: Record<string, z.ZodType> = {};
  const json: Record<string, z.ZodType> = {};
  const help = (field: string, schema: z.ZodType) => schema.meta({ description: FIELD_HELP[field] ?? field });
  const digits = z.string().regex(/^\s*\+?\d{1,16}\s*$/);
  for (const field of INT_FIELDS) {
    form[field] = help(field, digits);
    json[field] = help(field, countSchema);
  }
  for (const field of TEXT_FIELDS) {
    const required = field === 'execute_command';
    form[field] = help(field, z.string());
    json[field] = help(field, required || !JSON_OPTIONAL_TEXT.has(field) ? z.string() : z.string().optional());
  }
  for (const field of ARCHIVE_FIELDS) {
    form[field] = help(field, z.string().meta({ format: 'binary' }).optional());
    json[field] = help(field, z.string().meta({ contentEncoding: 'base64' }).optional());
  }
  for (const field of [...PAIR_FIELDS, 'checker_source_name', 'checker_source_str', 'callback_url'] as const) {
    form[field] = help(field, z.string().optional());
    json[field] = help(field, z.string().optional());
  }
  for (const step of ['compile', 'execute'] as const) {
    for (const [name, key] of Object.entries(LIMIT_FIELDS)) {
      const field = `${step}_${name}`;
      const bounded = (stepLimitsSchema.shape[key] as z.ZodOptional<z.ZodNumber>).unwrap();
      const description = `The ${step} step's limit: ${LIMIT_HELP[key]} (default: the executor's).`;
      form[field] = digits.optional().meta({ description });
      json[field] = bounded.optional().meta({ description });
    }
  }
  const checker = z.string().regex(new RegExp(`^(exact|tokens|program|float:[0-9.eE+-]+)$`)).meta({ description: `${FIELD_HELP.checker} float's error is above 0 and at most ${MAX_FLOAT_CHECKER_ERROR}.` });
  const test = z.object({ name: z.string().optional(), input: z.string(), output: z.string() }).strict();
  form.tests = help('tests', z.string().optional());
  json.tests = help('tests', z.array(test).min(1).max(MAX_JUDGE_TESTS).optional());
  form.test_mode = json.test_mode = help('test_mode', testModeSchema.optional());
  form.checker = json.checker = checker.optional();
  form.network = help('network', z.string().regex(/^(1|0|true|false)$/i).optional());
  json.network = help('network', z.union([z.boolean(), z.literal(0), z.literal(1), z.string().regex(/^(1|0|true|false)$/i)]).optional());
  const missing = SUBMISSION_FIELDS.filter((field) => !(field in json));
  if (missing.length) throw new Error(`bug: the submission schema leaves out ${missing.join(', ')}`);
  return { form: z.object(form), json: z.object(json).strict() };
}

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

/** GET /api/task/list's query (api/queries.ts listQuery), with the original's defaults. */
export function parseSearchQuery(query: Record<string, unknown>): SearchQuery {
  const given = parseQuery(listQuery, query, { single: true });
  return { ...given, old_to_new: given.old_to_new ?? false, limit: given.limit ?? 0, page: given.page ?? 0 };
}
