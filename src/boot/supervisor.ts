// The supervisor (the original's "boot"): starts a role's modules as child processes in order, restarts
// any that dies (with a backoff), leaves alone a module whose pid-file lock someone else holds (the
// maintenance shell), and on SIGINT/SIGTERM stops the modules in reverse order within a grace period.
// A module that exits with MODULE_CONFIG_ERROR_EXIT found something no restart can fix (its config, a
// store with no mongod, an unusable data dir, no working task sandbox): the supervisor then stops every
// module and the role ends with that reason, instead of restarting it forever.
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { z } from 'zod';
import { describeError } from '../common/errors';
import type { Logger } from '../common/logging';
import { exited, forEachLine, signalGroup, spawnInGroup, stopChild } from '../common/processes';
import { logSchema } from './config-files';
import { PidFileLock, writePidFile } from './pid-lock';

export const bootConfigSchema = z.object({
  command: z.string(),
  /** Seconds between checks of every module (the original's check_interval). */
  check_interval: z.number().positive(),
  /** Seconds a module gets to exit after SIGINT before its process group is killed. */
  grace_period: z.number().positive(),
  restart_backoff: z.object({
    /** Seconds before the first restart of a module that died. */
    initial: z.number().positive(),
    /** The backoff doubles per consecutive failure, up to this many seconds. */
    max: z.number().positive(),
    /** A module that ran this many seconds counts as healthy again (backoff reset). */
    reset_after: z.number().positive(),
  }),
  modules: z
    .array(
      z.object({
        name: z.string().min(1),
        role_dir: z.string().min(1),
        pid_file: z.string().min(1),
        command: z.array(z.string()).min(1),
        /** Seconds this module gets to stop, when it needs more than grace_period (an executor draining). */
        grace_period: z.number().positive().optional(),
      }),
    )
    .min(1),
  log: logSchema,
});
export type BootConfig = z.infer<typeof bootConfigSchema>;

/** Exit code a module uses for "my configuration cannot work": a restart would fail the same way. */
export const MODULE_CONFIG_ERROR_EXIT = 2;

/** A module that ended the role, and why (its last line on stderr). */
export interface FatalModuleExit {
  module: string;
  reason: string;
}

/** Lines of a module's stderr kept to say why it ended. */
const STDERR_LINES_KEPT = 5;
/** Milliseconds a module that exited gets for the rest of its stderr to be read. */
const STDERR_SETTLE_MS = 1_000;

/** Resolves once `child`'s stderr is read to its end, or after `ms`. */
function streamDone(child: ChildProcess, ms: number): Promise<void> {
  const stream = child.stderr;
  if (!stream || stream.readableEnded || stream.destroyed) return new Promise((resolve) => setImmediate(resolve));
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    stream.once('close', () => {
      clearTimeout(timer);
      // readline hands out the last line on the same tick as 'close': let it.
      setImmediate(resolve);
    });
  });
}

interface ManagedModule {
  name: string;
  label: string;
  roleDir: string;
  pidFile: string;
  command: string[];
  graceSeconds: number;
  lock: PidFileLock;
  child?: ChildProcess;
  startedAt: number;
  failures: number;
  restartAt: number;
  /** Whether the last check found the lock held by someone else (so we log the change, not every check). */
  skipping: boolean;
  /** Its last lines on stderr (why it exited, when it says). */
  stderr: string[];
}

export class Supervisor {
  private readonly modules: ManagedModule[];
  private wake: (() => void) | undefined;
  private stopping = false;
  private fatalExit: FatalModuleExit | undefined;

  constructor(
    private readonly config: BootConfig,
    private readonly logger: Logger,
  ) {
    this.modules = config.modules.map((m) => {
      const roleDir = m.role_dir;
      const label = config.modules.filter((o) => o.name === m.name).length > 1 ? `${path.basename(roleDir)}/${m.name}` : m.name;
      const pidFile = path.resolve(roleDir, m.pid_file);
      return {
        name: m.name,
        label,
        roleDir,
        pidFile,
        command: m.command,
        graceSeconds: Math.max(m.grace_period ?? 0, config.grace_period),
        lock: new PidFileLock(pidFile, `kv2 ${config.command} supervisor`),
        startedAt: 0,
        failures: 0,
        restartAt: 0,
        skipping: false,
        stderr: [],
      };
    });
  }

  /** Pids (= process groups) of the modules running now. */
  modulePids(): number[] {
    return this.modules.flatMap((m) => (m.child?.pid === undefined ? [] : [m.child.pid]));
  }

  /** The module whose configuration cannot work, once one said so: the role ends. */
  get fatal(): FatalModuleExit | undefined {
    return this.fatalExit;
  }

  /**
   * Runs until `signal` aborts or a module's configuration cannot work (see `fatal`), then stops every
   * module. Resolves when all are stopped and reaped. `stopSignal()` says what to send them: SIGTERM (a
   * rolling update: executors drain) or SIGINT.
   */
  async run(signal: AbortSignal, stopSignal: () => NodeJS.Signals = () => 'SIGINT'): Promise<void> {
    signal.addEventListener('abort', () => this.wake?.(), { once: true });
    this.logger.info({ modules: this.modules.map((m) => m.label) }, `kv2 ${this.config.command} supervisor started`);
    while (!signal.aborted && !this.fatalExit?.reason) {
      for (const module of this.modules) {
        if (signal.aborted || this.fatalExit) break;
        this.check(module);
      }
      await this.waitForNextCheck(signal);
    }
    await this.stopAll(this.fatalExit ? 'SIGINT' : stopSignal());
    this.logger.info(`kv2 ${this.config.command} supervisor exiting`);
  }

