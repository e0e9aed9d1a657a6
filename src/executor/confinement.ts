// How a task's steps are confined: who owns the work dir, what the step launcher starts for a step
// (`bash compile.sh`, in the sandbox where there is one), as whom, with what environment, rlimits and
// cgroups, and the extra containment (cgroup) around it. The runner asks this. PlainConfinement runs
// `bash` directly with a clean environment; HostConfinement adds everything the machine allows (issue 5),
// with one exec per step: each exec costs milliseconds.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { findOnPath } from '../common/assets';
import { signalGroup } from '../common/processes';
import { ConfigError } from '../common/errors';
import type { Logger } from '../common/logging';
import type { ExecutorSandbox, StepLimits, StopReason } from '../task/types';
import { Cgroups, type CgroupFacts } from './cgroups';
import { StepLauncher, type StepCommand } from './launcher';
import { effectiveLimits, stepRlimits, type LimitSettings, type LimitValues } from './limits';
import { Sandbox, type SandboxMode, type SandboxWay } from './sandbox';
import type { StepContainment, StepEnd } from './step';
import { TaskUsers, chownTree, setprivArgs, type TaskIdentity } from './task-user';
import type { StepName, TaskPaths } from './workdir';

export interface StepRequest {
  step: StepName;
  slot: number;
  paths: TaskPaths;
  /** The script in the work dir: compile.sh or execute.sh. */
  script: string;
  /** Issue 17: the dir the step runs in instead of the task's work dir (a checker's own). */
  workDir?: string;
  /** Issue 17: a program to run instead of `bash <script>` (a checker: an absolute path, and its arguments). */
  argv?: readonly string[];
  /** What the task asked for (bounded by the executor's maxima). */
  limits: StepLimits | undefined;
  /** The task asks for network access. */
  network: boolean;
  /** The executor's default output cap per stream. */
  outputLimit: number;
}

export interface StepPlan {
  /** What the step launcher starts, as whom, with which rlimits and cgroups. */
  command: StepCommand;
  launcher: StepLauncher;
  /** Bytes kept per stream for this step. */
  outputLimit: number;
  /** The limits the step runs with, where the confinement applies any (a step is judged against them). */
  limits?: LimitValues;
  containment?: StepContainment;
  /** Called once the step is over (removes its cgroup...). */
  dispose?(): Promise<void>;
}

export interface Confinement {
  /** Tasks run as other users than the executor's (the data dir must let them reach their dirs). */
  readonly usesTaskUsers?: boolean;
  /** The user a slot's tasks run as, when it is not the executor's own (issue 17: who owns a test's dir). */
  identity?(slot: number): TaskIdentity | undefined;
  /** Readies a freshly laid out task dir (ownership, modes) before its first step. */
  prepare(slot: number, paths: TaskPaths): Promise<void>;
  plan(request: StepRequest): Promise<StepPlan>;
  /** After the task: anything left of its confinement goes (the dir itself is the runner's). */
  release(slot: number, taskDir: string): Promise<void>;
  /** When the executor stops, after its last task: stops the step launcher. */
  close?(): Promise<void>;
}

const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/**
 * A task's whole environment: PATH, HOME (its work dir) and LANG. Nothing of the executor's
 * (tokens, cluster addresses) reaches a task.
 */
export function taskEnvironment(home: string): NodeJS.ProcessEnv {
  return { PATH: taskPath(), HOME: home, LANG: process.env.LANG || 'C.UTF-8' };
}

/** The PATH a task gets: the executor's own, else the usual one. */
export function taskPath(): string {
  return process.env.PATH || DEFAULT_PATH;
}

/** No user switch, no limits, no sandbox: `bash <script>` in the work dir with a clean environment. */
export class PlainConfinement implements Confinement {
  readonly usesTaskUsers = false;
  private readonly launcher: StepLauncher;
  private readonly bash = findOnPath('bash') ?? '/bin/bash';

  constructor(logger?: Logger) {
    this.launcher = new StepLauncher(logger);
  }

  /** The step launcher's pid while it runs. */
  get launcherPid(): number | undefined {
    return this.launcher.pid;
  }

