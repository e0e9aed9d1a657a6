// The kv2 program around its commands: parses the command line with cac, refuses unknown commands and
// flags with a one-line message, runs the matched command (or a hidden one, or --version), and exits with
// the code it returns, or the one its error stands for.
import { cac, type CAC } from 'cac';
import { UsageError, describeError, exitCodeFor } from '../common/errors';
import { hiddenFlagsOf, type Run } from './shared';

export interface Program {
  /** Each registers one command (or a family, such as the four role commands) with cac. */
  commands: readonly ((cli: CAC, run: Run) => void)[];
  /** Commands kept out of the help and out of cac: they take their arguments as given. */
  hidden: Readonly<Record<string, (args: readonly string[]) => Promise<number>>>;
  /** `kv2 --version`. */
  version: () => number;
}

export function runProgram(argv: string[], program: Program): void {
  parseAndRun(argv, program).then(
    (code) => process.exit(code),
    (error: unknown) => {
      const usage = (error as Error)?.name === 'CACError';
      process.stderr.write(`kv2: ${describeError(error)}${usage ? ' (run kv2 --help)' : ''}\n`);
      process.exit(usage ? 2 : exitCodeFor(error));
    },
  );
}

async function parseAndRun(argv: string[], program: Program): Promise<number> {
  const name = argv[2];
  if (name !== undefined && Object.hasOwn(program.hidden, name)) return program.hidden[name]!(argv.slice(3));

  const cli = cac('kv2');
  let pending: Promise<number> | undefined;
  const run: Run = (action) => {
    pending = action();
  };
  for (const register of program.commands) register(cli, run);
  cli.option('-v, --version', 'print the version of kv2 and of the programs it embeds');
  cli.help();

  cli.parse(argv, { run: false });
  if (cli.options.help) return 0;
  if (cli.options.version && !cli.matchedCommand) return program.version();
  if (!cli.matchedCommand) {
    if (cli.args[0]) throw new UsageError(`unknown command "${cli.args[0]}"; run kv2 --help for the list`);
    cli.outputHelp();
    return 2;
  }
  checkUnknownFlags(cli.matchedCommand.name, cli.matchedCommand.options.concat(cli.globalCommand.options), argv.slice(3), hiddenFlagsOf(cli.matchedCommand));
  await cli.runMatchedCommand();
  return pending ? await pending : 0;
}

/** cac reports unknown flags camel-cased (and `--no-x` as `--x`): check them ourselves, as typed. */
function checkUnknownFlags(command: string, options: { names: string[] }[], args: string[], hidden: ReadonlySet<string>): void {
  const known = new Set([...options.flatMap((o) => o.names.map((n) => n.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`))), ...hidden]);
  for (const arg of args) {
    if (arg === '--') break;
    if (!arg.startsWith('--')) continue;
    const name = arg.slice(2).split('=')[0]!;
    if (!known.has(name)) throw new UsageError(`unknown flag --${name} for kv2 ${command}; run kv2 ${command} --help for its flags`);
  }
}
