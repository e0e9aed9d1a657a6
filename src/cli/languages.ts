// `kv2 languages`: the languages the cluster's live executors can compile and run tasks in (found on
// each executor at its start), each with its toolchain's version and how many executors have it.
import type { CAC } from 'cac';
import { addClientOptions, clientFrom, formatTable, withRawText, type ClientOptions, type Run } from './shared';

export async function runLanguagesCommand(options: ClientOptions): Promise<number> {
  const client = clientFrom(options);
  const languages = await client.languages();
  if (options.json) {
    process.stdout.write(`${JSON.stringify({ gateway: client.url, languages }, null, 2)}\n`);
    return 0;
  }
  const out = [`Gateway ${client.url}`, '', `Languages (${languages.length})`];
  out.push(
    languages.length
      ? formatTable(['LANGUAGE', 'VERSION', 'EXECUTORS'], languages.map((l) => [l.name, l.version, l.executors]))
      : '  none: no live executor has registered a toolchain (gcc, g++, python3, javac and java, node, rustc, go)',
  );
  process.stdout.write(`${out.join('\n')}\n`);
  return 0;
}

export function registerLanguagesCommand(cli: CAC, run: Run): void {
  const command = cli.command('languages', 'Client of a gateway: the languages the live executors can run, with versions and how many executors have each');
  addClientOptions(command);
  command.action((options: Record<string, unknown>) => run(() => runLanguagesCommand(withRawText(options, cli.rawArgs, command) as ClientOptions)));
}
