// A cgroup per task step, where the machine lets the executor make them: memory and process-count
// limits for the step as a whole (not per process, as rlimits are), its CPU time and peak memory, and a
// way to kill every process of the step, also those that left its process group (setsid, daemons).
// cgroup v1 (memory, pids, cpuacct hierarchies) and v2 (a unified tree with the memory and pids
// controllers delegated to us) are both handled; the step's wrapper joins by writing its pid into the
// listed cgroup.procs files before it execs the step.
import fs from 'node:fs';
import path from 'node:path';
import { describeError } from '../common/errors';
import type { Logger } from '../common/logging';
import { sleep } from '../common/processes';

/** How often a cgroup is re-checked while its processes are being killed. */
const KILL_POLL_MS = 10;
/** How long killing a cgroup's processes may take before we give up on it (a process stuck in the kernel). */
const KILL_DEADLINE_MS = 10_000;

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
  /** CPU time used so far, ms (null when not measured). */
  cpuMs(): number | null;
  facts(): CgroupFacts;
  killAll(): Promise<void>;
  /** Kills synchronously, without waiting (process exit). */
  killNow(): void;
  remove(): Promise<void>;
}

function read(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

function readNumber(file: string): number | undefined {
  const text = read(file)?.trim();
  if (text === undefined || text === '' || text === 'max') return undefined;
  const value = Number(text);
  return Number.isFinite(value) ? value : undefined;
}

/** A `key value` line of a flat-keyed file (memory.events, cpu.stat, memory.oom_control, pids.events). */
function readKey(file: string, key: string): number | undefined {
  const line = read(file)
    ?.split('\n')
    .find((l) => l.startsWith(`${key} `));
  return line ? Number(line.slice(key.length + 1)) : undefined;
}

function pidsIn(dir: string): number[] {
  return (read(path.join(dir, 'cgroup.procs')) ?? '')
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
    const pids = [...new Set(dirs.flatMap(pidsIn))];
    if (pids.length === 0 || Date.now() > deadline) return;
    for (const dir of dirs) {
      // v2 (kernel 5.14+) kills the whole subtree atomically.
      try {
        fs.writeFileSync(path.join(dir, 'cgroup.kill'), '1');
      } catch {
        // v1, or an older kernel: by pid
      }
    }
    killPids(pids);
    await sleep(KILL_POLL_MS);
  }
}

async function removeDir(dir: string): Promise<void> {
  // rmdir of a cgroup fails while it has processes, or (briefly) while the kernel tears them down.
  for (let attempt = 0; attempt < 50; attempt++) {
    try {
      fs.rmdirSync(dir);
      return;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return;
      if (code !== 'EBUSY') throw error;
      await emptyCgroups([dir]);
      await sleep(20);
    }
  }
}

interface Mount {
  dir: string;
  type: 'cgroup' | 'cgroup2';
  controllers: string[];
}

function cgroupMounts(): Mount[] {
  const mounts: Mount[] = [];
  for (const line of (read('/proc/self/mountinfo') ?? '').split('\n')) {
    const [left, right] = line.split(' - ');
    if (!left || !right) continue;
    const [type, , superOptions] = right.split(' ');
    const dir = left.split(' ')[4];
    if (!dir || (type !== 'cgroup' && type !== 'cgroup2')) continue;
    mounts.push({ dir, type, controllers: type === 'cgroup' ? (superOptions ?? '').split(',') : [] });
  }
  return mounts;
}

