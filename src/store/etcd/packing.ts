// The binary values of the etcd store: a task's input fields, and its result, each packed into one value
// (a version byte, the field count and lengths, then the bytes), so a task's large fields take one key
// each, and JSON never carries (and base64-inflates) megabytes of zip archives.
import { Kv2Error } from '../../common/errors';
import type { StepReport, TaskInput, TaskResult } from '../../task/types';

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

export type InputFields = Pick<TaskInput, 'compile' | 'execute'>;

/** The large fields of a task's input, in one value. */
export function packInput(task: InputFields): Buffer {
  return packBuffers([
    task.compile.source,
    task.compile.command,
    task.execute.input,
    task.execute.data,
    task.execute.command,
    task.execute.standard,
  ]);
}

export interface InputBytes {
  source: Buffer;
  compileCommand: Buffer;
  input: Buffer;
  data: Buffer;
  executeCommand: Buffer;
  standard: Buffer;
}

export function unpackInput(value: Buffer): InputBytes {
  const [source, compileCommand, input, data, executeCommand, standard] = unpackBuffers(value, 'task input');
  if (!standard) throw new CorruptValueError('stored task input has too few fields');
  return { source: source!, compileCommand: compileCommand!, input: input!, data: data!, executeCommand: executeCommand!, standard };
}

/** The small, structured part of a result, stored beside its texts. */
interface ResultExtras {
  accepted?: boolean | null;
  compile?: StepReport | null;
  execute?: StepReport | null;
}

export function packResult(result: TaskResult): Buffer {
  const extras: ResultExtras = {};
  if (result.accepted !== undefined) extras.accepted = result.accepted;
  if (result.compile !== undefined) extras.compile = result.compile;
  if (result.execute !== undefined) extras.execute = result.execute;
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
