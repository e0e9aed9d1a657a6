// Config files under <role>/config/: written once by the supervisor at boot (defaults + flags), read and
// validated by each module every time it starts, so an edit made during maintenance takes effect at the
// module's next start, and a broken edit is reported in one line instead of crashing somewhere later.
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { ConfigError } from '../common/errors';
import { readJsonFile } from '../common/json-file';
import { DEFAULT_LOG_ROTATION } from '../common/logging';
import type { FlagValues } from './flags';

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const;

export const logSchema = z.object({
  dir: z.string().min(1),
  print: z.boolean(),
  max_bytes: z.number().int().min(4096),
  keep: z.number().int().min(0).max(100),
  level: z.enum(LOG_LEVELS),
});

/** The log section boot writes into every module's config file; the module process opens its log by it. */
export type LogConfig = z.infer<typeof logSchema>;

/** The `log` section of a module's config, from the print-log flags. */
export function renderLog(module: string, flags: FlagValues): LogConfig {
  return {
    dir: `log/${module}`,
    print: Boolean(flags['module-print-log'] || flags[`${module}-print-log`]),
    max_bytes: Number(flags['log-max-bytes'] ?? DEFAULT_LOG_ROTATION.maxBytes),
    keep: Number(flags['log-keep'] ?? DEFAULT_LOG_ROTATION.keep),
    level: String(flags['log-level'] ?? 'info') as (typeof LOG_LEVELS)[number],
  };
}

export function configPath(roleDir: string, module: string): string {
  return path.join(roleDir, 'config', `${module}.json`);
}

/**
 * Writes a config file atomically (indented, like the original's generated configs). Readable by its
 * owner only: configs say where the cluster and its identity files are, which no task needs to read.
 */
export function writeConfigFile(file: string, config: unknown): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const temp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(temp, `${JSON.stringify(config, null, 4)}\n`, { mode: 0o600 });
  fs.renameSync(temp, file);
}

/** Reads and validates a config file; a problem is a ConfigError naming the file and the field. */
export function readConfigFile<C>(file: string, schema: z.ZodType<C>): C {
  return readJsonFile(file, schema, { error: ConfigError });
}
