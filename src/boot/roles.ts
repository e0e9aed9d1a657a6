// Which modules each role command runs, and the flags every role shares. A new module is one line here.
import { mergeFlags, type FlagSpec } from './flags';
import type { CommandName, ModuleDefinition } from './module-definition';
import { etcdModule } from './modules/etcd';
import { judicatorMainModule } from './modules/judicator';
import { gatewayServerModule } from './modules/gateway';
import { executorMainModule } from './modules/executor';
import { mongodbModule } from './modules/mongodb';

export const commonRoleFlags: FlagSpec[] = [
  { name: 'work-dir', type: 'string', default: '.', description: 'directory holding the role directories (judicator/, executor/, gateway/)', placeholder: 'dir' },
  { name: 'config', type: 'string', description: 'JSON file of flag values ({"main-listen-port": 4000, ...}); flags given on the command line win', placeholder: 'file' },
  { name: 'boot-check-interval', type: 'number', min: 0.1, default: 5, description: 'seconds between checks of every module' },
  { name: 'boot-grace-period', type: 'number', min: 0.1, default: 30, description: 'seconds a module gets to stop after SIGINT before it is killed' },
  { name: 'boot-restart-backoff-max', type: 'number', min: 0.1, default: 30, description: 'longest wait, in seconds, before restarting a module that keeps dying' },
  { name: 'boot-print-log', type: 'boolean', description: "copy the supervisor's log to stdout" },
  { name: 'module-print-log', type: 'boolean', description: "copy every module's log to stdout" },
  { name: 'log-level', type: 'string', default: 'info', choices: ['trace', 'debug', 'info', 'warn', 'error', 'fatal'], description: 'lowest level written to the logs' },
  { name: 'log-max-bytes', type: 'int', min: 4096, default: 10 * 1024 * 1024, description: 'rotate a log file when it grows past this many bytes' },
  { name: 'log-keep', type: 'int', min: 0, max: 100, default: 5, description: 'rotated log files kept per module' },
];

export interface RoleCommand {
  description: string;
  modules: readonly ModuleDefinition<any>[];
}

export const ROLE_COMMANDS: Partial<Record<CommandName, RoleCommand>> = {
  judicator: {
    description: 'Run a judicator: an etcd member, the task store and the RPC server executors and gateways use',
    modules: [etcdModule, mongodbModule, judicatorMainModule],
  },
  gateway: {
    description: 'Run a gateway: the HTTP API and web UI in front of the judicators',
    modules: [gatewayServerModule],
  },
  executor: {
    description: 'Run an executor: takes tasks from the judicators and runs them (compile, then execute) in its slots',
    modules: [executorMainModule],
  },
  standalone: {
    description: 'Run a judicator, an executor and a gateway under one supervisor: the single-machine system',
    modules: [etcdModule, mongodbModule, judicatorMainModule, executorMainModule, gatewayServerModule],
  },
};

/** Every flag of a role command: the shared ones, its modules' (merged), and a print-log flag per module. */
export function roleFlags(modules: readonly ModuleDefinition<any>[]): FlagSpec[] {
  return mergeFlags([commonRoleFlags, ...modules.map((m) => m.flags), printLogFlags(modules)]);
}

/** Every module any role can run, for the hidden `__module` command. */
export function findModule(role: string, name: string): ModuleDefinition<any> | undefined {
  for (const command of Object.values(ROLE_COMMANDS)) {
    const found = command?.modules.find((m) => m.role === role && m.name === name);
    if (found) return found;
  }
  return undefined;
}

/** The print-log flag of each module of a command (`--etcd-print-log`, `--main-print-log`, ...). */
export function printLogFlags(modules: readonly ModuleDefinition<any>[]): FlagSpec[] {
  return [...new Set(modules.map((m) => m.name))].map((name) => ({
    name: `${name}-print-log`,
    type: 'boolean' as const,
    description: `copy the ${name} module's log to stdout`,
  }));
}
