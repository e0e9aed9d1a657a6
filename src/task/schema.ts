// The task's schema: the shapes of a task's parts (zod, for the RPC contract and the HTTP forms) and the
// one check a task meets before anything stores it (checkTaskInput). Each edge that takes a task in (the
// gateway's forms, the judicator's RPC `add`) parses it into a TaskInput and calls checkTaskInput; the
// store counts its size with checkTaskSize, the same rule. Nothing past the edges checks a task again.
import zlib from 'node:zlib';
import { z } from 'zod';
import { InvalidInputError, TooLargeError } from '../common/errors';
import { ID_PATTERN } from '../common/ids';
import { inputSize } from './codec';
import { MAX_INFLATED_TEXT_BYTES, MAX_INT, MAX_STEP_CPU_TIME_S, MAX_STEP_PROCESSES } from './limits';
import { STOP_REASONS, TaskStatus, type TaskInput } from './types';
import { checkZip } from './zip';

/** A whole number as the original's clients send them (user, timeouts, search limit and page). */
export const countSchema = z.number().int().min(0).max(MAX_INT);

export const taskIdSchema = z.string().regex(ID_PATTERN, 'must be 24 lower-case hex characters');

export const taskStatusSchema = z.union(
  Object.values(TaskStatus).map((s) => z.literal(s)) as [z.ZodLiteral<number>, z.ZodLiteral<number>, ...z.ZodLiteral<number>[]],
);

/** The per-step limits a task may ask for (each optional; the executor's defaults and maxima apply). */
export const stepLimitsSchema = z
  .object({
    cpu_time: z.number().positive().max(MAX_STEP_CPU_TIME_S).optional(),
    memory: z.number().int().positive().optional(),
    processes: z.number().int().positive().max(MAX_STEP_PROCESSES).optional(),
    file_size: z.number().int().positive().optional(),
    output: z.number().int().positive().optional(),
  })
  .strict();

/** What an executor says of one step it ran. */
export const stepReportSchema = z.object({
  exit_code: z.number().int().nullable(),
  signal: z.string().max(32).nullable(),
  wall_ms: z.number().min(0),
  cpu_ms: z.number().min(0).nullable(),
  memory_kb: z.number().min(0).nullable(),
  stopped: z.enum(STOP_REASONS).nullable(),
});

/** The limits checkTaskInput applies. */
export interface TaskInputLimits {
  /** The cluster's task size limit (--task-max-size), bytes. */
  maxTaskSize: number;
  /** Largest text field once inflated, bytes (default MAX_INFLATED_TEXT_BYTES). */
  maxInflatedBytes?: number;
}

/**
 * Checks everything of a task that its shape does not say: its archives are zips whose entries stay in
 * the task's directory, its text fields are zlib that inflates to a sane size, and it fits the size
 * limit. Throws InvalidInputError naming the field, or TooLargeError.
 */
export function checkTaskInput(task: TaskInput, limits: TaskInputLimits): void {
  checkZip(task.compile.source, 'compile_source');
  checkZip(task.execute.data, 'execute_data');
  const maxInflated = limits.maxInflatedBytes ?? MAX_INFLATED_TEXT_BYTES;
  const texts: [string, Buffer][] = [
    ['compile_command', task.compile.command],
    ['execute_input', task.execute.input],
    ['execute_command', task.execute.command],
    ['execute_standard', task.execute.standard],
  ];
  for (const [name, bytes] of texts) {
    if (bytes.length === 0) continue;
    try {
      zlib.inflateSync(bytes, { maxOutputLength: maxInflated });
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      throw new InvalidInputError(code === 'ERR_BUFFER_TOO_LARGE' ? `${name} inflates to more than ${maxInflated} bytes` : `${name} is not zlib-compressed text`);
    }
  }
  checkTaskSize(task, limits.maxTaskSize);
}

/** Throws TooLargeError when the task's packed input is over `maxTaskSize` bytes; returns its size. */
export function checkTaskSize(task: TaskInput, maxTaskSize: number): number {
  const size = inputSize(task);
  if (size > maxTaskSize) {
    throw new TooLargeError(
      `the task takes ${size} bytes packed, more than the limit of ${maxTaskSize} bytes (--task-max-size); make its sources, data or input smaller`,
    );
  }
  return size;
}
