// Resource limits of a task's steps: what a task asked for (TaskInput.compile/execute.limits), bounded by
// the executor's maxima, else the executor's defaults; and the rlimits that enforce the per-process part
// of them, set by the `ulimit` builtin of the shell that starts the step (no program of its own to start:
// every exec costs milliseconds), or by prlimit where that shell's ulimit cannot say it exactly. Memory and
// processes are enforced per step by cgroups where the machine has them (cgroups.ts); the rlimits here are
// the per-process limits and a partial fallback.
import { spawnSync } from 'node:child_process';
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
export function prlimitArgs(limits: LimitValues, extra: RlimitExtras): string[] {
  const r = rlimits(limits, extra);
  const args = ['--core=0'];
  if (r.cpuSoft > 0) args.push(`--cpu=${r.cpuSoft}:${r.cpuHard}`);
  if (r.fileSize > 0) args.push(`--fsize=${r.fileSize}`);
  if (r.addressSpace > 0) args.push(`--as=${r.addressSpace}`);
  if (r.processes > 0) args.push(`--nproc=${r.processes}`);
  return args;
}

/** What the caller adds to the step's own limits (see prlimitArgs). */
export interface RlimitExtras {
  addressSpace: number;
  processes: number;
}

/** The rlimits of a step, whole numbers; 0: not set. CPU: SIGXCPU at the soft limit, SIGKILL a second later. */
interface Rlimits {
  cpuSoft: number;
  cpuHard: number;
  fileSize: number;
  addressSpace: number;
  processes: number;
}

function rlimits(limits: LimitValues, extra: RlimitExtras): Rlimits {
  const cpuSoft = limits.cpu_time > 0 ? Math.max(1, Math.ceil(limits.cpu_time)) : 0;
  return {
    cpuSoft,
    cpuHard: cpuSoft > 0 ? cpuSoft + 1 : 0,
    fileSize: limits.file_size > 0 ? Math.floor(limits.file_size) : 0,
    addressSpace: extra.addressSpace > 0 ? Math.floor(extra.addressSpace) : 0,
    processes: extra.processes > 0 ? Math.floor(extra.processes) : 0,
  };
}

/** How long the start-up probe of the shell's ulimit may take. */
const ULIMIT_PROBE_TIMEOUT_MS = 5_000;

/**
 * The `ulimit` of the shell that starts each step, as probed at start: its option for the process limit
 * (`-u` in bash and busybox, `-p` in dash) and the units of `-f` (512 or 1024 bytes) and `-v` (KiB).
 * Without a flag on -H/-S, ulimit sets the soft and the hard limit at once, like prlimit.
 */
export class ShellUlimit {
  private constructor(
    private readonly processFlag: 'u' | 'p',
    private readonly fileUnit: number,
    private readonly addressUnit: number,
  ) {}

  /**
   * Checks what `shell`'s ulimit does by setting known limits and reading them back from
   * /proc/self/limits; undefined (use prlimit) when it does not behave as expected.
   */
  static probe(shell: string): ShellUlimit | undefined {
    // Small values: the probe only execs cat (no fork, no file written); they never exceed a hard limit
    // an executor could have.
    const probe = { cpuSoft: 1000, cpuHard: 1001, fileBlocks: 16384, addressKiB: 4 * 1024 * 1024, processes: 1000 };
    for (const flag of ['u', 'p'] as const) {
      const script =
        `ulimit -c 0 && ulimit -t ${probe.cpuHard} && ulimit -S -t ${probe.cpuSoft} && ulimit -f ${probe.fileBlocks} && ` +
        `ulimit -v ${probe.addressKiB} && ulimit -${flag} ${probe.processes} && exec cat /proc/self/limits`;
      const result = spawnSync(shell, ['-c', script], { encoding: 'utf8', timeout: ULIMIT_PROBE_TIMEOUT_MS, stdio: ['ignore', 'pipe', 'ignore'] });
      if (result.error || result.status !== 0) continue;
      const read = (name: string): [number, number] | undefined => {
        const match = new RegExp(`^${name}\\s+(\\S+)\\s+(\\S+)`, 'm').exec(result.stdout);
        return match ? [Number(match[1]), Number(match[2])] : undefined;
      };
      const same = (pair: [number, number] | undefined, soft: number, hard = soft) => pair !== undefined && pair[0] === soft && pair[1] === hard;
      const file = read('Max file size');
      const address = read('Max address space');
      const fileUnit = file ? file[0] / probe.fileBlocks : NaN;
      const addressUnit = address ? address[0] / probe.addressKiB : NaN;
      if (
        same(read('Max core file size'), 0) &&
        same(read('Max cpu time'), probe.cpuSoft, probe.cpuHard) &&
        (fileUnit === 512 || fileUnit === 1024) && same(file, file![0]) &&
        addressUnit === 1024 && same(address, address![0]) &&
        same(read('Max processes'), probe.processes)
      ) {
        return new ShellUlimit(flag, fileUnit, addressUnit);
      }
    }
    return undefined;
  }

  describe(): string {
    return `the step shell's ulimit (-f in ${this.fileUnit}-byte blocks)`;
  }

  /**
   * Shell commands that set the step's rlimits, joined with &&. A limit that is not a whole number of
   * ulimit's units makes it undefined when `exact` (prlimit then sets it to the byte); otherwise it is
   * rounded down (stricter, never looser).
   */
  commands(limits: LimitValues, extra: RlimitExtras, exact: boolean): string | undefined {
    const r = rlimits(limits, extra);
    if (exact && (r.fileSize % this.fileUnit !== 0 || r.addressSpace % this.addressUnit !== 0)) return undefined;
    const commands = ['ulimit -c 0'];
    // Both limits first, then the soft one lowered: whatever the limits were, no step sets soft > hard.
    if (r.cpuSoft > 0) commands.push(`ulimit -t ${r.cpuHard}`, `ulimit -S -t ${r.cpuSoft}`);
    if (r.fileSize > 0) commands.push(`ulimit -f ${Math.floor(r.fileSize / this.fileUnit)}`);
    if (r.addressSpace > 0) commands.push(`ulimit -v ${Math.floor(r.addressSpace / this.addressUnit)}`);
    if (r.processes > 0) commands.push(`ulimit -${this.processFlag} ${r.processes}`);
    return commands.join(' && ');
  }
}
