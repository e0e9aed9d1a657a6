// The bubblewrap sandbox around a task step: its own mount, pid, ipc, uts and (unless the task may have
// it) network namespaces; the root file system read-only; a private /tmp, /var/tmp and /dev/shm; the
// kv2 role directories (configs with tokens, other tasks, logs) hidden; only the task's work dir
// writable. `auto` (the default) and `bwrap` make it whichever way works here; when none does, the
// executor refuses to start (a ConfigError: exit 2) rather than run tasks unconfined. Only an explicit
// `--main-task-sandbox none` runs tasks without one. bwrap is the machine's own, else the copy embedded
// in kv2 (build/build.ts).
// bwrap runs as the task user in a user namespace of its own where the machine allows it (the step
// launcher switches to the task user and execs bwrap, which execs bash: one exec each); else, as root
// only, bwrap runs as root and setpriv switches to the task user inside it. In a container whose runtime
// masks parts of /proc (the kernel then refuses a new /proc in a user namespace) and that gives no
// CAP_SYS_ADMIN and CAP_NET_ADMIN for bwrap as root, the sandbox shows the container's /proc, read-only.
import fs from 'node:fs';
import path from 'node:path';
import { resolveSystemFirst } from '../common/assets';
import { ConfigError } from '../common/errors';
import type { Logger } from '../common/logging';
import type { StepLauncher } from './launcher';
import type { TaskIdentity } from './task-user';

export type SandboxMode = 'auto' | 'none' | 'bwrap';

/** How long the start-up probe of bwrap may take. */
const PROBE_TIMEOUT_MS = 10_000;
/** Bytes of a failed probe's output kept for its message. */
const PROBE_OUTPUT_BYTES = 4_096;

/** How the step reaches bwrap. */
type SandboxUser =
  /** bwrap runs as the task user (or the executor's own, not root), in a user namespace of its own. */
  | 'task-user'
  /** bwrap runs as root; the user switch happens inside it (setpriv). */
  | 'root';

/**
 * The ways a sandbox is made, best first: as the task user with a /proc of its own; as root (with
 * setpriv inside); as the task user with the outer /proc bound read-only (the sandbox's processes see
 * the container's process list).
 */
export type SandboxWay = 'task-user' | 'root' | 'task-user-outer-proc';
const WAYS: readonly SandboxWay[] = ['task-user', 'root', 'task-user-outer-proc'];

export interface SandboxProbe {
  launcher: StepLauncher;
  /** The ways to try, in order (default: all, best first; tests force one). */
  ways?: readonly SandboxWay[];
  /** The users tasks run as (the executor runs as root), or none (tasks run as the executor's user). */
  identities: readonly TaskIdentity[];
  /** Where task dirs are made: the task user must reach it by path for bwrap to bind its work dir. */
  dataDir: string;
}

/** Whether `identity` (no supplementary groups) may search `dir`. */
function searchable(stat: fs.Stats, identity: TaskIdentity): boolean {
  if (stat.uid === identity.uid) return (stat.mode & 0o100) !== 0;
  if (stat.gid === identity.gid) return (stat.mode & 0o010) !== 0;
  return (stat.mode & 0o001) !== 0;
}

/**
 * The first directory on the way to `dir` (`dir` itself excluded: the executor sets its mode) that
 * `identity` may not search, or undefined. Those that do not exist yet the executor makes searchable.
 */
function closedOnTheWay(dir: string, identity: TaskIdentity): string | undefined {
  const parts = path.resolve(dir).split('/').filter(Boolean);
  for (let i = 0; i < parts.length; i++) {
    const at = `/${parts.slice(0, i).join('/')}`;
    let stat: fs.Stats;
    try {
      stat = fs.statSync(at);
    } catch {
      return undefined;
    }
    if (!searchable(stat, identity)) return at;
  }
  return undefined;
}

/** `inner` is strictly below `outer`. */
function isInside(inner: string, outer: string): boolean {
  return inner.startsWith(`${outer}/`);
}

/** The directories strictly between `outer` and `inner`, outermost first. */
function between(outer: string, inner: string): string[] {
  const steps: string[] = [];
  for (let dir = path.dirname(inner); dir !== outer && isInside(dir, outer); dir = path.dirname(dir)) steps.unshift(dir);
  return steps;
}

