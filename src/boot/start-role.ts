// Starting a role (`kv2 judicator|executor|gateway|standalone`): resolve the flags, render every module's
// config file, lay out the role directories, make the role's cluster identity ready (identity.ts), and
// run the supervisor until SIGINT/SIGTERM.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { selfCommand } from '../common/assets';
import { hideSecretFlags, withoutSecretFlags } from '../common/hide-argv';
import { BusyError, ConfigError, UsageError, describeError } from '../common/errors';
import { createLogger, type Logger } from '../common/logging';
import { signalGroup } from '../common/processes';
import { configPath, renderLog, writeConfigFile } from './config-files';
import { readFlagFile, resolveFlags, type FlagValues } from './flags';
import { identityWork, prepareIdentities, type RenderedModule } from './identity';
import type { CommandName, ModuleDefinition, RenderContext } from './module-definition';
import { PidFileLock, writePidFile } from './pid-lock';
import { JOIN_TOKEN_ENV } from './join-flags';
import { ROLE_COMMANDS, roleFlags } from './roles';
import { MODULE_CONFIG_ERROR_EXIT, Supervisor, bootConfigSchema, type BootConfig } from './supervisor';

/** Everything a role command decided before starting anything. */
export interface PreparedRole {
  bootDir: string;
  bootConfig: BootConfig;
  flags: FlagValues;
  workDir: string;
  /** Every module to run, with its rendered config. */
  modules: RenderedModule[];
  /** Writes the role dirs and config files. */
  write(): void;
  /** Lines for a person, printed on stdout as the role starts (where the web UI is). */
  announcements: string[];
}

/** Resolves flags and renders every config, touching nothing on disk: a bad flag changes nothing. */
export async function prepareRole(command: CommandName, given: Record<string, unknown>, rawArgs: readonly string[] = []): Promise<PreparedRole> {
  const role = ROLE_COMMANDS[command];
  if (!role) throw new UsageError(`unknown role ${command}`);
  const flagSpecs = roleFlags(role.modules);
  const configFile = given.config === undefined ? undefined : String(given.config);
  const fromFile = configFile ? readFlagFile(configFile, flagSpecs) : {};
  const flags = resolveFlags(flagSpecs, given, fromFile, rawArgs);
  const workDir = path.resolve(String(flags['work-dir']));
  const bootDir = path.join(workDir, command === 'standalone' ? 'standalone' : command);
  const modules: ModuleDefinition<any>[] = [];
  for (const module of role.modules) if ((await module.enabled?.({ command, workDir, flags })) ?? true) modules.push(module);
  const context: RenderContext = { command, workDir, flags, running: new Set(modules.map((m) => m.name)) };
  // Render and validate every config before touching the disk: a bad flag combination changes nothing.
  const rendered = modules.map((module) => {
    const config = module.render(context);
    const checked = module.schema.safeParse(config);
    if (!checked.success) {
      const issue = checked.error.issues[0]!;
      throw new UsageError(`invalid ${module.role} ${module.name} settings: ${issue.path.join('.')}: ${issue.message}`);
    }
    return { module, roleDir: path.join(workDir, module.role), config };
  });

  const self = selfCommand();
  const bootConfig: BootConfig = bootConfigSchema.parse({
    command,
    check_interval: Number(flags['boot-check-interval']),
    grace_period: Number(flags['boot-grace-period']),
    restart_backoff: { initial: 1, max: Number(flags['boot-restart-backoff-max']), reset_after: 60 },
    modules: rendered.map(({ module, roleDir, config }) => ({
      name: module.name,
      role_dir: roleDir,
      pid_file: `data/${module.name}.pid`,
      command: [self.command, ...self.args, '__module', module.role, module.name, roleDir],
      ...(module.stopGraceSeconds ? { grace_period: module.stopGraceSeconds(config) } : {}),
    })),
    log: { ...renderLog('boot', flags), dir: path.join(bootDir, 'log', 'boot') },
  });

  const write = () => {
    for (const { module, roleDir, config } of rendered) {
      for (const dir of ['config', 'data', `log/${module.name}`]) fs.mkdirSync(path.join(roleDir, dir), { recursive: true, mode: 0o700 });
      writeConfigFile(configPath(roleDir, module.name), config);
    }
    writeConfigFile(path.join(bootDir, 'config', 'boot.json'), bootConfig);
    for (const roleDir of new Set([bootDir, ...rendered.map((r) => r.roleDir)])) closeRoleDir(roleDir);
  };
  const announcements = rendered.map(({ module, config }) => module.announce?.(config)).filter((line): line is string => Boolean(line));
  const modulesToRun = rendered.map(({ module, roleDir, config }) => ({ role: module.role, name: module.name, roleDir, config }));
  return { bootDir, bootConfig, flags, workDir, modules: modulesToRun, write, announcements };
}

