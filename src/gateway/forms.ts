// What a client submits (the original's form fields, as a multipart or urlencoded form or as a JSON
// object) turned into a TaskInput, or refused with an InvalidInputError / TooLargeError that says which
// field is wrong and why (the task's own rules are task/schema.ts's). Also the validation of the query
// parameters of the other routes.
import { InvalidInputError } from '../common/errors';
import { ID_PATTERN } from '../common/ids';
import { parseTime } from '../common/time';
import { packText } from '../task/codec';
import { MAX_INT } from '../task/limits';
import { checkTaskInput, stepLimitsSchema } from '../task/schema';
import type { StepLimits, TaskInput } from '../task/types';
import { checkFileName, zipOneFile } from '../task/zip';

/** A submission as it arrived: text fields, uploaded files, and whether it came as JSON. */
export interface Submission {
  fields: Record<string, unknown>;
  files: Record<string, Buffer>;
  kind: 'form' | 'json';
}

const TEXT_FIELDS = ['compile_command', 'execute_input', 'execute_command', 'execute_standard'] as const;
const INT_FIELDS = ['user', 'compile_timeout', 'execute_timeout'] as const;
const LIMIT_NAMES = ['cpu_time', 'memory', 'processes', 'file_size', 'output'] as const;
const LIMIT_FIELDS = (['compile', 'execute'] as const).flatMap((step) => LIMIT_NAMES.map((name) => `${step}_${name}`));
const FILE_FIELDS = ['compile_source', 'execute_data'] as const;
const PAIR_FIELDS = ['compile_source_name', 'compile_source_str', 'execute_data_name', 'execute_data_str'] as const;

/** Every field a submission may carry (JSON bodies are checked against it to catch typos). */
export const SUBMISSION_FIELDS: readonly string[] = [...INT_FIELDS, ...TEXT_FIELDS, ...FILE_FIELDS, ...PAIR_FIELDS, ...LIMIT_FIELDS, 'network'];

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
  const value = submission.fields[name];
  if (value === undefined || value === null) return '';
  if (typeof value !== 'string') throw new InvalidInputError(`${name} must be text, not ${describe(value)}`);
  return value;
}

/** An uploaded zip (a form file, or base64 in JSON), else the zip of the name+text pair, else empty. */
function archive(submission: Submission, field: 'compile_source' | 'execute_data'): Buffer {
  let uploaded = submission.files[field];
  const inline = submission.fields[field];
  if (!uploaded && inline !== undefined && inline !== null && inline !== '') {
    if (typeof inline !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(inline.replace(/\s+/g, ''))) {
      throw new InvalidInputError(`${field} must be a zip archive in base64`);
    }
    uploaded = Buffer.from(inline, 'base64');
  }
  // Checked with the whole task (checkTaskInput), as every edge checks it.
  if (uploaded && uploaded.length > 0) return uploaded;
  const name = optionalText(submission, `${field}_name`);
  const str = optionalText(submission, `${field}_str`);
  if (!name && !str) return Buffer.alloc(0);
  if (!name || !str) {
    throw new InvalidInputError(`${field}_name and ${field}_str go together: give both (a file name and its text) or neither`);
  }
  return zipOneFile(checkFileName(name, `${field}_name`), str);
}

function limits(submission: Submission, step: 'compile' | 'execute'): StepLimits | undefined {
  const found: Record<string, number> = {};
  for (const name of LIMIT_NAMES) {
    const field = `${step}_${name}`;
    const value = submission.fields[field];
    if (value === undefined || value === null || value === '') continue;
    const number = typeof value === 'number' ? value : typeof value === 'string' && /^\s*\+?\d{1,16}\s*$/.test(value) ? Number(value) : NaN;
    if (!Number.isSafeInteger(number) || number <= 0) {
      throw new InvalidInputError(`${field} must be a positive whole number, not ${describe(value)}`);
    }
    found[name] = number;
  }
  if (Object.keys(found).length === 0) return undefined;
  const checked = stepLimitsSchema.safeParse(found);
  if (!checked.success) {
    const issue = checked.error.issues[0]!;
    throw new InvalidInputError(`${step}_${String(issue.path[0])} ${issue.message.toLowerCase()}`);
  }
  return checked.data;
}

/**
 * The TaskInput of a submission, checked as every edge checks a task (task/schema.ts checkTaskInput).
 * Throws InvalidInputError naming the first bad field, or TooLargeError when the packed task is over
 * `taskMaxSize` bytes.
 */
export function parseSubmission(submission: Submission, options: { taskMaxSize: number }): TaskInput {
  if (submission.kind === 'json') {
    const unknown = Object.keys(submission.fields).filter((key) => !SUBMISSION_FIELDS.includes(key));
    if (unknown.length) throw new InvalidInputError(`unknown field ${describe(unknown[0])}; the fields are ${SUBMISSION_FIELDS.join(', ')}`);
  }
  const ints = Object.fromEntries(
    INT_FIELDS.map((name) => {
      const value = submission.fields[name];
      if (value === undefined || value === null || value === '') throw new InvalidInputError(`${name} is required`);
      return [name, parseCount(value, name)];
    }),
  ) as Record<(typeof INT_FIELDS)[number], number>;
  const texts = Object.fromEntries(
    TEXT_FIELDS.map((name) => [name, text(submission, name, submission.kind === 'form' || !JSON_OPTIONAL_TEXT.has(name))]),
  ) as Record<(typeof TEXT_FIELDS)[number], string>;
  const compileLimits = limits(submission, 'compile');
  const executeLimits = limits(submission, 'execute');
  const network = submission.fields.network;

  const task: TaskInput = {
    user: ints.user,
    compile: {
      source: archive(submission, 'compile_source'),
      command: packText(texts.compile_command),
      timeout: ints.compile_timeout,
      ...(compileLimits ? { limits: compileLimits } : {}),
    },
    execute: {
      input: packText(texts.execute_input),
      data: archive(submission, 'execute_data'),
      command: packText(texts.execute_command),
      timeout: ints.execute_timeout,
      standard: packText(texts.execute_standard),
      ...(executeLimits ? { limits: executeLimits } : {}),
    },
  };
  if (network !== undefined && network !== null && network !== '') task.network = parseFlag(network, 'network');
  checkTaskInput(task, { maxTaskSize: options.taskMaxSize });
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