export class Sandbox {
  private constructor(
    readonly bwrap: string,
    /** How bwrap is reached: as the task user (one exec per step) or as root with setpriv inside. */
    readonly user: SandboxUser,
    /** bwrap can keep the task from making user namespaces of its own (bwrap 0.8+). */
    private readonly disableUserns: boolean,
    /** Directories tasks must not see (replaced by empty tmpfs). */
    private readonly hidden: string[],
    /** A /proc of the sandbox's own pid namespace, or the outer one bound read-only (see SandboxWay). */
    readonly proc: 'own' | 'outer' = 'own',
    /** Why the better ways did not work here (for the start log). */
    readonly refused: readonly string[] = [],
  ) {}

  /**
   * The sandbox to use, or undefined for none (only when the operator said `none`). A sandbox that
   * cannot be made is a ConfigError saying why and what to do: the executor does not start.
   */
  static async detect(mode: SandboxMode, roleDir: string, logger: Logger, probe: SandboxProbe): Promise<Sandbox | undefined> {
    if (mode === 'none') {
      logger.warn('task sandbox is off (--main-task-sandbox none): tasks share the network, process table and file system view of the executor');
      return undefined;
    }
    let bwrap: string | undefined;
    const refused: string[] = [];
    try {
      const found = resolveSystemFirst('bwrap');
      bwrap = found?.path;
      if (found) logger.debug({ bwrap: found.path, source: found.source }, 'bwrap found');
    } catch (error) {
      refused.push(`the embedded bwrap cannot be extracted: ${(error as Error).message}`);
    }
    const parent = path.dirname(roleDir);
    // Every kv2 role dir next to ours (standalone runs all three in one work dir), and ours.
    const hide = [...new Set([roleDir, ...['judicator', 'executor', 'gateway', 'standalone'].map((role) => path.join(parent, role))])].filter((dir) => fs.existsSync(dir));
    if (!bwrap) {
      if (refused.length === 0) refused.push('bwrap (bubblewrap) is not installed and this kv2 carries none');
    } else {
      const asRoot = process.getuid?.() === 0;
      const closed = probe.identities.map((identity) => closedOnTheWay(probe.dataDir, identity)).find(Boolean);
      for (const way of probe.ways ?? WAYS) {
        const user: SandboxUser = way === 'root' ? 'root' : 'task-user';
        if (user === 'root' && !asRoot) continue;
        // As the task user: one exec per step. That needs user namespaces, and the task user must reach
        // its work dir by path (bwrap binds it as that user).
        if (user === 'task-user' && closed) {
          refused.push(`${way}: the task user cannot search ${closed} on the way to ${probe.dataDir}`);
          continue;
        }
        const proc = way === 'task-user-outer-proc' ? 'outer' : 'own';
        let problem: string | undefined;
        for (const disableUserns of user === 'task-user' ? [true, false] : [false]) {
          const candidate = new Sandbox(bwrap, user, disableUserns, hide, proc, [...refused]);
          problem = await candidate.probe(probe, user === 'task-user' ? probe.identities[0] : undefined);
          if (!problem) {
            if (refused.length) logger.info({ refused }, `task sandbox made ${candidate.how()}: the better ways do not work here`);
            return candidate;
          }
        }
        refused.push(`${way}: ${problem}`);
      }
    }
    const problem = refused.join('; ');
    throw new ConfigError(
      `no working task sandbox (--main-task-sandbox ${mode}): ${problem}. Allow user namespaces (sysctl kernel.unprivileged_userns_clone=1, ` +
        'user.max_user_namespaces > 0), run the executor as root, or in a container give it what docs/isolation.md says; ' +
        'or start it with --main-task-sandbox none to run tasks without a sandbox (docs/security.md says what that leaves open)',
    );
  }