/**
 * No one but kv2's user reads a role's data, configs (tokens) or logs: every role dir and what is in it
 * 0700. The executor's role dir and its data dir are 0711 instead: a task user must pass through them
 * to its own task dir (data/main/<task>), and still lists nothing there.
 */
function closeRoleDir(roleDir: string): void {
  const passable = path.basename(roleDir) === 'executor';
  fs.chmodSync(roleDir, passable ? 0o711 : 0o700);
  for (const entry of fs.readdirSync(roleDir, { withFileTypes: true })) {
    if (!entry.isDirectory()) continue;
    fs.chmodSync(path.join(roleDir, entry.name), passable && entry.name === 'data' ? 0o711 : 0o700);
  }
}

/** `work()` on the work dir; a file-system error there is a ConfigError: a restart cannot fix it. */
function workDirUsable<T>(work: () => T, bootDir: string): T {
  try {
    return work();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (!code || !['EACCES', 'EPERM', 'EROFS', 'ENOTDIR', 'ENOENT', 'EEXIST', 'ENOSPC', 'EDQUOT'].includes(code)) throw error;
    throw new ConfigError(`cannot use the work dir ${path.dirname(bootDir)}: ${describeError(error)}; give a --work-dir this user can write to`);
  }
}

/**
 * Set in the environment of the short-lived child that prepares the role's identity (see
 * prepareIdentityInChild): the same command line, run only as far as that.
 */
export const IDENTITY_CHILD_ENV = 'KV2_BOOT_IDENTITY_ONLY';

