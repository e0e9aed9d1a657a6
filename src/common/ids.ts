// Task ids: 24 hex characters, a valid MongoDB ObjectId, and ordered by creation time to the millisecond
// (seconds, then milliseconds, then a per-process random part and a counter). Sorting ids sorts tasks by
// add time with ties broken, and a time range is an id range.
import { randomBytes } from 'node:crypto';

export const ID_PATTERN = /^[a-f0-9]{24}$/;

const processPart = randomBytes(3).toString('hex');
let counter = randomBytes(3).readUIntBE(0, 3);
let lastMs = 0;

export function newId(now: number = Date.now()): string {
  // A clock that steps back must not produce ids that sort before ones already handed out.
  const ms = Math.max(now, lastMs);
  lastMs = ms;
  counter = (counter + 1) & 0xffffff;
  return idPrefix(ms) + processPart + counter.toString(16).padStart(6, '0');
}

/** The first 12 hex digits of every id created at `ms`: seconds (8) and milliseconds (4). */
export function idPrefix(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  return seconds.toString(16).padStart(8, '0') + (ms % 1000).toString(16).padStart(4, '0');
}

/** The smallest id created at or after `ms`. */
export function lowestIdAt(ms: number): string {
  return idPrefix(Math.max(0, ms)) + '000000000000';
}

/** The largest id created at or before `ms`. */
export function highestIdAt(ms: number): string {
  return idPrefix(Math.max(0, ms)) + 'ffffffffffff';
}

/** The creation time (ms since the epoch) an id carries. */
export function idTime(id: string): number {
  const seconds = parseInt(id.slice(0, 8), 16);
  const ms = parseInt(id.slice(8, 12), 16);
  return seconds * 1000 + (ms < 1000 ? ms : 0);
}

export function isId(value: unknown): value is string {
  return typeof value === 'string' && ID_PATTERN.test(value);
}
