// Who a task runs as. An executor running as root never runs tasks as root: with --main-task-user-group
// every task runs as that user and group; by default each slot has a dedicated unprivileged user
// (kv2-task-<slot>, created here), so tasks running at the same time cannot read each other's files or
// signal each other even without a sandbox; if users cannot be created, `nobody`. Supplementary groups
// are always dropped. An executor not running as root runs tasks as itself.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ConfigError, describeError } from '../common/errors';
import type { Logger } from '../common/logging';

export interface TaskIdentity {
  uid: number;
  gid: number;
  name: string;
}

/** Attempts at creating a user while another process holds the password file lock. */
const USERADD_ATTEMPTS = 5;

function lookup(database: 'passwd' | 'group', key: string): string[] | undefined {
  const result = spawnSync('getent', [database, key], { encoding: 'utf8', timeout: 5_000 });
  let line: string | undefined;
  if (!result.error && result.status === 0) line = result.stdout.split('\n')[0];
  else if (result.error) {
    // No getent (a minimal image): read the file itself.
    const file = database === 'passwd' ? '/etc/passwd' : '/etc/group';
    line = fs
      .readFileSync(file, 'utf8')
      .split('\n')
      .find((l) => l.split(':')[0] === key || (/^\d+$/.test(key) && l.split(':')[2] === key));
  }
  return line ? line.split(':') : undefined;
}

function userId(name: string): { uid: number; gid: number; name: string } | undefined {
  const entry = lookup('passwd', name);
  if (!entry) return /^\d+$/.test(name) ? { uid: Number(name), gid: Number(name), name } : undefined;
  return { uid: Number(entry[2]), gid: Number(entry[3]), name: entry[0]! };
}

function groupId(name: string): number | undefined {
  const entry = lookup('group', name);
  if (!entry) return /^\d+$/.test(name) ? Number(name) : undefined;
  return Number(entry[2]);
}

/** Resolves `user` or `user:group` (names or numbers); throws ConfigError naming what is unknown. */
export function resolveUserGroup(spec: string): TaskIdentity {
  const [userName, groupName] = spec.split(':') as [string, string | undefined];
  const user = userId(userName);
  if (!user) throw new ConfigError(`--main-task-user-group ${spec}: no user ${userName} on this machine`);
  const gid = groupName === undefined ? user.gid : groupId(groupName);
  if (gid === undefined) throw new ConfigError(`--main-task-user-group ${spec}: no group ${groupName} on this machine`);
  if (user.uid === 0 || gid === 0) throw new ConfigError(`--main-task-user-group ${spec}: tasks must not run as root`);
  return { uid: user.uid, gid, name: user.name };
}

function ensureUser(name: string, logger: Logger): TaskIdentity | undefined {
  for (let attempt = 1; attempt <= USERADD_ATTEMPTS; attempt++) {
    const existing = userId(name);
    if (existing) return existing;
    const result = spawnSync(
      'useradd',
      ['--system', '--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin', '--user-group', name],
      { encoding: 'utf8', timeout: 30_000 },
    );
    if (result.error) {
      logger.debug({ err: describeError(result.error) }, 'useradd is not available');
      return undefined;
    }
    // 9: the user exists (another executor made it meanwhile); 10: the password file is locked.
    if (result.status === 0 || result.status === 9) continue;
    if (result.status !== 10) {
      logger.debug({ user: name, status: result.status, stderr: result.stderr.trim() }, 'useradd failed');
      return undefined;
    }
    spawnSync('sleep', ['0.2']);
  }
  return userId(name);
}

function nobody(): TaskIdentity | undefined {
  const user = userId('nobody');
  if (!user) return undefined;
  const gid = groupId('nogroup') ?? groupId('nobody') ?? user.gid;
  return { uid: user.uid, gid, name: user.name };
}

export class TaskUsers {
  private constructor(
    private readonly identities: TaskIdentity[],
    /** One user per slot, used by nothing else: per-user limits (RLIMIT_NPROC) mean per-task limits. */
    readonly dedicated: boolean,
  ) {}

  /** The identities tasks run as, or undefined when tasks run as the executor's own user. */
  static resolve(userGroup: string | null, slots: number, logger: Logger): TaskUsers | undefined {
    if (process.getuid?.() !== 0) {
      if (userGroup) throw new ConfigError(`--main-task-user-group ${userGroup} needs the executor to run as root`);
      logger.warn('the executor does not run as root: tasks run as its own user (no user isolation between tasks and the executor)');
      return undefined;
    }
    if (userGroup) {
      const identity = resolveUserGroup(userGroup);
      logger.info({ user: identity }, `tasks run as ${userGroup} (uid ${identity.uid}, gid ${identity.gid}), supplementary groups dropped`);
      return new TaskUsers([identity], false);
    }
    const perSlot: TaskIdentity[] = [];
    for (let slot = 0; slot < slots; slot++) {
      const identity = ensureUser(`kv2-task-${slot}`, logger);
      if (!identity) break;
      perSlot.push(identity);
    }
    if (perSlot.length === slots) {
      logger.info({ users: perSlot.map((u) => `${u.name}(${u.uid})`) }, 'tasks run as one dedicated user per slot (kv2-task-<slot>), supplementary groups dropped');
      return new TaskUsers(perSlot, true);
    }
    const fallback = nobody();
    if (!fallback) throw new ConfigError('cannot create task users (useradd) and there is no user nobody: give --main-task-user-group user:group');
    logger.warn({ user: fallback }, 'cannot create task users (useradd failed): every task runs as nobody; give --main-task-user-group to choose');
    return new TaskUsers([fallback], false);
  }

  forSlot(slot: number): TaskIdentity {
    return this.identities[slot % this.identities.length]!;
  }

  all(): readonly TaskIdentity[] {
    return this.identities;
  }
}

/** Gives a work dir (and everything in it, links themselves not followed) to the task's user. */
export function chownTree(target: string, identity: TaskIdentity): void {
  const stat = fs.lstatSync(target);
  fs.lchownSync(target, identity.uid, identity.gid);
  if (!stat.isDirectory()) return;
  for (const name of fs.readdirSync(target)) chownTree(path.join(target, name), identity);
}

/**
 * setpriv's options that switch to `identity` for good: groups cleared, no capabilities, no new privileges
 * (what the step launcher does itself; setpriv only serves inside a sandbox that must run as root).
 */
export function setprivArgs(setpriv: string, identity: TaskIdentity): string[] {
  return [
    setpriv,
    `--reuid=${identity.uid}`,
    `--regid=${identity.gid}`,
    '--clear-groups',
    '--no-new-privs',
    '--inh-caps=-all',
    '--bounding-set=-all',
    '--',
  ];
}
