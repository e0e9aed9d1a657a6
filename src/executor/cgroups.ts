// A cgroup per task step, where the machine lets the executor make them: memory and process-count
// limits for the step as a whole (not per process, as rlimits are), its CPU time and peak memory, and a
// way to kill every process of the step, also those that left its process group (setsid, daemons).
// cgroup v1 (memory, pids, cpuacct hierarchies) and v2 (a unified tree with the memory and pids
// controllers delegated to us) are both handled; the step's wrapper joins by writing its pid into the
// listed cgroup.procs files before it execs the step.
// A fresh cgroup per step, not one per slot reused: only a new memory cgroup starts with nothing charged
// (the page cache a step leaves stays charged to its cgroup, and would count in the next step's peak and
// limit; removing the cgroup hands those charges to the parent). The cost of making and removing them is
// kept off the task's path and off the event loop: mkdir and rmdir (which can wait on the kernel for
// milliseconds on a busy machine) are asynchronous, each slot's next cgroup is made ahead, and a used one
// is removed in the background. Reading and writing a cgroup's small files is synchronous: the kernel
// answers from memory in microseconds, less than an asynchronous call costs.
import fs from 'node:fs';
import path from 'node:path';
import { describeError } from '../common/errors';
import type { Logger } from '../common/logging';
import { readOptionalText } from '../common/optional-file';
import { sleep } from '../common/processes';

/** How often a cgroup is re-checked while its processes are being killed. */
const KILL_POLL_MS = 10;
/** How long killing a cgroup's processes may take before we give up on it (a process stuck in the kernel). */
const KILL_DEADLINE_MS = 10_000;
/** Attempts at removing a cgroup that is still busy (its processes are being torn down), and the pause between. */
const REMOVE_ATTEMPTS = 50;
const REMOVE_RETRY_MS = 20;

export interface CgroupLimits {
  /** Bytes; 0 = none. */
  memory: number;
  /** Processes and threads; 0 = none. */
  processes: number;
}

export interface CgroupFacts {
  cpuMs: number | null;
  memoryKb: number | null;
  /** The kernel killed a process for memory. */
  oomKilled: boolean;
  /** A fork was refused by the process limit. */
  processLimitHit: boolean;
}

export interface StepCgroup {
  /** cgroup.procs files the step's wrapper writes its pid into. */
  procsFiles: string[];
  memoryLimited: boolean;
  processesLimited: boolean;
  facts(): CgroupFacts;
  /** Kills every process in the cgroup and waits until none is left. */
  killAll(): Promise<void>;
  /** Kills synchronously, without waiting (process exit). */
  killNow(): void;
}

// Small cgroup files are read synchronously (readOptionalText): the kernel answers from memory in
// microseconds, while an asynchronous read costs four thread-pool round trips (open, stat, read, close) and
// more CPU than the read itself. (Making and removing cgroups, which can wait on the kernel, is asynchronous.)

function readNumber(file: string): number | undefined {
  const text = readOptionalText(file)?.trim();
  if (text === undefined || text === '' || text === 'max') return undefined;
  const value = Number(text);
  return Number.isFinite(value) ? value : undefined;
}

/** A `key value` line of a flat-keyed file (memory.events, cpu.stat, memory.oom_control, pids.events). */
function readKey(file: string, key: string): number | undefined {
  const line = readOptionalText(file)
    ?.split('\n')
    .find((l) => l.startsWith(`${key} `));
  return line ? Number(line.slice(key.length + 1)) : undefined;
}

function parsePids(text: string | undefined): number[] {
  return (text ?? '')
    .split('\n')
    .filter(Boolean)
    .map(Number)
    .filter((pid) => pid > 0 && pid !== process.pid);
}

function killPids(pids: number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
}

/** Kills everything in `dirs` until they are empty (v1 has no cgroup.kill; new forks are caught by looping). */
async function emptyCgroups(dirs: string[]): Promise<void> {
  const deadline = Date.now() + KILL_DEADLINE_MS;
  for (;;) {
    const pids = [...new Set(dirs.flatMap((dir) => parsePids(readOptionalText(path.join(dir, 'cgroup.procs')))))];
    if (pids.length === 0 || Date.now() > deadline) return;
    // v2 (kernel 5.14+) kills the whole subtree atomically; v1, or an older kernel: by pid.
    for (const dir of dirs) writeOptional(path.join(dir, 'cgroup.kill'), '1');
    killPids(pids);
    await sleep(KILL_POLL_MS);
  }
}

