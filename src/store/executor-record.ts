// An executor's record as both store backends keep it: the fields of its heartbeat it stores, and the
// ExecutorInfo the `executors` call shows of it (never its process key).
import { definedFields } from '../common/defined-fields';
import { isoTime } from '../common/time';
import type { ExecutorInfo } from '../task/types';
import type { ExecutorHeartbeat } from './task-store';

/** What a record keeps of the executor's last heartbeat; `vacant` is missing from records older than it. */
export type HeartbeatRecord = Omit<ExecutorHeartbeat, 'vacant'> & { vacant?: number };

/** The fields of a heartbeat its record stores, in the order they are written. */
const HEARTBEAT_FIELDS = ['vacant', 'slots', 'host', 'started', 'key', 'languages', 'sandbox'] as const;

/** The heartbeat's fields that hold a value, as the record stores them. */
export function heartbeatRecord(info: ExecutorHeartbeat): HeartbeatRecord {
  return definedFields(info, HEARTBEAT_FIELDS);
}

/**
 * What a stored record shows of executor `name` (the original's `hostname` field held the name too): each
 * field only when it has the type it should (a record is read back from the database, not trusted).
 */
export function executorInfo(name: string, reportMs: number, record: HeartbeatRecord): ExecutorInfo {
  const info: ExecutorInfo = { id: name, hostname: name, report_time: isoTime(reportMs) };
  if (typeof record.host === 'string') info.host = record.host;
  if (typeof record.slots === 'number') info.slots = record.slots;
  if (typeof record.vacant === 'number') info.vacant = record.vacant;
  if (typeof record.started === 'string') info.started = record.started;
  if (record.languages) info.languages = record.languages;
  if (record.sandbox) info.sandbox = record.sandbox;
  return info;
}
