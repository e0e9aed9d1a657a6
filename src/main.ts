// The kv2 command: one line per command; the commands themselves live in src/cli/.
import { cac } from 'cac';
import { UsageError, describeError, exitCodeFor } from './common/errors';
import { registerBackupCommand } from './cli/backup';
import { registerFetchCommand } from './cli/fetch';
import { registerMaintainCommand } from './cli/maintain';
import { MODULE_COMMAND, runModuleCommand } from './cli/module';
import { registerRoleCommands } from './cli/role-command';
import { registerRestoreCommand } from './cli/restore';
import { registerScaleCommand } from './cli/scale';
import { registerStatusCommand } from './cli/status';
import { registerSwarmCommand } from './cli/swarm';
import { registerTaskCommand } from './cli/task';
import { printVersion } from './cli/version';

async function main(argv: string[]): Promise<number> {
  if (argv[2] === MODULE_COMMAND) return runModuleCommand(argv.slice(3));

  const cli = cac('kv2');
  let pending: Promise<number> | undefined;
  const run = (action: () => Promise<number>) => {
    pending = action();
  };
  registerRoleCommands(cli, run);
  registerMaintainCommand(cli, run);
  registerFetchCommand(cli, run);
  registerScaleCommand(cli, run);
  registerSwarmCommand(cli, run);
  registerBackupCommand(cli, run);
  registerRestoreCommand(cli, run);
  registerTaskCommand(cli, run);
  registerStatusCommand(cli, run);
  cli.option('-v, --version', 'print the version of kv2 and of the programs it embeds');
  cli.help();

  cli.parse(argv, { run: false });
  if (cli.options.help) return 0;
  if (cli.options.version && !cli.matchedCommand) return printVersion();
  if (!cli.matchedCommand) {
    if (cli.args[0]) throw new UsageError(`unknown command "${cli.args[0]}"; run kv2 --help for the list`);
    cli.outputHelp();
    return 2;
  }
  checkUnknownFlags(cli.matchedCommand.name, cli.matchedCommand.options.concat(cli.globalCommand.options), argv.slice(3));
  await cli.runMatchedCommand();
  return pending ? await pending : 0;
}

/** cac reports unknown flags camel-cased (and `--no-x` as `--x`): check them ourselves, as typed. */
function checkUnknownFlags(command: string, options: { names: string[] }[], args: string[]): void {
  const known = new Set(options.flatMap((o) => o.names.map((n) => n.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`))));
  for (const arg of args) {
    if (arg === '--') break;
    if (!arg.startsWith('--')) continue;
    const name = arg.slice(2).split('=')[0]!;
    if (!known.has(name)) throw new UsageError(`unknown flag --${name} for kv2 ${command}; run kv2 ${command} --help for its flags`);
  }
}

main(process.argv).then(
  (code) => process.exit(code),
  (error: unknown) => {
    const usage = (error as Error)?.name === 'CACError';
    process.stderr.write(`kv2: ${describeError(error)}${usage ? ' (run kv2 --help)' : ''}\n`);
    process.exit(usage ? 2 : exitCodeFor(error));
  },
);
