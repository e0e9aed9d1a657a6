// The binary values of the etcd store: a task's input fields, and its result, each packed into one value
// (a version byte, the field count and lengths, then the bytes), so a task's large fields take one key
// each, and JSON never carries (and base64-inflates) megabytes of zip archives.
import { Kv2Error } from '../../common/errors';
import type { Checker, JudgeSpec, StepReport, TaskInput, TaskResult, TaskVerdict, TestReport } from '../../task/types';

const FORMAT = 1;

/** A stored value that cannot be read back: a bug or a damaged store, never the user's doing. */
export class CorruptValueError extends Kv2Error {}

export function packBuffers(parts: readonly Buffer[]): Buffer {
  const header = Buffer.alloc(5 + 4 * parts.length);
  header.writeUInt8(FORMAT, 0);
  header.writeUInt32BE(parts.length, 1);
  parts.forEach((part, i) => header.writeUInt32BE(part.length, 5 + 4 * i));
  return Buffer.concat([header, ...parts]);
}

export function unpackBuffers(value: Buffer, what: string): Buffer[] {
  if (value.length < 5 || value.readUInt8(0) !== FORMAT) throw new CorruptValueError(`stored ${what} has an unknown format`);
  const count = value.readUInt32BE(1);
  let offset = 5 + 4 * count;
  if (offset > value.length) throw new CorruptValueError(`stored ${what} is truncated`);
  const parts: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const length = value.readUInt32BE(5 + 4 * i);
    if (offset + length > value.length) throw new CorruptValueError(`stored ${what} is truncated`);
    // A copy: a slice would keep the whole response buffer alive for as long as the task lives.
    parts.push(Buffer.from(value.subarray(offset, offset + length)));
    offset += length;
  }
  return parts;
}

export type InputFields = Pick<TaskInput, 'compile' | 'execute' | 'judge'>;

/** The input fields every task has, in this order; a task's judge (issue 17) follows them when it has one. */
const INPUT_FIELDS = 6;

/** What a judge keeps beside its bytes: the test names, the mode, the checker without its source. */
interface JudgeHead {
  mode: JudgeSpec['mode'];
  checker: Exclude<Checker, { kind: 'program' }> | { kind: 'program'; source_name: string };
  names: string[];
}

/**
 * The large fields of a task's input, in one value: the original's six, then (issue 17) when the task has
 * a judge, its head (JSON), the checker's source (empty when it has none) and each test's input and output.
 * A value of six fields is a task without a judge, as every value stored before issue 17.
 */
export function packInput(task: InputFields): Buffer {
  const parts = [task.compile.source, task.compile.command, task.execute.input, task.execute.data, task.execute.command, task.execute.standard];
  const judge = task.judge;
  if (judge) {
    const checker = judge.checker;
    const head: JudgeHead = {
      mode: judge.mode,
      checker: checker.kind === 'program' ? { kind: 'program', source_name: checker.source_name } : checker,
      names: judge.tests.map((test) => test.name),
    };
    parts.push(Buffer.from(JSON.stringify(head)), checker.kind === 'program' ? checker.source : Buffer.alloc(0));
    for (const test of judge.tests) parts.push(test.input, test.output);
  }
  return packBuffers(parts);
}

export interface InputBytes {
  source: Buffer;
  compileCommand: Buffer;
  input: Buffer;
  data: Buffer;
  executeCommand: Buffer;
  standard: Buffer;
  judge?: JudgeSpec;
}

export function unpackInput(value: Buffer): InputBytes {
  const parts = unpackBuffers(value, 'task input');
  const [source, compileCommand, input, data, executeCommand, standard] = parts;
  if (!standard) throw new CorruptValueError('stored task input has too few fields');
  const bytes: InputBytes = { source: source!, compileCommand: compileCommand!, input: input!, data: data!, executeCommand: executeCommand!, standard };
  if (parts.length > INPUT_FIELDS) bytes.judge = unpackJudge(parts.slice(INPUT_FIELDS));
  return bytes;
}

function unpackJudge([headJson, checkerSource, ...tests]: Buffer[]): JudgeSpec {
  let head: JudgeHead;
  try {
    head = JSON.parse(headJson!.toString('utf8')) as JudgeHead;
  } catch (error) {
    throw new CorruptValueError('stored task input has an unreadable judge', { cause: error });
  }
  if (!checkerSource || !Array.isArray(head.names) || tests.length !== 2 * head.names.length) {
    throw new CorruptValueError('stored task input has a judge whose tests do not match their names');
  }
  const checker: Checker = head.checker.kind === 'program' ? { ...head.checker, source: checkerSource } : head.checker;
  return { mode: head.mode, checker, tests: head.names.map((name, i) => ({ name, input: tests[2 * i]!, output: tests[2 * i + 1]! })) };
}

/** The small, structured part of a result, stored beside its texts. */
interface ResultExtras {
  accepted?: boolean | null;
  compile?: StepReport | null;
  execute?: StepReport | null;
  verdict?: TaskVerdict | null;
  tests?: TestReport[];
}

export function packResult(result: TaskResult): Buffer {
  const extras: ResultExtras = {};
  if (result.accepted !== undefined) extras.accepted = result.accepted;
  if (result.compile !== undefined) extras.compile = result.compile;
  if (result.execute !== undefined) extras.execute = result.execute;
  if (result.verdict !== undefined) extras.verdict = result.verdict;
  if (result.tests !== undefined) extras.tests = result.tests;
  return packBuffers([
    result.compile_output,
    result.compile_error,
    result.execute_output,
    result.execute_error,
    Buffer.from(JSON.stringify(extras)),
  ]);
}

export function unpackResult(value: Buffer): TaskResult {
  const [compileOutput, compileError, executeOutput, executeError, extrasJson] = unpackBuffers(value, 'task result');
  if (!extrasJson) throw new CorruptValueError('stored task result has too few fields');
  let extras: ResultExtras;
  try {
    extras = JSON.parse(extrasJson.toString('utf8')) as ResultExtras;
  } catch (error) {
    throw new CorruptValueError('stored task result has unreadable extras', { cause: error });
  }
  return {
    compile_output: compileOutput!,
    compile_error: compileError!,
    execute_output: executeOutput!,
    execute_error: executeError!,
    ...extras,
  };
}
