// `kv2 status`: the cluster as a gateway sees it: judicators (which one leads), executors with their
// slots, and the newest tasks counted by status. Human tables by default, `--json` for scripts.
import type { CAC } from 'cac';
import { UsageError } from '../common/errors';
import { STATUS_NAMES, sandboxSummary } from '../task/types';
import { addClientOptions, clientFrom, formatTable, statusName, text, withRawText, type ClientOptions, type Run } from './shared';

/** How many of the newest tasks `kv2 status` counts by status (the API has no cluster-wide count). */
export const STATUS_SAMPLE = 1000;

export async function runStatusCommand(options: ClientOptions & { tasks?: unknown }): Promise<number> {
  const client = clientFrom(options);
  const sample = Number(text(options.tasks) ?? STATUS_SAMPLE);
  if (!Number.isInteger(sample) || sample < 0 || sample > 100_000) throw new UsageError('--tasks must be a whole number from 0 to 100000');
  const [judicators, executors, recent] = await Promise.all([
    client.judicators(),
    client.executors(),
    sample > 0 ? client.list({ limit: sample, page: 0 }) : Promise.resolve({ pages: 0, tasks: [] }),
  ]);
  const counts: Record<string, number> = {};
  for (const task of recent.tasks) {
    const name = statusName(task.status);
    counts[name] = (counts[name] ?? 0) + 1;
  }
  if (options.json) {
    process.stdout.write(`${JSON.stringify({ gateway: client.url, judicators, executors, tasks: { counted: recent.tasks.length, by_status: counts } }, null, 2)}\n`);
    return 0;
  }
  const out: string[] = [`Gateway ${client.url}`, ''];
  out.push(`Judicators (${judicators.length})`);
  out.push(
    judicators.length
      ? formatTable(['NAME', 'ADDRESS', 'ROLE'], judicators.map((j) => [j.name.replace(/^\/judicator\/service\//, ''), j.address, j.leader ? 'leader' : 'follower']))
      : '  none registered',
  );
  out.push('', `Executors (${executors.length})`);
  out.push(
    executors.length
      ? formatTable(
          ['NAME', 'HOST', 'SLOTS', 'FREE', 'LAST REPORT', 'STATE', 'SANDBOX'],
          executors.map((e) => [e.id, e.host ?? e.hostname, e.slots ?? '-', e.vacant ?? '-', e.report_time, e.alive === false ? 'gone' : 'alive', sandboxSummary(e.sandbox)]),
        )
      : '  none',
  );
  const order = Object.values(STATUS_NAMES);
  const rows = Object.entries(counts).sort((a, b) => order.indexOf(a[0]) - order.indexOf(b[0]));
  out.push('', `Tasks (the newest ${recent.tasks.length}${recent.pages > 1 ? ` of more` : ''}, by status)`);
  out.push(rows.length ? formatTable(['STATUS', 'COUNT'], rows) : '  none');
  process.stdout.write(`${out.join('\n')}\n`);
  return 0;
}

export function registerStatusCommand(cli: CAC, run: Run): void {
  const command = cli
    .command('status', 'Client of a gateway: judicators (and the leader), executors and their slots, tasks by status')
    .option('--tasks <n>', `how many of the newest tasks to count by status (default: ${STATUS_SAMPLE})`, { type: [String] });
  addClientOptions(command);
  command.action((options: Record<string, unknown>) => run(() => runStatusCommand(withRawText(options, cli.rawArgs, command) as ClientOptions & { tasks?: unknown })));
}
