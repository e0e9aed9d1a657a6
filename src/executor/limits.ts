// Resource limits of a task's steps: what a task asked for (TaskInput.compile/execute.limits), bounded by
// the executor's maxima, else the executor's defaults; and the rlimits that enforce the per-process part
// of them (the step launcher sets them between its fork and the step's exec). Memory and processes are
// enforced per step by cgroups where the machine has them (cgroups.ts); the rlimits here are the
// per-process limits and a partial fallback.
import type { StepLimits } from '../task/types';
import type { Rlimit } from './launcher';

/**
 * Limits as the executor holds them: 0 means none. Seconds for cpu_time (a fraction when the task asked in
 * milliseconds: enforced by measuring, see confinement.ts), bytes for sizes.
 */
export interface LimitValues {
  cpu_time: number;
  memory: number;
  processes: number;
  file_size: number;
  output: number;
  /** Bytes of stack (RLIMIT_STACK); only when the task asks (issue 17), bounded by the memory maximum. */
  stack?: number;
}

export interface LimitSettings {
  /** Applied when a task does not ask. */
  defaults: LimitValues;
  /** The most a task may ask for (0: no cap). */
  maxima: LimitValues;
}

const KEYS = ['cpu_time', 'memory', 'processes', 'file_size', 'output'] as const;

function bounded(value: number, max: number): number {
  if (max <= 0) return value;
  if (value <= 0) return max; // "none" is more than any cap
  return Math.min(value, max);
}

/**
 * What a task asked in the judges' units (issue 17) in the executor's: time_ms as CPU seconds, memory_kb
 * as bytes; where both are given, the judges' field wins.
 */
export function askedInExecutorUnits(asked: StepLimits | undefined): StepLimits | undefined {
  if (!asked) return undefined;
  const result: StepLimits = { ...asked };
  if (asked.time_ms !== undefined) result.cpu_time = asked.time_ms / 1000;
  if (asked.memory_kb !== undefined) result.memory = asked.memory_kb * 1024;
  return result;
}

/** The limits one step runs with. */
export function effectiveLimits(settings: LimitSettings, asked: StepLimits | undefined): LimitValues {
  const result: LimitValues = { ...settings.defaults };
  const wanted = askedInExecutorUnits(asked);
  for (const key of KEYS) {
    const requested = wanted?.[key];
    result[key] = bounded(requested !== undefined && requested > 0 ? requested : settings.defaults[key], settings.maxima[key]);
  }
  if (wanted?.stack_kb !== undefined) result.stack = bounded(wanted.stack_kb * 1024, settings.maxima.memory);
  return result;
}

/** What the caller adds to the step's own limits (see stepRlimits). */
export interface RlimitExtras {
  addressSpace: number;
  processes: number;
}

/**
 * The per-process limits of a step, set by the step launcher with setrlimit, to the byte: no core dumps,
 * CPU seconds (SIGXCPU at the soft limit, SIGKILL a second later; a limit in milliseconds is rounded up
 * to the next second here, as a backstop: the step is stopped at the millisecond by measuring its CPU
 * time, and judged by it), file size (SIGXFSZ), stack (issue 17), and where the caller says so an address-space limit (standing in for a memory cgroup; runtimes that reserve much
 * address space, V8 or the JVM, fail under a low one) and a process limit (RLIMIT_NPROC counts every
 * process of the user: only for a task user of our own).
 */
export function stepRlimits(limits: LimitValues, extra: RlimitExtras): Rlimit[] {
  const result: Rlimit[] = [{ name: 'core', soft: 0, hard: 0 }];
  const cpu = limits.cpu_time > 0 ? Math.max(1, Math.ceil(limits.cpu_time)) : 0;
  if (cpu > 0) result.push({ name: 'cpu', soft: cpu, hard: cpu + 1 });
  const whole = (n: number) => (n > 0 ? Math.max(1, Math.floor(n)) : 0);
  if (whole(limits.file_size) > 0) result.push({ name: 'fsize', soft: whole(limits.file_size), hard: whole(limits.file_size) });
  if (whole(limits.stack ?? 0) > 0) result.push({ name: 'stack', soft: whole(limits.stack!), hard: whole(limits.stack!) });
  if (whole(extra.addressSpace) > 0) result.push({ name: 'as', soft: whole(extra.addressSpace), hard: whole(extra.addressSpace) });
  if (whole(extra.processes) > 0) result.push({ name: 'nproc', soft: whole(extra.processes), hard: whole(extra.processes) });
  return result;
}

/**
 * A step's wall-time limit when the task gives a CPU limit in milliseconds and no wall limit (issue 17):
 * IMPLIED_WALL_FACTOR times the CPU limit plus IMPLIED_WALL_MARGIN_MS, as judges bound a program that
 * sleeps or waits instead of computing (its CPU time would never reach the limit).
 */
export const IMPLIED_WALL_FACTOR = 2;
export const IMPLIED_WALL_MARGIN_MS = 1_000;

/**
 * The wall-time limit of a step in ms (0: none): the smallest of its timeout (seconds, the original's
 * field), the task's wall_ms, and the wall time implied by its time_ms when it gave no wall_ms.
 */
export function wallLimitMs(timeoutSeconds: number, asked: StepLimits | undefined): number {
  const limits: number[] = [];
  if (timeoutSeconds > 0) limits.push(timeoutSeconds * 1000);
  if (asked?.wall_ms !== undefined) limits.push(asked.wall_ms);
  else if (asked?.time_ms !== undefined) limits.push(asked.time_ms * IMPLIED_WALL_FACTOR + IMPLIED_WALL_MARGIN_MS);
  return limits.length > 0 ? Math.min(...limits) : 0;
}