  async prepare(): Promise<void> {}

  async plan(request: StepRequest): Promise<StepPlan> {
    const workDir = request.workDir ?? request.paths.workDir;
    return {
      command: { argv: request.argv ?? [this.bash, request.script], cwd: workDir, env: taskEnvironment(workDir) },
      launcher: this.launcher,
      outputLimit: Math.min(request.limits?.output ?? request.outputLimit, request.outputLimit),
    };
  }

  async release(): Promise<void> {}

  async close(): Promise<void> {
    await this.launcher.close();
  }
}

/**
 * How often a running step's cgroup is checked against its CPU and process limits: every LIMIT_WATCH_MS,
 * or a tenth of a CPU limit under a second (at least LIMIT_WATCH_MIN_MS), so that a step over a limit
 * in milliseconds is stopped soon after it (it is judged by its measured time either way).
 */
const LIMIT_WATCH_MS = 100;
const LIMIT_WATCH_MIN_MS = 10;

function watchInterval(cpuSeconds: number): number {
  if (cpuSeconds <= 0) return LIMIT_WATCH_MS;
  return Math.max(LIMIT_WATCH_MIN_MS, Math.min(LIMIT_WATCH_MS, Math.round(cpuSeconds * 100)));
}
/** Exit codes of a shell whose last command died of SIGXCPU / SIGXFSZ (128 + signal). */
const EXIT_XCPU = 128 + 24;
const EXIT_XFSZ = 128 + 25;

export interface HostConfinementOptions {
  limits: LimitSettings;
  /** Starts every step (one per executor). */
  launcher: StepLauncher;
  /** Task users (the executor runs as root); undefined: tasks run as the executor's user. */
  users?: TaskUsers;
  /** Only for a sandbox that runs as root: the user switch inside it. */
  setpriv?: string;
  /** Absolute path of bash (found once, not searched on PATH at every step). */
  bash?: string;
  cgroups?: Cgroups;
  sandbox?: Sandbox;
  /** Without a sandbox: each step gets private /tmp, /var/tmp and /dev/shm from the step launcher. */
  privateTmp?: boolean;
  /** Tasks that ask for the network get it (with the sandbox; without one they have it anyway). */
  allowNetwork: boolean;
  /** What the executor registers of its confinement (/api/executors, the UI, kv2 status); createConfinement's. */
  state?: ExecutorSandbox;
}

/**
 * The real confinement: the step as the task's user, with rlimits, in its own cgroup and sandbox. The
 * step launcher forks, joins the cgroups, sets the rlimits, switches to the task user and execs bash
 * (or bwrap, which execs bash): one exec per step. Only a sandbox that must run as root (no user
 * namespaces here) puts setpriv between bwrap and bash.
 */
export class HostConfinement implements Confinement {
  constructor(private readonly options: HostConfinementOptions) {}

  get usesTaskUsers(): boolean {
    return this.options.users !== undefined;
  }

  identity(slot: number): TaskIdentity | undefined {
    return this.options.users?.forSlot(slot);
  }

  /** The step launcher's pid while it runs. */
  get launcherPid(): number | undefined {
    return this.options.launcher.pid;
  }

  /** How tasks are confined here, as the executor registers it. */
  get state(): ExecutorSandbox {
    const { sandbox } = this.options;
    return this.options.state ?? { kind: sandbox ? 'bwrap' : 'none', how: sandbox?.describe() ?? 'none', network: networkOf(sandbox, this.options.allowNetwork), limits: {} };
  }

  /** Who runs bwrap: the task user (one exec per step) or root; undefined without a sandbox. */
  get sandboxUser(): Sandbox['user'] | undefined {
    return this.options.sandbox?.user;
  }

  async prepare(slot: number, paths: TaskPaths): Promise<void> {
    const identity = this.options.users?.forSlot(slot);
    if (!identity) return;
    chownTree(paths.workDir, identity);
    fs.chmodSync(paths.workDir, 0o700);
    // Traversable, not listable: the task reaches its own dir by its absolute path (HOME) even without
    // a sandbox, and sees nothing else of the executor's.
    fs.chmodSync(paths.taskDir, 0o711);
  }

