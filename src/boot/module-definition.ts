// What a module is, to the supervisor: the flags it takes, how it renders its config file from them, how
// the file is validated when the module (re)starts, and the code it runs. Roles only list modules.
import type { z } from 'zod';
import type { Logger } from '../common/logging';
import type { FlagSpec, FlagValues } from './flags';

export type RoleName = 'judicator' | 'executor' | 'gateway';
export type CommandName = RoleName | 'standalone';

/** What render() knows besides the flags. */
export interface RenderContext {
  /** The command that was run: `judicator`, ..., or `standalone` (which runs all three roles). */
  command: CommandName;
  /** Absolute work dir; each role lives in `<workDir>/<role>/`. */
  workDir: string;
  flags: FlagValues;
}

/** What a running module gets. */
export interface ModuleContext<C> {
  config: C;
  logger: Logger;
  /** Absolute role dir (also the module's cwd); paths in the config are relative to it. */
  roleDir: string;
  /** Aborted on SIGINT/SIGTERM or when the supervisor is gone: the module must then stop and return. */
  signal: AbortSignal;
}

export interface ModuleDefinition<C = unknown> {
  /** File stem of its config, pid file and log dir: `etcd`, `main`, `server`. */
  name: string;
  role: RoleName;
  /** Flags the module reads (merged with the other modules' for the role's command). */
  flags: readonly FlagSpec[];
  /** Config object (written to config/<name>.json) from the resolved flags. */
  render(context: RenderContext): C;
  /** Validates config/<name>.json every time the module starts: hand edits are checked, too. */
  schema: z.ZodType<C>;
  /**
   * Whether this node runs the module at all (default: always). Decided once at boot: the mongodb module,
   * say, only where the cluster may keep its tasks in MongoDB.
   */
  enabled?(context: RenderContext): boolean | Promise<boolean>;
  /** Seconds the module needs to stop, when more than the supervisor's grace period (draining). */
  stopGraceSeconds?(config: C): number;
  /** Loads the module's code lazily, so that other processes do not pay for it. */
  load(): Promise<(context: ModuleContext<C>) => Promise<void>>;
}

/** Every module config carries these. */
export interface BaseModuleConfig {
  log: { dir: string; print: boolean; max_bytes: number; keep: number; level: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' };
}
