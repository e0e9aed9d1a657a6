// The inside of a module process (`kv2 __module <role-dir> <module>`, started by the supervisor): read and
// validate its config, open its log, run the module until SIGINT/SIGTERM or until the supervisor is gone,
// and exit with a code the supervisor understands.
import { describeError, ConfigError } from '../common/errors';
import { createLogger, type Logger } from '../common/logging';
import { configPath, readConfigFile } from './config-files';
import type { ModuleConfigFile, ModuleDefinition } from './module-definition';
import { MODULE_CONFIG_ERROR_EXIT } from './supervisor';

/** How often a module checks that its supervisor is still there (a SIGKILLed supervisor sends nothing). */
const PARENT_CHECK_MS = 1000;

export async function runModuleProcess(definition: ModuleDefinition, roleDir: string): Promise<never> {
  process.chdir(roleDir);
  const configFile = configPath(roleDir, definition.name);
  let config: ModuleConfigFile<unknown>;
  try {
    config = readConfigFile(configFile, definition.schema);
  } catch (error) {
    process.stderr.write(`${definition.role} ${definition.name}: ${describeError(error)}\n`, () => process.exit(error instanceof ConfigError ? MODULE_CONFIG_ERROR_EXIT : 1));
    return await new Promise<never>(() => undefined);
  }
  const logger = createLogger(definition.name, {
    dir: config.log.dir,
    file: `${definition.name}.log`,
    maxBytes: config.log.max_bytes,
    keep: config.log.keep,
    printToStdout: config.log.print,
    level: config.log.level as 'info',
  });
  const controller = new AbortController();
  watchForShutdown(controller, logger);
  process.on('uncaughtException', (error) => die(logger, error, 'uncaught exception'));
  process.on('unhandledRejection', (error) => die(logger, error, 'unhandled promise rejection'));

  try {
    const run = await definition.load();
    logger.info({ role: definition.role, config: configFile }, `${definition.role} ${definition.name} module starting`);
    // The log section is this process's business; the module gets its own config.
    const { log: _log, ...own } = config;
    await run({ config: own, logger, roleDir, signal: controller.signal, configFile });
    logger.info(`${definition.role} ${definition.name} module stopped`);
    process.exit(0);
  } catch (error) {
    if (error instanceof ConfigError) {
      logger.fatal({ err: describeError(error) }, `cannot run as configured: ${describeError(error)}`);
      // The supervisor ends the role with this line (its last on stderr) as the reason.
      process.stderr.write(`${definition.role} ${definition.name}: ${describeError(error)}\n`, () => process.exit(MODULE_CONFIG_ERROR_EXIT));
      return await new Promise<never>(() => undefined);
    }
    die(logger, error, 'module failed');
  }
}

function watchForShutdown(controller: AbortController, logger: Logger): void {
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals++;
    if (signals === 1) {
      logger.info({ signal }, `received ${signal}; shutting down`);
      controller.abort();
    } else {
      logger.warn({ signal }, `received ${signal} again; exiting now`);
      process.exit(1);
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // SIGHUP means "read again what you can" (the supervisor passes it on): never the default, which ends
  // the process. A module that can reload listens for it too (the gateway's tokens file).
  process.on('SIGHUP', () => logger.debug('received SIGHUP'));
  const parent = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid !== parent && !controller.signal.aborted) {
      logger.warn({ parent }, 'the supervisor is gone; shutting down so nothing is left running');
      controller.abort();
    }
  }, PARENT_CHECK_MS);
  timer.unref();
}

function die(logger: Logger, error: unknown, what: string): never {
  logger.fatal({ err: error instanceof Error ? { message: error.message, stack: error.stack } : String(error) }, `${what}: ${describeError(error)}`);
  process.exit(1);
}