  async plan(request: StepRequest): Promise<StepPlan> {
    const { options } = this;
    const limits = effectiveLimits(options.limits, request.limits);
    const identity = options.users?.forSlot(request.slot);
    const workDir = request.workDir ?? request.paths.workDir;
    const cgroup = options.cgroups && (await options.cgroups.create(request.slot, { memory: limits.memory, processes: limits.processes }));
    const askedMemory = request.limits?.memory !== undefined || request.limits?.memory_kb !== undefined;
    const rlimits = stepRlimits(limits, {
      // Without a memory cgroup only a task's own memory request is enforced, as address space.
      addressSpace: cgroup?.memoryLimited || !askedMemory ? 0 : limits.memory,
      processes: cgroup?.processesLimited || !options.users?.dedicated ? 0 : limits.processes,
    });
    const bash = request.argv ?? [options.bash ?? 'bash', request.script];
    const sandbox = options.sandbox;
    // A sandbox run as root switches to the task user inside it; everything else switches in the launcher.
    const userInside = sandbox?.user === 'root' && identity !== undefined;
    const argv = [
      ...(sandbox ? sandbox.wrap(workDir, options.allowNetwork && request.network) : []),
      ...(userInside ? setprivArgs(options.setpriv!, identity) : []),
      ...bash,
    ];
    const command: StepCommand = {
      argv,
      cwd: workDir,
      env: taskEnvironment(workDir),
      ...(identity && !userInside ? { user: { uid: identity.uid, gid: identity.gid } } : {}),
      rlimits,
      cgroups: cgroup?.procsFiles ?? [],
      ...(options.privateTmp && !sandbox ? { privateTmp: true } : {}),
    };

    const containment: StepContainment | undefined = cgroup && {
      watch: (stop) => {
        const timer = setInterval(() => {
          const facts = cgroup.facts();
          if (facts.processLimitHit) stop('processes');
          else if (facts.oomKilled) stop('memory');
          else if (limits.cpu_time > 0 && (facts.cpuMs ?? 0) > limits.cpu_time * 1000) stop('cpu_time');
        }, watchInterval(limits.cpu_time));
        return () => clearInterval(timer);
      },
      killAll: () => cgroup.killAll(),
      killNow: () => cgroup.killNow(),
      collect: async (end) => {
        const facts = cgroup.facts();
        return { cpuMs: facts.cpuMs, memoryKb: facts.memoryKb, stopped: limitStop(limits, end, facts) };
      },
    };
    return {
      command,
      launcher: options.launcher,
      outputLimit: limits.output,
      limits,
      ...(containment ? { containment } : { containment: rlimitOnly(limits) }),
      // Removed in the background: the task's result does not wait for the kernel to tear it down.
      dispose: cgroup ? async () => options.cgroups!.retire(cgroup.dirs, request.slot) : undefined,
    };
  }

  async release(): Promise<void> {}

  async close(): Promise<void> {
    await this.options.launcher.close();
    await this.options.cgroups?.close();
  }
}

/** Which limit stopped a step, from its cgroup's counters and how it ended. */
function limitStop(limits: LimitValues, end: StepEnd, facts: CgroupFacts | undefined): StopReason | null {
  if (facts?.oomKilled) return 'memory';
  if (facts?.processLimitHit) return 'processes';
  const code = end.exitCode;
  if (limits.cpu_time > 0 && (end.signal === 'SIGXCPU' || code === EXIT_XCPU || (facts?.cpuMs ?? 0) > limits.cpu_time * 1000)) return 'cpu_time';
  if (limits.file_size > 0 && (end.signal === 'SIGXFSZ' || code === EXIT_XFSZ)) return 'file_size';
  return null;
}

/** Without a cgroup, only the rlimits' signals tell that a limit stopped the step. */
function rlimitOnly(limits: LimitValues): StepContainment {
  return {
    killAll: async () => undefined,
    collect: async (end) => ({ cpuMs: null, memoryKb: null, stopped: limitStop(limits, end, undefined) }),
  };
}