async function removeDir(dir: string): Promise<void> {
  // rmdir of a cgroup fails while it has processes, or (briefly) while the kernel tears them down.
  for (let attempt = 0; attempt < REMOVE_ATTEMPTS; attempt++) {
    try {
      await fs.promises.rmdir(dir);
      return;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return;
      if (code !== 'EBUSY') throw error;
      await emptyCgroups([dir]);
      await sleep(REMOVE_RETRY_MS);
    }
  }
}

/** Writes a cgroup knob that this kernel may not have (swap accounting, cgroup.kill). */
function writeOptional(file: string, value: string): void {
  try {
    fs.writeFileSync(file, value);
  } catch {
    // not here
  }
}

/** mkdir -p, but with the kernel's own error for the last step (a recursive mkdir says ENOENT where it means EROFS). */
function makeDir(dir: string): void {
  if (!fs.existsSync(path.dirname(dir))) fs.mkdirSync(path.dirname(dir), { recursive: true });
  try {
    fs.mkdirSync(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
}

interface Mount {
  dir: string;
  /** The cgroup this mount shows at `dir` (a container's own, where the runtime mounts only its subtree). */
  root: string;
  type: 'cgroup' | 'cgroup2';
  controllers: string[];
}

/**
 * The directory of `own` (a path from /proc/self/cgroup) under the mount. A mount that does not show our
 * own cgroup is one bound in from outside (`-v /sys/fs/cgroup/memory/kv2:/sys/fs/cgroup/memory`): a
 * cgroup the operator delegated to the executor, used as it is.
 */
function dirOf(mount: Mount, own: string): string {
  const relative = path.posix.relative(mount.root, own);
  return relative.startsWith('..') ? mount.dir : path.join(mount.dir, relative);
}

function cgroupMounts(): Mount[] {
  const mounts: Mount[] = [];
  for (const line of (readOptionalText('/proc/self/mountinfo') ?? '').split('\n')) {
    const [left, right] = line.split(' - ');
    if (!left || !right) continue;
    const [type, , superOptions] = right.split(' ');
    const [, , , root, dir] = left.split(' ');
    if (!dir || !root || (type !== 'cgroup' && type !== 'cgroup2')) continue;
    mounts.push({ dir, root, type, controllers: type === 'cgroup' ? (superOptions ?? '').split(',') : [] });
  }
  return mounts;
}

/** This process's cgroup path in each v1 hierarchy (by controller) and in v2 (key ''). */
function ownCgroups(): Map<string, string> {
  const own = new Map<string, string>();
  for (const line of (readOptionalText('/proc/self/cgroup') ?? '').split('\n')) {
    const match = /^\d+:([^:]*):(.*)$/.exec(line);
    if (!match) continue;
    const [, controllers, where] = match;
    if (controllers === '') own.set('', where!);
    for (const controller of controllers!.split(',')) if (controller) own.set(controller, where!);
  }
  return own;
}

/** Where the executor can make step cgroups, per controller. */
interface Layout {
  version: 1 | 2;
  /** v1: base dir per controller (memory, pids, cpuacct); v2: one base dir under 'unified'. */
  bases: Map<string, string>;
}

/** The cgroup dirs of one step, by controller (v1) or under 'unified' (v2). */
type StepDirs = Map<string, string>;

export class Cgroups {
  /** Each slot's next step cgroups, made ahead of time: `dirs` once they are made. */
  private readonly spares = new Map<number, { made: Promise<unknown>; dirs?: StepDirs }>();
  /** Removals running in the background; close() waits for them. */
  private readonly removals = new Set<Promise<void>>();
  private made = 0;
  /** Tells this run's cgroup names from any a previous run could not remove. */
  private readonly run = Date.now().toString(36);

  private constructor(
    private readonly layout: Layout,
    private readonly logger: Logger,
  ) {}

  /** What is enforced with cgroups on this machine, for the start log. */
  describe(): string {
    return `cgroup v${this.layout.version}: ${[...this.layout.bases.keys()].filter((c) => c !== 'unified').join(', ') || 'memory, pids, cpu'}`;
  }

  get memory(): boolean {
    return this.layout.version === 2 || this.layout.bases.has('memory');
  }

  get pids(): boolean {
    return this.layout.version === 2 || this.layout.bases.has('pids');
  }

  /**
   * The cgroups this executor may use, or undefined with the reasons in `refused`: not root, no memory or
   * pids controller, a read-only cgroup file system (a container's), or a v2 tree whose controllers are
   * not delegated to us.
   * `instance` names this executor's base cgroup: stable across its restarts (so leftovers are found),
   * distinct from any other executor on the machine (whose steps must not be touched).
   */
  static detect(instance: string, logger: Logger, refused: string[] = []): Cgroups | undefined {
    if (process.getuid?.() !== 0) {
      refused.push('not running as root');
      return undefined;
    }
    const leaf = `kv2-${instance}`;
    const mounts = cgroupMounts();
    const own = ownCgroups();
    const v1 = new Map<string, string>();
    for (const controller of ['memory', 'pids', 'cpuacct']) {
      const mount = mounts.find((m) => m.type === 'cgroup' && m.controllers.includes(controller));
      const where = own.get(controller);
      if (!mount || where === undefined) continue;
      const base = path.join(dirOf(mount, where), leaf);
      try {
        makeDir(base);
        v1.set(controller, base);
      } catch (error) {
        refused.push(`cgroup v1 ${controller}: cannot make ${base}: ${(error as NodeJS.ErrnoException).code ?? describeError(error)}`);
      }
    }
    if (v1.has('memory') || v1.has('pids')) return new Cgroups({ version: 1, bases: v1 }, logger);

    const unified = mounts.find((m) => m.type === 'cgroup2');
    const where = own.get('');
    const dir = unified && where !== undefined ? dirOf(unified, where) : undefined;
    if (dir) {
      const base = Cgroups.delegateV2(dir, leaf, refused);
      if (base) return new Cgroups({ version: 2, bases: new Map([['unified', base]]) }, logger);
    }
    if (refused.length === 0) refused.push('no memory or pids cgroup controller is mounted');
    return undefined;
  }

  /**
   * v2: step cgroups need memory and pids enabled in the subtree_control of every ancestor we create.
   * A cgroup that holds processes cannot enable controllers for its children (the "no internal
   * processes" rule), so the executor first moves itself into a leaf of its own; if other processes share
   * its cgroup (not a delegated one), cgroups are not used.
   */
  private static delegateV2(own: string, leaf: string, refused: string[]): string | undefined {
    const available = (readOptionalText(path.join(own, 'cgroup.controllers')) ?? '').split(/\s+/);
    if (!available.includes('memory') || !available.includes('pids')) {
      refused.push(`cgroup v2: the memory and pids controllers are not available in ${own} (they are not delegated to it)`);
      return undefined;
    }
    const enable = (dir: string) => fs.writeFileSync(path.join(dir, 'cgroup.subtree_control'), available.includes('cpu') ? '+memory +pids +cpu' : '+memory +pids');
    try {
      try {
        enable(own);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EBUSY') throw error;
        const self = path.join(own, `${leaf}-executor`);
        fs.mkdirSync(self, { recursive: true });
        fs.writeFileSync(path.join(self, 'cgroup.procs'), String(process.pid));
        enable(own);
      }
      const base = path.join(own, leaf);
      fs.mkdirSync(base, { recursive: true });
      enable(base);
      return base;
    } catch (error) {
      refused.push(`cgroup v2: cannot enable the controllers for ${own}: ${(error as NodeJS.ErrnoException).code ?? describeError(error)} (run the executor in a cgroup of its own: systemd Delegate=yes, or docs/isolation.md for containers)`);
      return undefined;
    }
  }

  /** Kills and removes step cgroups a previous executor run left behind. Returns how many. */
  async cleanupLeftovers(): Promise<number> {
    let count = 0;
    for (const base of this.layout.bases.values()) {
      let children: string[];
      try {
        children = (await fs.promises.readdir(base, { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => path.join(base, d.name));
      } catch {
        continue;
      }
      for (const child of children) {
        await emptyCgroups([child]);
        await removeDir(child).catch((error) => this.logger.warn({ cgroup: child, err: describeError(error) }, 'cannot remove a leftover cgroup'));
        count++;
      }
    }
    return count;
  }

  /** Removes this executor's cgroups (when empty): at a clean stop nothing of it stays. */
  async close(): Promise<void> {
    await Promise.all([...this.spares.values()].map((spare) => spare.made));
    this.spares.clear();
    await Promise.all([...this.removals]);
    await this.cleanupLeftovers();
    for (const base of this.layout.bases.values()) {
      try {
        await fs.promises.rmdir(base);
      } catch (error) {
        this.logger.debug({ cgroup: base, err: describeError(error) }, 'cannot remove the executor cgroup');
      }
    }
  }

  /** Makes one step's cgroup in every hierarchy (named by slot, this run and a counter: never reused). */
  private async makeDirs(slot: number): Promise<StepDirs> {
    const name = `slot${slot}-${this.run}-${++this.made}`;
    const dirs: StepDirs = new Map();
    try {
      for (const [controller, base] of this.layout.bases) {
        const dir = path.join(base, name);
        await fs.promises.mkdir(dir);
        dirs.set(controller, dir);
      }
    } catch (error) {
      this.retire([...dirs.values()]);
      throw error;
    }
    return dirs;
  }

  /**
   * Takes the slot's cgroup made ahead (see `retire`) if it is ready; else (a slot's first step, or a
   * step right after another whose cgroup is still being removed) makes one now.
   */
  private async takeDirs(slot: number): Promise<StepDirs> {
    const spare = this.spares.get(slot);
    if (spare?.dirs) {
      this.spares.delete(slot);
      return spare.dirs;
    }
    return this.makeDirs(slot);
  }

  /**
   * Once a step is over (its processes gone): removes its cgroup and makes the slot's next one, in the
   * background, so that neither delays a task.
   */
  retire(dirs: string[], slot?: number): void {
    const removal = (async () => {
      await emptyCgroups(dirs);
      for (const dir of dirs) await removeDir(dir);
    })()
      .catch((error) => this.logger.warn({ cgroups: dirs, err: describeError(error) }, 'cannot remove a step cgroup; the next executor start removes it'))
      .finally(() => this.removals.delete(removal));
    this.removals.add(removal);
    if (slot !== undefined && !this.spares.has(slot)) {
      const spare: { made: Promise<unknown>; dirs?: StepDirs } = { made: Promise.resolve() };
      spare.made = removal
        .then(() => this.makeDirs(slot))
        .then(
          (made) => {
            spare.dirs = made;
          },
          (error) => {
            this.spares.delete(slot);
            this.logger.warn({ slot, err: describeError(error) }, 'cannot make the next step cgroup ahead of time');
          },
        );
      this.spares.set(slot, spare);
    }
  }

  /** The cgroup(s) of one step in `slot`, with its limits. Call `retire` with its dirs and slot once the step is over. */
  async create(slot: number, limits: CgroupLimits): Promise<StepCgroup & { dirs: string[] }> {
    const dirs = await this.takeDirs(slot);
    const all = [...dirs.values()];
    const v2 = this.layout.version === 2 ? dirs.get('unified') : undefined;
    const memoryDir = v2 ?? dirs.get('memory');
    const pidsDir = v2 ?? dirs.get('pids');
    const cpuDir = v2 ?? dirs.get('cpuacct');
    try {
      // Writes to a new cgroup's knobs are answered from memory: synchronous, as the reads.
      if (limits.memory > 0 && memoryDir) {
        const bytes = String(Math.floor(limits.memory));
        if (v2) {
          fs.writeFileSync(path.join(v2, 'memory.max'), bytes);
          writeOptional(path.join(v2, 'memory.swap.max'), '0');
        } else {
          fs.writeFileSync(path.join(memoryDir, 'memory.limit_in_bytes'), bytes);
          // Memory plus swap too: without it a step could swap its way past the limit (set after memory:
          // memsw may never be below it).
          writeOptional(path.join(memoryDir, 'memory.memsw.limit_in_bytes'), bytes);
        }
      }
      if (limits.processes > 0 && pidsDir) fs.writeFileSync(path.join(pidsDir, 'pids.max'), String(Math.floor(limits.processes)));
    } catch (error) {
      this.retire(all);
      throw error;
    }

    const cpuMs = (): number | null => {
      if (!cpuDir) return null;
      if (v2) {
        const usec = readKey(path.join(v2, 'cpu.stat'), 'usage_usec');
        return usec === undefined ? null : Math.round(usec / 1000);
      }
      const ns = readNumber(path.join(cpuDir, 'cpuacct.usage'));
      return ns === undefined ? null : Math.round(ns / 1e6);
    };
    return {
      dirs: all,
      procsFiles: all.map((dir) => path.join(dir, 'cgroup.procs')),
      memoryLimited: limits.memory > 0 && memoryDir !== undefined,
      processesLimited: limits.processes > 0 && pidsDir !== undefined,
      facts: () => {
        const peak = memoryDir ? readNumber(path.join(memoryDir, v2 ? 'memory.peak' : 'memory.max_usage_in_bytes')) : undefined;
        const kills = memoryDir ? readKey(path.join(memoryDir, v2 ? 'memory.events' : 'memory.oom_control'), 'oom_kill') : undefined;
        const processLimit = pidsDir ? readKey(path.join(pidsDir, 'pids.events'), 'max') : undefined;
        return {
          cpuMs: cpuMs(),
          memoryKb: memoryDir && peak !== undefined ? Math.round(peak / 1024) : null,
          oomKilled: (kills ?? 0) > 0,
          processLimitHit: (processLimit ?? 0) > 0,
        };
      },
      killAll: () => emptyCgroups(all),
      killNow: () => killPids([...new Set(all.flatMap((dir) => parsePids(readOptionalText(path.join(dir, 'cgroup.procs')))))]),
    };
  }
}