  /** Runs `true` in this sandbox through the step launcher; undefined when it works, else why not. */
  private async probe(probe: SandboxProbe, identity: TaskIdentity | undefined): Promise<string | undefined> {
    const output: Buffer[] = [];
    let size = 0;
    const keep = (chunk: Buffer) => {
      if (size < PROBE_OUTPUT_BYTES) output.push(chunk);
      size += chunk.length;
    };
    const argv = [...this.namespaceArgs(false), '--ro-bind', '/', '/', '--dev', '/dev', ...this.procArgs(), '--perms', '1777', '--tmpfs', '/tmp', ...this.hidden.flatMap((dir) => ['--tmpfs', dir]), '--', 'true'];
    const step = probe.launcher.launch(
      {
        argv: [this.bwrap, ...argv],
        cwd: '/',
        env: { PATH: process.env.PATH || '/usr/bin:/bin' },
        ...(identity ? { user: { uid: identity.uid, gid: identity.gid } } : {}),
        stdinFile: null,
        outputLimit: PROBE_OUTPUT_BYTES,
      },
      { stdout: keep, stderr: keep },
    );
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), PROBE_TIMEOUT_MS);
    });
    const end = await Promise.race([step.ended, timedOut]);
    clearTimeout(timer);
    if (end === 'timeout') {
      try {
        if (step.pid !== undefined) process.kill(-step.pid, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
      await step.closed;
      return `bwrap did not finish within ${PROBE_TIMEOUT_MS} ms`;
    }
    await step.closed;
    if (end.error) return `bwrap cannot run: ${end.error}`;
    if (end.exitCode !== 0) {
      const said = Buffer.concat(output).toString('utf8').trim().split('\n')[0];
      return `bwrap does not work here${this.user === 'task-user' ? ' as the task user' : ''}: ${said || `exit ${end.exitCode ?? end.signal}`}`;
    }
    return undefined;
  }

  private namespaceArgs(network: boolean): string[] {
    return [
      '--die-with-parent',
      ...(this.user === 'task-user' ? ['--unshare-user', ...(this.disableUserns ? ['--disable-userns'] : [])] : []),
      '--unshare-pid',
      '--unshare-ipc',
      '--unshare-uts',
      '--unshare-cgroup-try',
      ...(network ? [] : ['--unshare-net']),
    ];
  }

  /** A /proc of its own, or the outer one read-only. */
  private procArgs(): string[] {
    return this.proc === 'own' ? ['--proc', '/proc'] : ['--ro-bind', '/proc', '/proc'];
  }

  private how(): string {
    if (this.user === 'root') return 'as root, setpriv to the task user inside';
    return `as the task user in its own user namespace${this.proc === 'outer' ? ", with the outer /proc" : ''}`;
  }

  describe(): string {
    const outer = this.proc === 'outer'
      ? "; /proc is the outer one (the container's), read-only: tasks can list its processes and their command lines (a new /proc is refused under the container runtime's masks: see docs/isolation.md)"
      : '';
    return `bwrap (${this.bwrap}, ${this.how()}): own mount, pid, ipc, uts and network namespaces, read-only root, only the task dir writable${outer}`;
  }

  /** The argv prefix that runs a command inside the sandbox with `workDir` as its only writable place. */
  wrap(workDir: string, network: boolean): string[] {
    const privateDirs = ['/tmp', '/var/tmp', '/dev/shm'].filter((dir) => dir === '/tmp' || dir === '/dev/shm' || fs.existsSync(dir));
    return [
      this.bwrap,
      ...this.namespaceArgs(network),
      '--ro-bind', '/', '/',
      '--dev', '/dev',
      ...this.procArgs(),
      // Sticky and world-writable, as on any system: the task user must be able to use them.
      ...privateDirs.flatMap((dir) => ['--perms', '1777', '--tmpfs', dir]),
      ...this.hidden.flatMap((dir) => [...(isInside(workDir, dir) ? ['--perms', '0111'] : []), '--tmpfs', dir]),
      // The way to the work dir through a hidden dir: searchable, not listable, not even by the task user
      // who owns it when bwrap runs as that user (it would find only its own task there anyway).
      ...this.hidden.filter((dir) => isInside(workDir, dir)).flatMap((dir) => between(dir, workDir).flatMap((step) => ['--perms', '0111', '--dir', step])),
      '--bind', workDir, workDir,
      '--chdir', workDir,
      '--',
    ];
  }
}