/** Everything the executor found about confining tasks on this machine, ready to use. */
export async function createConfinement(
  settings: {
    userGroup: string | null;
    slots: number;
    sandbox: SandboxMode;
    /** The ways of making the sandbox to try (default: all, best first; tests force one). */
    sandboxWays?: readonly SandboxWay[];
    allowNetwork: boolean;
    limits: LimitSettings;
    executorName: string;
    roleDir: string;
    /** Where task dirs are made; data/main of the role dir by default. */
    dataDir?: string;
  },
  logger: Logger,
): Promise<HostConfinement> {
  const asRoot = process.getuid?.() === 0;
  const bash = findOnPath('bash');
  const users = TaskUsers.resolve(settings.userGroup, settings.slots, logger);
  // Named by executor and role dir: two executors with one name on one machine must not share it.
  const instance = `${settings.executorName}-${createHash('sha256').update(settings.roleDir).digest('hex').slice(0, 8)}`;
  const cgroupProblems: string[] = [];
  const cgroups = Cgroups.detect(instance, logger, cgroupProblems);
  if (cgroups) {
    const left = await cgroups.cleanupLeftovers();
    if (left > 0) logger.info({ cgroups: left }, `removed ${left} cgroup(s) left by a previous run`);
  }
  // Started after the cgroups are set up: on cgroup v2 the executor may have moved itself into a leaf
  // first, and its children must be born there.
  const launcher = new StepLauncher(logger);
  try {
    await launcher.start();
    const dataDir = settings.dataDir ?? path.join(settings.roleDir, 'data', 'main');
    const sandbox = await Sandbox.detect(settings.sandbox, settings.roleDir, logger, { launcher, identities: users?.all() ?? [], dataDir, ways: settings.sandboxWays });
    const setpriv = sandbox?.user === 'root' && users ? findOnPath('setpriv') : undefined;
    const enforced = limitEnforcement({ cgroups, cgroupProblem: cgroupProblems.join('; '), dedicatedUsers: users?.dedicated ?? false });
    if (sandbox?.user === 'root' && users && !setpriv) throw new ConfigError('setpriv (util-linux) is needed to run sandboxed tasks as another user where bwrap must run as root; install util-linux');
    // Without a sandbox the step launcher still gives each step its own /tmp and /dev/shm, as root.
    const scratch = sandbox ? undefined : await privateScratch(launcher, asRoot);
    const network = networkOf(sandbox, settings.allowNetwork);
    const state: ExecutorSandbox = {
      kind: sandbox ? 'bwrap' : 'none',
      how: sandbox
        ? sandbox.describe()
        : `none (--main-task-sandbox none): tasks see the executor's file system (kv2's own dirs are 0700), process table and network; ${scratch?.ok ? 'each step has its own /tmp, /var/tmp and /dev/shm (a mount namespace of the step launcher\'s), emptied when it ends' : `/tmp and /dev/shm are the machine's, shared by every task (${scratch?.why})`}`,
      network,
      limits: enforced,
    };
    logger.info(
      {
        user: asRoot ? (settings.userGroup ?? 'one kv2-task-<slot> user per slot') : 'the executor\'s own',
        launcher: `one exec per step${sandbox?.user === 'root' ? ' (bwrap, setpriv, bash in the sandbox)' : ''}`,
        sandbox: state.how,
        ...(sandbox?.refused.length ? { sandbox_refused: sandbox.refused.join('; ') } : {}),
        cgroups: cgroups?.describe() ?? `none: ${cgroupProblems.join('; ')}`,
        rlimits: 'setrlimit by the step launcher, to the byte',
        enforced,
        limits: settings.limits,
        network,
      },
      'task confinement',
    );
    if (!sandbox) logger.warn({ sandbox: state.how }, `tasks run WITHOUT a sandbox (--main-task-sandbox none): ${state.how}`);
    const weak = Object.entries(enforced).filter(([, how]) => how.startsWith(NOT_ENFORCED) || how.startsWith(PARTLY));
    if (weak.length) {
      const container = inContainer();
      logger.warn(
        { limits: Object.fromEntries(weak), in_container: container },
        `task limits this executor cannot fully enforce here: ${weak.map(([limit]) => limit).join(', ')}${container ? ' (in a container: docs/isolation.md says what to give it)' : ''}`,
      );
    }
    return new HostConfinement({
      limits: settings.limits,
      launcher,
      users,
      setpriv,
      bash,
      cgroups,
      sandbox,
      privateTmp: scratch?.ok ?? false,
      allowNetwork: settings.allowNetwork,
      state,
    });
  } catch (error) {
    await launcher.close();
    await cgroups?.close();
    throw error;
  }
}

