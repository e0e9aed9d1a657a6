// The store-independent export of a backup: tasks.jsonl (one task per line, every field of the Task as
// the TaskStore returns it) and executors.jsonl (one executor record per line). JSON has no bytes, so
// every binary value is written as {"$base64": "..."}, which no field of a task can be by itself: the
// export reads back into exactly the Task it was written from, whichever store it came from or goes to.
import fs from 'node:fs';
import readline from 'node:readline';
import { ID_PATTERN } from '../common/ids';
import type { ExecutorInfo, Task, TaskStatus } from '../task/types';
import { STATUS_NAMES } from '../task/types';
import type { TaskStore } from '../store/task-store';

export const TASKS_FILE = 'tasks.jsonl';
export const EXECUTORS_FILE = 'executors.jsonl';
/** How binary values are spelled in the export (recorded in the manifest, for other readers). */
export const BINARY_ENCODING = '{"$base64": "<standard base64>"}';
/** Tasks read from the store at once while exporting (each `get` is one round trip). */
export const EXPORT_CONCURRENCY = 8;

/** Counts of exported tasks, as the manifest records them and `--verify` recomputes them. */
export interface TaskCounts {
  tasks: number;
  done: number;
  /** By status name (Success, Pending, ...): readable in the manifest. */
  by_status: Record<string, number>;
  executors: number;
}

export function emptyCounts(): TaskCounts {
  return { tasks: 0, done: 0, by_status: {}, executors: 0 };
}

export function countTask(counts: TaskCounts, task: Pick<Task, 'status' | 'done'>): void {
  counts.tasks++;
  if (task.done) counts.done++;
  const name = STATUS_NAMES[task.status as TaskStatus] ?? `status ${task.status}`;
  counts.by_status[name] = (counts.by_status[name] ?? 0) + 1;
}

/** Bytes become {"$base64": ...}; arrays and plain objects are walked; everything else is kept. */
export function encodeBinary(value: unknown): unknown {
  if (value instanceof Uint8Array) return { $base64: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64') };
  if (Array.isArray(value)) return value.map(encodeBinary);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [key, field] of Object.entries(value)) if (field !== undefined) out[key] = encodeBinary(field);
    return out;
  }
  return value;
}

/** JSON.parse reviver undoing encodeBinary. */
function reviveBinary(_key: string, value: unknown): unknown {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    const keys = Object.keys(value);
    const encoded = (value as { $base64?: unknown }).$base64;
    if (keys.length === 1 && typeof encoded === 'string') return Buffer.from(encoded, 'base64');
  }
  return value;
}

export function taskLine(task: Task): string {
  return `${JSON.stringify(encodeBinary(task))}\n`;
}

/** Parses one line of tasks.jsonl; throws with the reason when it is not a task. */
export function parseTaskLine(line: string): Task {
  const task = JSON.parse(line, reviveBinary) as Task;
  if (task === null || typeof task !== 'object') throw new Error('not a JSON object');
  if (typeof task.id !== 'string' || !ID_PATTERN.test(task.id)) throw new Error(`"id" is not a task id: ${JSON.stringify(task.id)}`);
  if (!Number.isInteger(task.status) || !(task.status in STATUS_NAMES)) throw new Error(`task ${task.id}: "status" ${JSON.stringify(task.status)} is not a task status`);
  if (typeof task.done !== 'boolean') throw new Error(`task ${task.id}: "done" is not true or false`);
  if (!task.compile || !Buffer.isBuffer(task.compile.command) || !task.execute || !Buffer.isBuffer(task.execute.command)) {
    throw new Error(`task ${task.id}: its input (compile, execute) is missing or not in the export's binary encoding`);
  }
  if (task.result !== null && (typeof task.result !== 'object' || !Buffer.isBuffer(task.result.execute_output))) {
    throw new Error(`task ${task.id}: "result" is neither null nor a result`);
  }
  return task;
}

export function parseExecutorLine(line: string): ExecutorInfo {
  const executor = JSON.parse(line) as ExecutorInfo;
  if (executor === null || typeof executor !== 'object' || typeof executor.id !== 'string') throw new Error('not an executor record (no "id")');
  return executor;
}

/** Calls `onLine` for each non-empty line of a .jsonl file with its 1-based number. */
export async function forEachJsonLine(file: string, onLine: (line: string, number: number) => void): Promise<void> {
  const lines = readline.createInterface({ input: fs.createReadStream(file), crlfDelay: Infinity });
  let number = 0;
  for await (const line of lines) {
    number++;
    if (line.trim() === '') continue;
    onLine(line, number);
  }
}

/** Writes lines to a file through one descriptor, fsynced and renamed into place when done. */
class LineFile {
  private readonly fd: number;
  constructor(readonly file: string) {
    this.fd = fs.openSync(`${file}.partial`, 'w');
  }
  write(line: string): void {
    fs.writeSync(this.fd, line);
  }
  finish(): void {
    fs.fsyncSync(this.fd);
    fs.closeSync(this.fd);
    fs.renameSync(`${this.file}.partial`, this.file);
  }
  abandon(): void {
    try {
      fs.closeSync(this.fd);
    } catch {
      // already closed
    }
    fs.rmSync(`${this.file}.partial`, { force: true });
  }
}

/**
 * Exports every task of `store` (oldest first: search with limit 0 lists them all, then `get` reads each
 * whole, a few at a time) and every executor record. A task deleted between the listing and its read
 * (retention, on a live store) is left out. Returns the counts of what was written.
 */
export async function exportStore(
  store: TaskStore,
  files: { tasks: string; executors: string },
  onProgress: (done: number, total: number) => void = () => undefined,
): Promise<TaskCounts> {
  const counts = emptyCounts();
  const listing = await store.search({ limit: 0, page: 0, oldToNew: true });
  const ids = listing.tasks.map((t) => t.id);
  const out = new LineFile(files.tasks);
  try {
    onProgress(0, ids.length);
    for (let start = 0; start < ids.length; start += EXPORT_CONCURRENCY) {
      const batch = await Promise.all(ids.slice(start, start + EXPORT_CONCURRENCY).map((id) => store.get(id)));
      for (const task of batch) {
        if (!task) continue;
        out.write(taskLine(task));
        countTask(counts, task);
      }
      onProgress(Math.min(ids.length, start + EXPORT_CONCURRENCY), ids.length);
    }
    out.finish();
  } catch (error) {
    out.abandon();
    throw error;
  }
  const executors = new LineFile(files.executors);
  try {
    for (const executor of await store.listExecutors()) {
      executors.write(`${JSON.stringify(executor)}\n`);
      counts.executors++;
    }
    executors.finish();
  } catch (error) {
    executors.abandon();
    throw error;
  }
  return counts;
}
