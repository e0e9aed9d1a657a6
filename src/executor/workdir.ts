// A task's directory under data/main/<id>/, laid out as the original's: the work dir `source/` holds the
// unzipped compile sources, `data/` (the unzipped execute data), compile.sh, execute.in and execute.sh;
// the executor's own records (step process groups) sit beside it, out of the task's reach. Also the
// removal of task dirs, which never follows a link a task planted.
import fs from 'node:fs';
import path from 'node:path';
import { InvalidInputError } from '../common/errors';
import { unpackBytes } from '../task/codec';
import type { TaskInput } from '../task/types';
import { killRecordedGroup } from './process-group';
import { unpackZip, type ZipLimits } from '../task/zip';

export type StepName = 'compile' | 'execute';

export interface TaskPaths {
  /** data/main/<id>: owned by the executor. */
  taskDir: string;
  /** The task's work dir (cwd of both steps; the original's `source/`). */
  workDir: string;
  compileScript: string;
  executeInput: string;
  executeScript: string;
  /** Where a step's process group is recorded. */
  groupRecord(step: StepName): string;
}

/** A task whose files cannot be laid out (bad zip, bad zlib): it fails with this message. */
export class TaskPreparationError extends InvalidInputError {}

export function taskPaths(root: string, id: string): TaskPaths {
  const taskDir = path.join(root, id);
  const workDir = path.join(taskDir, 'source');
  return {
    taskDir,
    workDir,
    compileScript: path.join(workDir, 'compile.sh'),
    executeInput: path.join(workDir, 'execute.in'),
    executeScript: path.join(workDir, 'execute.sh'),
    groupRecord: (step) => path.join(taskDir, `${step}.pgid`),
  };
}

function unpackField(packed: Buffer, what: string): Buffer {
  try {
    return unpackBytes(packed);
  } catch {
    throw new TaskPreparationError(`the ${what} is not valid zlib data`);
  }
}

/** Writes a generated file, replacing a same-named file from a zip (never writing through anything else). */
function writeGenerated(file: string, content: Buffer): void {
  try {
    const stat = fs.lstatSync(file);
    if (stat.isDirectory()) throw new TaskPreparationError(`the zip holds a directory named ${path.basename(file)}, which kv2 must write as a file`);
    fs.unlinkSync(file);
  } catch (error) {
    if (error instanceof TaskPreparationError) throw error;
  }
  const fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o644);
  try {
    fs.writeSync(fd, content);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Lays out the task dir (which must not exist yet). Throws TaskPreparationError (or UnsafeZipError) with
 * a message for the task's compile_error when the task's files are unusable.
 */
export function prepareTaskDir(root: string, id: string, task: TaskInput, limits: ZipLimits): TaskPaths {
  const paths = taskPaths(root, id);
  fs.mkdirSync(paths.taskDir, { mode: 0o700 });
  fs.mkdirSync(paths.workDir, { mode: 0o700 });
  fs.mkdirSync(path.join(paths.workDir, 'data'), { mode: 0o755 });
  const budget = { bytes: 0, files: 0 };
  if (task.compile.source.length > 0) {
    try {
      unpackZip(task.compile.source, paths.workDir, limits, budget);
    } catch (error) {
      throw new TaskPreparationError(`compile source zip refused: ${(error as Error).message}`);
    }
  }
  if (task.execute.data.length > 0) {
    try {
      unpackZip(task.execute.data, path.join(paths.workDir, 'data'), limits, budget);
    } catch (error) {
      throw new TaskPreparationError(`execute data zip refused: ${(error as Error).message}`);
    }
  }
  writeGenerated(paths.compileScript, unpackField(task.compile.command, 'compile command'));
  writeGenerated(paths.executeInput, unpackField(task.execute.input, 'execute input'));
  writeGenerated(paths.executeScript, unpackField(task.execute.command, 'execute command'));
  return paths;
}

/**
 * Removes `target` and everything under it without following symbolic links: a link is removed as a
 * link, whatever it points to. Directories a task made unreadable are opened up first.
 */
export function removeTree(target: string): void {
  let stat: fs.Stats;
  try {
    stat = fs.lstatSync(target);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  if (!stat.isDirectory()) {
    fs.unlinkSync(target);
    return;
  }
  let names: string[];
  try {
    names = fs.readdirSync(target);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EACCES' && (error as NodeJS.ErrnoException).code !== 'EPERM') throw error;
    fs.chmodSync(target, 0o700);
    names = fs.readdirSync(target);
  }
  if (names.length > 0 && (stat.mode & 0o300) !== 0o300) fs.chmodSync(target, 0o700);
  for (const name of names) removeTree(path.join(target, name));
  fs.rmdirSync(target);
}

/**
 * Empties data/main at executor start: the tasks a previous run held are the judicators' again, and
 * whatever their steps left running is killed first (from the recorded process groups). Its mode is
 * 0700, or 0711 when tasks run as other users (they reach their own dir by path, and list nothing).
 * Returns how many task dirs were removed and how many processes killed.
 */
export async function clearDataDir(dataDir: string, mode = 0o700): Promise<{ dirs: number; killed: number }> {
  fs.mkdirSync(dataDir, { recursive: true, mode });
  fs.chmodSync(dataDir, mode);
  let dirs = 0;
  let killed = 0;
  for (const name of fs.readdirSync(dataDir)) {
    const target = path.join(dataDir, name);
    const paths = taskPaths(dataDir, name);
    for (const step of ['compile', 'execute'] as const) killed += await killRecordedGroup(paths.groupRecord(step));
    removeTree(target);
    dirs++;
  }
  return { dirs, killed };
}
