// What a module's code is given when its process starts (boot/module-process.ts): its config, already read
// and validated, a logger, its role dir and a signal. A module knows nothing of flags or config files.
import type { Logger } from './logging';

export interface ModuleContext<C> {
  config: C;
  logger: Logger;
  /** Absolute role dir (also the module's cwd); paths in the config are relative to it. */
  roleDir: string;
  /** Aborted on SIGINT/SIGTERM or when the supervisor is gone: the module must then stop and return. */
  signal: AbortSignal;
}
