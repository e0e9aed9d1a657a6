// Tasks as the gateway shows them: the original's JSON (task/present.ts, the shape callbacks carry too),
// and the single fields a client downloads (`&file=`).
import { NotFoundError, InvalidInputError } from '../common/errors';
import { unpackBytes } from '../task/codec';
import type { Task } from '../task/types';

export { presentBrief, presentTask, type PresentedBrief, type PresentedJudge, type PresentedTask } from '../task/present';

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