/** This process's cgroup path in each v1 hierarchy (by controller) and in v2 (key ''). */
function ownCgroups(): Map<string, string> {
  const own = new Map<string, string>();
  for (const line of (read('/proc/self/cgroup') ?? '').split('\n')) {
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

export class Cgroups {
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
   * The cgroups this executor may use, or undefined (with the reason logged) when there are none: not
   * root, no memory or pids controller, or a v2 tree whose controllers are not delegated to us.
   * `instance` names this executor's base cgroup: stable across its restarts (so leftovers are found),
   * distinct from any other executor on the machine (whose steps must not be touched).
   */
  static detect(instance: string, logger: Logger): Cgroups | undefined {
    if (process.getuid?.() !== 0) {
      logger.info('not running as root: no cgroups for tasks (memory and process limits fall back to rlimits)');
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
      const base = path.join(mount.dir, where, leaf);
      try {
        fs.mkdirSync(base, { recursive: true });
        v1.set(controller, base);
      } catch (error) {
        logger.debug({ controller, base, err: describeError(error) }, 'cannot make a cgroup here');
      }
    }
    if (v1.has('memory') || v1.has('pids')) return new Cgroups({ version: 1, bases: v1 }, logger);

    const unified = mounts.find((m) => m.type === 'cgroup2');
    const where = own.get('');
    if (unified && where !== undefined) {
      const base = Cgroups.delegateV2(path.join(unified.dir, where), leaf, logger);
      if (base) return new Cgroups({ version: 2, bases: new Map([['unified', base]]) }, logger);
    }
    logger.info('no usable memory or pids cgroup controller: memory and process limits fall back to rlimits');
    return undefined;
  }

  /**
   * v2: step cgroups need memory and pids enabled in the subtree_control of every ancestor we create.
   * A cgroup that holds processes cannot enable controllers for its children (the "no internal
   * processes" rule), so the executor first moves itself into a leaf of its own; if other processes share
   * its cgroup (not a delegated one), cgroups are not used.
   */
  private static delegateV2(own: string, leaf: string, logger: Logger): string | undefined {
    const available = (read(path.join(own, 'cgroup.controllers')) ?? '').split(/\s+/);
    if (!available.includes('memory') || !available.includes('pids')) {
      logger.debug({ own, available }, 'cgroup v2: memory or pids controller not available here');
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
      logger.info({ own, err: describeError(error) }, 'cgroup v2 controllers are not delegated to the executor (run it in its own cgroup: systemd Delegate=yes, or a container)');
      return undefined;
    }
  }

  /** Kills and removes step cgroups a previous executor run left behind. Returns how many. */
  async cleanupLeftovers(): Promise<number> {
    let count = 0;
    for (const base of this.layout.bases.values()) {
      let children: string[];
      try {
        children = fs.readdirSync(base, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => path.join(base, d.name));
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

  /** Removes this executor's base cgroups (when empty): at a clean stop nothing of it stays. */
  async close(): Promise<void> {
    await this.cleanupLeftovers();
    for (const base of this.layout.bases.values()) {
      try {
        fs.rmdirSync(base);
      } catch (error) {
        this.logger.debug({ cgroup: base, err: describeError(error) }, 'cannot remove the executor cgroup');
      }
    }
  }

  /** Makes the cgroup(s) of one step with its limits. */
  create(name: string, limits: CgroupLimits): StepCgroup {
    const dirs = new Map<string, string>();
    for (const [controller, base] of this.layout.bases) {
      const dir = path.join(base, name);
      fs.mkdirSync(dir);
      dirs.set(controller, dir);
    }
    const all = [...dirs.values()];
    const v2 = this.layout.version === 2 ? dirs.get('unified') : undefined;
    const memoryDir = v2 ?? dirs.get('memory');
    const pidsDir = v2 ?? dirs.get('pids');
    const cpuDir = v2 ?? dirs.get('cpuacct');
    if (limits.memory > 0 && memoryDir) {
      if (v2) {
        fs.writeFileSync(path.join(v2, 'memory.max'), String(Math.floor(limits.memory)));
        try {
          fs.writeFileSync(path.join(v2, 'memory.swap.max'), '0');
        } catch {
          // no swap accounting: memory.max alone
        }
      } else {
        fs.writeFileSync(path.join(memoryDir, 'memory.limit_in_bytes'), String(Math.floor(limits.memory)));
        try {
          // Memory plus swap: without it a step could swap its way past the limit.
          fs.writeFileSync(path.join(memoryDir, 'memory.memsw.limit_in_bytes'), String(Math.floor(limits.memory)));
        } catch {
          // no swap accounting on this kernel
        }
      }
    }
    if (limits.processes > 0 && pidsDir) fs.writeFileSync(path.join(pidsDir, 'pids.max'), String(Math.floor(limits.processes)));

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
      procsFiles: all.map((dir) => path.join(dir, 'cgroup.procs')),
      memoryLimited: limits.memory > 0 && memoryDir !== undefined,
      processesLimited: limits.processes > 0 && pidsDir !== undefined,
      cpuMs,
      facts: () => {
        let memoryKb: number | null = null;
        let oomKilled = false;
        let processLimitHit = false;
        if (memoryDir) {
          const peak = v2 ? readNumber(path.join(v2, 'memory.peak')) : readNumber(path.join(memoryDir, 'memory.max_usage_in_bytes'));
          memoryKb = peak === undefined ? null : Math.round(peak / 1024);
          const kills = v2 ? readKey(path.join(v2, 'memory.events'), 'oom_kill') : readKey(path.join(memoryDir, 'memory.oom_control'), 'oom_kill');
          oomKilled = (kills ?? 0) > 0;
        }
        if (pidsDir) processLimitHit = (readKey(path.join(pidsDir, 'pids.events'), 'max') ?? 0) > 0;
        return { cpuMs: cpuMs(), memoryKb, oomKilled, processLimitHit };
      },
      killAll: () => emptyCgroups(all),
      killNow: () => killPids([...new Set(all.flatMap(pidsIn))]),
      remove: async () => {
        await emptyCgroups(all);
        for (const dir of all) await removeDir(dir);
      },
    };
  }
}