export async function runRole(command: CommandName, given: Record<string, unknown>, rawArgs: readonly string[]): Promise<number> {
  const prepared = await prepareRole(command, given, rawArgs);
  // This process is the supervisor for as long as the role runs (or the child preparing its identity):
  // no token stays in its command line.
  const secretFlags = roleFlags(ROLE_COMMANDS[command]!.modules).filter((flag) => flag.secret).flatMap((flag) => [flag.name, ...(flag.aliases ?? [])]);
  hideSecretFlags(secretFlags);
  if (process.env[IDENTITY_CHILD_ENV] === '1') return runIdentityChild(prepared);
  const bootPidFile = path.join(prepared.bootDir, 'data', 'boot.pid');
  // One supervisor per role dir: a second one would fight the first over the same modules and ports.
  const bootLock = new PidFileLock(bootPidFile, `kv2 ${command} supervisor`);
  if (!workDirUsable(() => bootLock.tryAcquire(), prepared.bootDir)) {
    const holder = bootLock.holder();
    throw new BusyError(
      `another kv2 ${command} is already running in ${path.dirname(prepared.bootDir)}` +
        (holder ? ` (pid ${holder.pid})` : '') +
        '; stop it first, or use another --work-dir',
    );
  }
  try {
    workDirUsable(() => prepared.write(), prepared.bootDir);
    writePidFile(bootPidFile, process.pid);
    const logger = bootLogger(prepared);
    const supervisor = new Supervisor(prepared.bootConfig, logger);
    for (const line of prepared.announcements) process.stdout.write(`${line}\n`);
    const controller = new AbortController();
    let signals = 0;
    let stopSignal: NodeJS.Signals = 'SIGINT';
    const onSignal = (signal: NodeJS.Signals) => {
      signals++;
      if (signals === 1) {
        // SIGTERM (docker stop, systemd, a rolling update) is passed on: executors drain on it.
        stopSignal = signal;
        logger.info({ signal }, `received ${signal}; stopping every module`);
        controller.abort();
        return;
      }
      // A second Ctrl-C: do not make the operator wait out the grace period.
      logger.warn({ signal }, `received ${signal} again; killing every module now`);
      for (const pid of supervisor.modulePids()) signalGroup(pid, 'SIGKILL');
    };
    // SIGHUP reloads what can be reloaded without a restart (the gateway's API tokens file): passed on
    // to each module process (not its group: etcd and mongod have their own idea of SIGHUP).
    const onHangup = () => {
      logger.info({ modules: supervisor.modulePids() }, 'received SIGHUP; passing it on to the modules (they read again what they can)');
      for (const pid of supervisor.modulePids()) {
        try {
          process.kill(pid, 'SIGHUP');
        } catch {
          // gone meanwhile: restarted by the supervisor, and it reads everything anew then
        }
      }
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    process.on('SIGHUP', onHangup);
    // The modules find the role's cluster identity ready (joining may wait for a judicator to answer).
    if (identityWork(prepared.modules, { workDir: prepared.workDir, flags: prepared.flags })) {
      const joinToken = prepared.flags['join-token'];
      const code = await prepareIdentityInChild(controller.signal, secretFlags, typeof joinToken === 'string' ? joinToken : undefined);
      if (code !== 0 || controller.signal.aborted) {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        if (!controller.signal.aborted) logger.fatal({ code }, `cannot get this node's cluster identity (exit ${code}; the reason is above and in this log)`);
        return controller.signal.aborted ? 0 : code;
      }
    }
    try {
      await supervisor.run(controller.signal, () => stopSignal);
      const fatal = supervisor.fatal;
      if (fatal) {
        // One line for the operator who started it; restarting it would fail the same way.
        process.stderr.write(`kv2 ${command}: ${fatal.reason}\n`);
        return MODULE_CONFIG_ERROR_EXIT;
      }
    } catch (error) {
      logger.fatal({ err: describeError(error) }, 'supervisor failed');
      throw error;
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      process.off('SIGHUP', onHangup);
    }
    return 0;
  } finally {
    bootLock.release();
  }
}

/**
 * Runs this very command line again in a child that only prepares the role's identity (runIdentityChild),
 * so that the X.509 library it loads leaves with it instead of staying in the supervisor. No secret flag
 * goes on its command line (any user can read that): the join token, as this process resolved it (flag,
 * environment or config file), goes in its environment; a token file is named as it was. stdio is
 * shared, so its one-line error is the operator's. Aborting `signal` stops it. Its exit code.
 */
function prepareIdentityInChild(signal: AbortSignal, secretFlags: readonly string[], joinToken: string | undefined): Promise<number> {
  const self = selfCommand();
  const args = withoutSecretFlags(process.argv.slice(2), secretFlags);
  const env = { ...process.env, [IDENTITY_CHILD_ENV]: '1', ...(joinToken ? { [JOIN_TOKEN_ENV]: joinToken } : {}) };
  const child = spawn(self.command, [...self.args, ...args], { stdio: 'inherit', env });
  const onAbort = () => child.kill('SIGTERM');
  signal.addEventListener('abort', onAbort, { once: true });
  return new Promise((resolve) => {
    child.once('error', (error) => {
      process.stderr.write(`kv2: cannot start the identity preparation: ${describeError(error)}\n`);
      resolve(1);
    });
    child.once('exit', (code, killedBy) => {
      signal.removeEventListener('abort', onAbort);
      resolve(code ?? (killedBy ? 1 : 0));
    });
  });
}

/** The role's boot log (boot.log in its boot dir's log settings): the supervisor's, and its identity child's. */
function bootLogger(prepared: PreparedRole): Logger {
  const log = prepared.bootConfig.log;
  return createLogger('boot', { dir: log.dir, file: 'boot.log', maxBytes: log.max_bytes, keep: log.keep, printToStdout: log.print, level: log.level });
}

/** The child's part: the role's identity made ready, logged to the boot log, then exit (0, or the error's code). */
async function runIdentityChild(prepared: PreparedRole): Promise<number> {
  const logger = bootLogger(prepared);
  const controller = new AbortController();
  const onSignal = () => controller.abort();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    await prepareIdentities(prepared.modules, { workDir: prepared.workDir, flags: prepared.flags, logger, signal: controller.signal });
    return 0;
  } catch (error) {
    if (controller.signal.aborted) return 0;
    logger.fatal({ err: describeError(error) }, `cannot get this node's cluster identity: ${describeError(error)}`);
    throw error;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