  private check(module: ManagedModule): void {
    if (module.child) return; // running; its exit event wakes us
    if (Date.now() < module.restartAt) return; // backing off after a failure
    if (!module.lock.tryAcquire()) {
      if (!module.skipping) {
        const holder = module.lock.holder();
        this.logger.warn(
          { module: module.label, lock: module.lock.lockFile, holder },
          `${module.label} is locked by ${holder ? `${holder.what} (pid ${holder.pid})` : 'another process'}; ` +
            'leaving it alone until the lock is released',
        );
      }
      module.skipping = true;
      return;
    }
    try {
      if (module.skipping) this.logger.info({ module: module.label }, `${module.label} lock released; checking it again`);
      module.skipping = false;
      this.start(module);
    } catch (error) {
      this.logger.error({ module: module.label, err: describeError(error) }, `could not start ${module.label}`);
      this.scheduleRestart(module);
    } finally {
      module.lock.release();
    }
  }

  private start(module: ManagedModule): void {
    const [command, ...args] = module.command;
    writePidFile(module.pidFile, undefined);
    const child = spawnInGroup(command!, args, { cwd: module.roleDir, stdio: ['ignore', 'inherit', 'pipe'] });
    if (child.pid === undefined) throw new Error(`spawn of ${command} failed`);
    module.child = child;
    module.startedAt = Date.now();
    writePidFile(module.pidFile, child.pid);
    this.logger.info({ module: module.label, pid: child.pid }, `${module.label} is down; started it (pid ${child.pid})`);
    // A module's stderr is only used before its own log exists or when it crashes: keep it in the boot log.
    module.stderr = [];
    forEachLine(child.stderr, (line) => {
      module.stderr = [...module.stderr, line].slice(-STDERR_LINES_KEPT);
      this.logger.warn({ module: module.label, stderr: line }, `${module.label}: ${line}`);
    });
    child.once('error', (error) => this.logger.error({ module: module.label, err: describeError(error) }, `${module.label} failed`));
    void exited(child).then((status) => this.onExit(module, child, status));
  }

  private onExit(module: ManagedModule, child: ChildProcess, status: number | NodeJS.Signals): void {
    // Anything the module started and left behind (etcd if the module was killed) goes with it.
    if (child.pid !== undefined) signalGroup(child.pid, 'SIGKILL');
    if (module.child !== child) return;
    module.child = undefined;
    if (this.stopping) return;
    const ranFor = (Date.now() - module.startedAt) / 1000;
    if (status === MODULE_CONFIG_ERROR_EXIT) {
      // Its stderr's last line is its one-line reason (module-process writes it there): read to its end first.
      this.fatalExit = { module: module.label, reason: '' };
      void streamDone(child, STDERR_SETTLE_MS).then(() => {
        const reason = module.stderr.at(-1)?.trim() || `see log/${module.name}/${module.name}.log in ${module.roleDir}`;
        this.fatalExit = { module: module.label, reason };
        this.logger.fatal({ module: module.label, status, ranFor, reason }, `${module.label} cannot run as configured, and a restart would not change that: ${reason}`);
        this.wake?.();
      });
      return;
    }
    this.logger.warn({ module: module.label, status, ranFor }, `${module.label} exited (${status}) after ${ranFor.toFixed(1)} s; see log/${module.name}/${module.name}.log in ${module.roleDir}`);
    this.scheduleRestart(module);
    this.wake?.();
  }

  private scheduleRestart(module: ManagedModule): void {
    const backoff = this.config.restart_backoff;
    const ranFor = (Date.now() - module.startedAt) / 1000;
    module.failures = ranFor >= backoff.reset_after ? 1 : module.failures + 1;
    const delay = Math.min(backoff.initial * 2 ** (module.failures - 1), backoff.max);
    module.restartAt = Date.now() + delay * 1000;
  }

  private waitForNextCheck(signal: AbortSignal): Promise<void> {
    if (signal.aborted) return Promise.resolve();
    const now = Date.now();
    let delay = this.config.check_interval * 1000;
    for (const module of this.modules) {
      if (!module.child && module.restartAt > now) delay = Math.min(delay, module.restartAt - now);
    }
    return new Promise((resolve) => {
      const timer = setTimeout(done, Math.max(delay, 10));
      const wake = () => done();
      this.wake = wake;
      function done() {
        clearTimeout(timer);
        resolve();
      }
    });
  }

  /** Stops modules in reverse start order; each gets `signal` and its grace period, then SIGKILL. */
  private async stopAll(signal: NodeJS.Signals): Promise<void> {
    this.stopping = true;
    for (const module of [...this.modules].reverse()) {
      const child = module.child;
      if (!child) continue;
      this.logger.info({ module: module.label, pid: child.pid }, `stopping ${module.label} (${signal}, ${module.graceSeconds} s grace)`);
      await stopChild(child, { signal, graceMs: module.graceSeconds * 1000 });
      module.child = undefined;
      this.logger.info({ module: module.label }, `${module.label} stopped`);
    }
  }
}
