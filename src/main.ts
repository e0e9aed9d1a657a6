// The kv2 command: one line per command. Each command lives in src/cli/<command>.ts; cli/program.ts parses
// the command line and runs the one asked for.
import { registerBackupCommand } from './cli/backup';
import { registerClusterSecretsCommand } from './cli/cluster-secrets';
import { registerFetchCommand } from './cli/fetch';
import { registerHealthCommand } from './cli/health';
import { registerLanguagesCommand } from './cli/languages';
import { registerJoinTokenCommand } from './cli/join-token';
import { registerMaintainCommand } from './cli/maintain';
import { MODULE_COMMAND, runModuleCommand } from './cli/module';
import { runProgram } from './cli/program';
import { registerRestoreCommand } from './cli/restore';
import { registerRevokeCommand } from './cli/revoke';
import { registerRoleCommands } from './cli/role';
import { registerScaleCommand } from './cli/scale';
import { registerStatusCommand } from './cli/status';
import { registerSwarmCommand } from './cli/swarm';
import { registerTaskCommand } from './cli/task';
import { printVersion } from './cli/version';

runProgram(process.argv, {
  commands: [
    registerRoleCommands, // kv2 judicator | executor | gateway | standalone
    registerMaintainCommand, // kv2 maintain <pidfile>...
    registerFetchCommand, // kv2 fetch mongod
    registerScaleCommand, // kv2 scale <role> <n> [interval]
    registerSwarmCommand, // kv2 swarm up|down
    registerBackupCommand, // kv2 backup <dir>
    registerRestoreCommand, // kv2 restore <dir>
    registerTaskCommand, // kv2 task submit|get|list|cancel|wait
    registerStatusCommand, // kv2 status
    registerLanguagesCommand, // kv2 languages
    registerHealthCommand, // kv2 health: the image's HEALTHCHECK
    registerJoinTokenCommand, // kv2 join-token create
    registerRevokeCommand, // kv2 revoke <name>
    registerClusterSecretsCommand, // kv2 cluster-secrets <dir>
  ],
  hidden: { [MODULE_COMMAND]: runModuleCommand }, // kv2 __module: how the supervisor starts a module
  version: printVersion, // kv2 --version
});
