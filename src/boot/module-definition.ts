// What a module is, to the supervisor: the flags it takes, how it renders its config file from them, how
// the file is validated when the module (re)starts, and the code it runs. Roles only list modules.
import type { z } from 'zod';
import type { ModuleContext } from '../common/module-context';
import { logSchema, renderLog, type LogConfig } from './config-files';
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
  /**
   * Names of the modules this node runs (those whose enabled() said yes), for a config that depends on
   * its neighbours: the judicator's main module reaches a mongod only where the mongodb module runs.
   * Absent: every module of the command.
   */
  running?: ReadonlySet<string>;
}

/** A module's config file (config/<name>.json): the module's own config, plus the log section. */
export type ModuleConfigFile<C> = C & { log: LogConfig };

export interface ModuleDefinition<C = unknown> {
  /** File stem of its config, pid file and log dir: `etcd`, `main`, `server`. */
  name: string;
  role: RoleName;
  /** Flags the module reads (merged with the other modules' for the role's command). */
  flags: readonly FlagSpec[];
  /** Config object (written to config/<name>.json) from the resolved flags. */
  render(context: RenderContext): ModuleConfigFile<C>;
  /** Validates config/<name>.json every time the module starts: hand edits are checked, too. */
  schema: z.ZodType<ModuleConfigFile<C>>;
  /**
   * Whether this node runs the module at all (default: always). Decided once at boot: the mongodb module,
   * say, only where the cluster may keep its tasks in MongoDB.
   */
  enabled?(context: RenderContext): boolean | Promise<boolean>;
  /** Seconds the module needs to stop, when more than the supervisor's grace period (draining). */
  stopGraceSeconds?(config: C): number;
  /** A line the role prints on stdout as it starts, for a person: where the gateway's web UI is. */
  announce?(config: C): string | undefined;
  /**
   * Loads the module's code lazily, so that other processes do not pay for it. The code gets its config
   * without the log section, and `configFile`, the file it was read from (for what must happen once per
   * edit of that file: etcd's forced new cluster).
   */
  load(): Promise<(context: ModuleContext<C> & { configFile: string }) => Promise<void>>;
}

/** A module as its boot/modules/ file describes it: its own config schema and rendering, without the log section. */
export interface ModuleSpec<C> extends Omit<ModuleDefinition<C>, 'schema' | 'render'> {
  /** The module's config schema, from its own room (judicator/config.ts, ...). */
  schema: z.ZodObject & z.ZodType<C>;
  render(context: RenderContext): C;
}

/** A module definition whose config file is the module's config plus the log section, from the print-log flags. */
export function defineModule<C>(spec: ModuleSpec<C>): ModuleDefinition<C> {
  return {
    ...spec,
    schema: spec.schema.extend({ log: logSchema }) as unknown as z.ZodType<ModuleConfigFile<C>>,
    render: (context) => ({ ...spec.render(context), log: renderLog(spec.name, context.flags) }),
  };
}
