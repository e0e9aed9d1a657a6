// Text fields of a task are stored zlib-compressed (the original's format); this is the one place that
// packs and unpacks them, measures a task, and truncates long text for display.
import zlib from 'node:zlib';
import { TRUNCATE_AT } from './limits';
import type { TaskInput, TaskResult } from './types';

/** Packs text as stored: CRLF turned into LF (as the original's gateway did), UTF-8, zlib. */
export function packText(text: string): Buffer {
  return zlib.deflateSync(Buffer.from(text.replace(/\r\n/g, '\n'), 'utf8'));
}

/** Packs bytes as stored (program output, which need not be UTF-8). */
export function packBytes(bytes: Buffer): Buffer {
  return zlib.deflateSync(bytes);
}

/** The raw bytes of a stored text field; an empty field is empty. Throws on data that is not zlib. */
export function unpackBytes(packed: Buffer | undefined | null): Buffer {
  if (!packed || packed.length === 0) return Buffer.alloc(0);
  return zlib.inflateSync(packed);
}

/**
 * The text of a stored field for display. Bytes that are not UTF-8 (a program printing binary) become
 * U+FFFD instead of an error: the original answered HTTP 500 there.
 */
export function unpackText(packed: Buffer | undefined | null): string {
  return unpackBytes(packed).toString('utf8');
}

/** The original's display truncation: more than `limit` characters become the first `limit` + "...". */
export function truncate(text: string, limit: number = TRUNCATE_AT): string {
  const chars = Array.from(text);
  return chars.length > limit ? `${chars.slice(0, limit).join('')}...` : text;
}

/** Bytes the store spends on each test besides its input and output (its name, framing). */
const PER_TEST_BYTES = 96;

/** Bytes a task's input takes in the store (what the size limit counts), plus a margin for its fields. */
export function inputSize(task: TaskInput): number {
  let judge = 0;
  if (task.judge) {
    for (const test of task.judge.tests) judge += test.input.length + test.output.length + PER_TEST_BYTES;
    if (task.judge.checker.kind === 'program') judge += task.judge.checker.source.length + task.judge.checker.source_name.length;
  }
  return (
    task.compile.source.length +
    task.compile.command.length +
    task.execute.input.length +
    task.execute.data.length +
    task.execute.command.length +
    task.execute.standard.length +
    judge +
    (task.callback_url?.length ?? 0) +
    1024
  );
}

export function resultSize(result: TaskResult | null | undefined): number {
  if (!result) return 0;
  // The tests' reports are small JSON: counted as stored.
  const tests = result.tests?.length ? Buffer.byteLength(JSON.stringify(result.tests)) : 0;
  return result.compile_output.length + result.compile_error.length + result.execute_output.length + result.execute_error.length + tests + 1024;
}