/** What a task's network is, in words an operator can check (the start log used to say "off" for loopback). */
function networkOf(sandbox: Sandbox | undefined, allowNetwork: boolean): string {
  if (!sandbox) return "the host's network, loopback included (no sandbox: tasks reach every service this machine can)";
  const own = 'a network namespace of its own with only its own loopback (no route to this machine\'s or any other\'s services)';
  return allowNetwork ? `the host's network when a task asks (network=1); otherwise ${own}` : own;
}

/** How long the probe of the step launcher's private /tmp may take. */
const SCRATCH_PROBE_MS = 10_000;

/** Whether the step launcher can give a step its own /tmp and /dev/shm here (root, mount namespaces). */
async function privateScratch(launcher: StepLauncher, asRoot: boolean): Promise<{ ok: boolean; why?: string }> {
  if (!asRoot) return { ok: false, why: 'the executor does not run as root, and a private /tmp needs a mount namespace' };
  const program = findOnPath('true');
  if (!program) return { ok: false, why: 'no true(1) to probe with' };
  const step = launcher.launch(
    { argv: [program], cwd: '/', env: {}, stdinFile: null, outputLimit: 1024, privateTmp: true },
    { stdout: () => undefined, stderr: () => undefined },
  );
  let timer: NodeJS.Timeout | undefined;
  const end = await Promise.race([step.ended, new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), SCRATCH_PROBE_MS)))]);
  clearTimeout(timer);
  if (!end) {
    if (step.pid !== undefined) signalGroup(step.pid, 'SIGKILL');
    return { ok: false, why: `the probe did not finish within ${SCRATCH_PROBE_MS} ms` };
  }
  await step.closed;
  if (end.error || end.exitCode !== 0) return { ok: false, why: end.error ?? `the probe exited ${end.exitCode ?? end.signal}` };
  return { ok: true };
}

const NOT_ENFORCED = 'NOT ENFORCED';
const PARTLY = 'PARTLY';

/**
 * Each limit and what enforces it on this machine, or why nothing (fully) does: said once at start, so
 * that an operator learns it from the log and not from a task that ate the machine.
 */
export function limitEnforcement(facts: { cgroups: Cgroups | undefined; cgroupProblem: string; dedicatedUsers: boolean }): Record<string, string> {
  const { cgroups } = facts;
  const noCgroup = (controller: string) => `no ${controller} cgroup (${facts.cgroupProblem || 'none found'})`;
  return {
    wall_time: "the executor's timer, then the step's whole process group is killed",
    output: 'the step launcher stops a step whose output passes the cap',
    cpu_time: `RLIMIT_CPU${cgroups ? ', measured by the cgroup' : ''}`,
    file_size: 'RLIMIT_FSIZE',
    memory: cgroups?.memory
      ? "the step's memory cgroup"
      : `${PARTLY}: ${noCgroup('memory')}: only a memory limit a task asks for, as RLIMIT_AS (address space); the executor's default memory limit is not applied`,
    processes: cgroups?.pids
      ? "the step's pids cgroup"
      : facts.dedicatedUsers
        ? `RLIMIT_NPROC of the slot's own task user (${noCgroup('pids')})`
        : `${NOT_ENFORCED}: ${noCgroup('pids')}, and tasks do not have a user each (RLIMIT_NPROC counts every process of a user), so no rlimit stands in`,
  };
}

/** Whether this process runs in a container (docker's and podman's marker files). */
function inContainer(): boolean {
  return fs.existsSync('/.dockerenv') || fs.existsSync('/run/.containerenv');
}
