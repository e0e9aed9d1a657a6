// Resource limits of a task's steps: what a task asked for (TaskInput.compile/execute.limits), bounded by
// the executor's maxima, else the executor's defaults; and the rlimits (prlimit) that enforce the
// per-process part of them. Memory and processes are enforced per step by cgroups where the machine has
// them (cgroups.ts); the rlimits here are the per-process limits and a partial fallback.
import type { StepLimits } from '../task/types';

/** Limits as the executor holds them: 0 means none. Seconds for cpu_time, bytes for sizes. */
export interface LimitValues {
  cpu_time: number;
  memory: number;
  processes: number;
  file_size: number;
  output: number;
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

/** The limits one step runs with. */
export function effectiveLimits(settings: LimitSettings, asked: StepLimits | undefined): LimitValues {
  const result = { ...settings.defaults };
  for (const key of KEYS) {
    const requested = asked?.[key];
    result[key] = bounded(requested !== undefined && requested > 0 ? requested : settings.defaults[key], settings.maxima[key]);
  }
  return result;
}

/**
 * `prlimit` options for the per-process limits: no core dumps, CPU seconds (SIGXCPU, then SIGKILL a
 * second later), file size (SIGXFSZ), and where the caller says so an address-space limit (standing in
 * for a memory cgroup; runtimes that reserve much address space, V8 or the JVM, fail under a low one)
 * and a process limit (RLIMIT_NPROC counts every process of the user: only for a task user of our own).
 */
export function prlimitArgs(limits: LimitValues, extra: { addressSpace: number; processes: number }): string[] {
  const args = ['--core=0'];
  if (limits.cpu_time > 0) {
    const soft = Math.max(1, Math.ceil(limits.cpu_time));
    args.push(`--cpu=${soft}:${soft + 1}`);
  }
  if (limits.file_size > 0) args.push(`--fsize=${Math.floor(limits.file_size)}`);
  if (extra.addressSpace > 0) args.push(`--as=${Math.floor(extra.addressSpace)}`);
  if (extra.processes > 0) args.push(`--nproc=${Math.floor(extra.processes)}`);
  return args;
}
