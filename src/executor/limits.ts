// Resource limits of a task's steps: what a task asked for (TaskInput.compile/execute.limits), bounded by
// the executor's maxima, else the executor's defaults; and the rlimits that enforce the per-process part
// of them (the step launcher sets them between its fork and the step's exec). Memory and processes are
// enforced per step by cgroups where the machine has them (cgroups.ts); the rlimits here are the
// per-process limits and a partial fallback.
import type { StepLimits } from '../task/types';
import type { Rlimit } from './launcher';

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

/** What the caller adds to the step's own limits (see stepRlimits). */
export interface RlimitExtras {
  addressSpace: number;
  processes: number;
}

/**
 * The per-process limits of a step, set by the step launcher with setrlimit, to the byte: no core dumps,
 * CPU seconds (SIGXCPU at the soft limit, SIGKILL a second later), file size (SIGXFSZ), and where the
 * caller says so an address-space limit (standing in for a memory cgroup; runtimes that reserve much
 * address space, V8 or the JVM, fail under a low one) and a process limit (RLIMIT_NPROC counts every
 * process of the user: only for a task user of our own).
 */
export function stepRlimits(limits: LimitValues, extra: RlimitExtras): Rlimit[] {
  const result: Rlimit[] = [{ name: 'core', soft: 0, hard: 0 }];
  const cpu = limits.cpu_time > 0 ? Math.max(1, Math.ceil(limits.cpu_time)) : 0;
  if (cpu > 0) result.push({ name: 'cpu', soft: cpu, hard: cpu + 1 });
  const whole = (n: number) => (n > 0 ? Math.max(1, Math.floor(n)) : 0);
  if (whole(limits.file_size) > 0) result.push({ name: 'fsize', soft: whole(limits.file_size), hard: whole(limits.file_size) });
  if (whole(extra.addressSpace) > 0) result.push({ name: 'as', soft: whole(extra.addressSpace), hard: whole(extra.addressSpace) });
  if (whole(extra.processes) > 0) result.push({ name: 'nproc', soft: whole(extra.processes), hard: whole(extra.processes) });
  return result;
}
