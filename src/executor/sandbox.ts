// The bubblewrap sandbox around a task step: its own mount, pid, ipc, uts and (unless the task may have
// it) network namespaces; the root file system read-only; a private /tmp, /var/tmp and /dev/shm; the
// kv2 role directories (configs with tokens, other tasks, logs) hidden; only the task's work dir
// writable. `auto` uses it where bwrap works and says so at start when it does not.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { findOnPath } from '../common/assets';
import { ConfigError } from '../common/errors';
import type { Logger } from '../common/logging';

export type SandboxMode = 'auto' | 'none' | 'bwrap';

/** How long the start-up probe of bwrap may take. */
const PROBE_TIMEOUT_MS = 10_000;

export class Sandbox {
  private constructor(
    readonly bwrap: string,
    private readonly asRoot: boolean,
    /** Directories tasks must not see (replaced by empty tmpfs). */
    private readonly hidden: string[],
  ) {}

  /**
   * The sandbox to use, or undefined for none. `bwrap` that does not work is a ConfigError (the
   * operator asked for it); `auto` falls back to none with a warning.
   */
  static detect(mode: SandboxMode, roleDir: string, logger: Logger): Sandbox | undefined {
    if (mode === 'none') {
      logger.warn('task sandbox is off (--main-task-sandbox none): tasks share the network, process table and file system view of the executor');
      return undefined;
    }
    const bwrap = findOnPath('bwrap');
    const asRoot = process.getuid?.() === 0;
    const problem = bwrap ? Sandbox.probe(bwrap, asRoot) : 'bwrap (bubblewrap) is not installed';
    if (problem) {
      if (mode === 'bwrap') throw new ConfigError(`--main-task-sandbox bwrap: ${problem}`);
      logger.warn({ reason: problem }, `no task sandbox: ${problem}; tasks run without namespaces (install bubblewrap, or allow user namespaces)`);
      return undefined;
    }
    const parent = path.dirname(roleDir);
    // Every kv2 role dir next to ours (standalone runs all three in one work dir), and ours.
    const hidden = ['judicator', 'executor', 'gateway', 'standalone']
      .map((role) => path.join(parent, role))
      .filter((dir) => dir === roleDir || fs.existsSync(dir));
    return new Sandbox(bwrap!, asRoot, [...new Set([roleDir, ...hidden])]);
  }

  private static probe(bwrap: string, asRoot: boolean): string | undefined {
    const args = [...Sandbox.namespaceArgs(asRoot, false), '--ro-bind', '/', '/', '--dev', '/dev', '--proc', '/proc', '--perms', '1777', '--tmpfs', '/tmp', '--', 'true'];
    const result = spawnSync(bwrap, args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: PROBE_TIMEOUT_MS, encoding: 'utf8' });
    if (result.error) return `bwrap cannot run: ${result.error.message}`;
    if (result.status !== 0) return `bwrap does not work here: ${(result.stderr || `exit ${result.status}`).trim().split('\n')[0]}`;
    return undefined;
  }

  private static namespaceArgs(asRoot: boolean, network: boolean): string[] {
    return [
      '--die-with-parent',
      ...(asRoot ? [] : ['--unshare-user']),
      '--unshare-pid',
      '--unshare-ipc',
      '--unshare-uts',
      '--unshare-cgroup-try',
      ...(network ? [] : ['--unshare-net']),
    ];
  }

  describe(): string {
    return `bwrap (${this.bwrap}): own mount, pid, ipc, uts and network namespaces, read-only root, only the task dir writable`;
  }

  /** The argv prefix that runs a command inside the sandbox with `workDir` as its only writable place. */
  wrap(workDir: string, network: boolean): string[] {
    const privateDirs = ['/tmp', '/var/tmp', '/dev/shm'].filter((dir) => dir === '/tmp' || dir === '/dev/shm' || fs.existsSync(dir));
    return [
      this.bwrap,
      ...Sandbox.namespaceArgs(this.asRoot, network),
      '--ro-bind', '/', '/',
      '--dev', '/dev',
      '--proc', '/proc',
      // Sticky and world-writable, as on any system: the task user must be able to use them.
      ...privateDirs.flatMap((dir) => ['--perms', '1777', '--tmpfs', dir]),
      ...this.hidden.flatMap((dir) => ['--tmpfs', dir]),
      '--bind', workDir, workDir,
      '--chdir', workDir,
      '--',
    ];
  }
}
