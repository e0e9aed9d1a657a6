// The Add and Search forms' checks, the same rules the gateway applies (src/gateway/forms.ts and the
// task's own, src/task/), so a mistake is shown next to its field before anything is sent.
import { MAX_FILE_NAME_BYTES, MAX_INT } from '../../task/limits';

/** common/ids.ts ID_PATTERN, restated: that module needs node:crypto, which a browser does not have. */
export const ID_PATTERN = /^[a-f0-9]{24}$/;

/** The reason `value` is not a whole number in 0..2147483647, or undefined. */
export function countProblem(value: string, label: string): string | undefined {
  if (!/^\s*\+?\d{1,10}\s*$/.test(value) || Number(value) > MAX_INT) return `${label} must be a whole number from 0 to ${MAX_INT}.`;
  return undefined;
}

export function positiveProblem(value: string, label: string): string | undefined {
  if (value.trim() === '') return undefined;
  if (!/^\s*\+?\d{1,16}\s*$/.test(value) || Number(value) <= 0) return `${label} must be a positive whole number.`;
  return undefined;
}

/** The reason `name` is not a plain file name, or undefined. */
export function fileNameProblem(name: string, label: string): string | undefined {
  if (name === '.' || name === '..') return `${label} cannot be "${name}".`;
  if (/[/\\]/.test(name)) return `${label} must be a plain file name, without "/" or "\\".`;
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(name)) return `${label} cannot contain control characters.`;
  if (new TextEncoder().encode(name).length > MAX_FILE_NAME_BYTES) return `${label} is longer than ${MAX_FILE_NAME_BYTES} bytes.`;
  return undefined;
}

/** When a task was added: the time its id carries (ms since the epoch). */
export function idTime(id: string): number {
  return parseInt(id.slice(0, 8), 16) * 1000;
}

export function idProblem(value: string): string | undefined {
  return ID_PATTERN.test(value) ? undefined : 'A task id is 24 characters 0-9 and a-f.';
}
