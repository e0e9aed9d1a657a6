// `kv2 status`: the cluster as a gateway sees it: judicators (which one leads), executors with their
// slots, and the newest tasks counted by verdict (by status while they have none). Human tables by
// default, `--json` for scripts.
import type { CAC } from 'cac';
import { UsageError } from '../common/errors';
import { STATUS_NAMES, sandboxSummary } from '../task/types';
import { VERDICT_NAMES } from '../task/verdicts';
import { addClientOptions, clientFrom, formatTable, statusName, text, withRawText, type ClientOptions, type Run } from './shared';
import { outcomeText } from './task-view';

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
  // Done tasks by their verdict (the judges' words); those without one (not done, cancelled, unknown
  // error) by their status.
  const counts: Record<string, number> = {};
  const byStatus: Record<string, number> = {};
  const byVerdict: Record<string, number> = {};
  for (const task of recent.tasks) {
    const name = outcomeText(task);
    counts[name] = (counts[name] ?? 0) + 1;
    byStatus[statusName(task.status)] = (byStatus[statusName(task.status)] ?? 0) + 1;
    if (task.verdict) byVerdict[task.verdict] = (byVerdict[task.verdict] ?? 0) + 1;
  }
  if (options.json) {
    const tasks = { counted: recent.tasks.length, by_verdict: byVerdict, by_status: byStatus };
    process.stdout.write(`${JSON.stringify({ gateway: client.url, judicators, executors, tasks }, null, 2)}\n`);
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
          ['NAME', 'HOST', 'SLOTS', 'FREE', 'STARTED', 'LAST REPORT', 'STATE', 'SANDBOX'],
          executors.map((e) => [e.id, e.host ?? e.hostname, e.slots ?? '-', e.vacant ?? '-', e.started ?? '-', e.report_time, e.alive === false ? 'gone' : 'alive', sandboxSummary(e.sandbox)]),
        )
      : '  none',
  );
  // Verdicts in the judges' order, then the statuses of tasks without one.
  const order = [...Object.values(VERDICT_NAMES), ...Object.values(STATUS_NAMES)];
  const rows = Object.entries(counts).sort((a, b) => order.indexOf(a[0]) - order.indexOf(b[0]));
  out.push('', `Tasks (the newest ${recent.tasks.length}${recent.pages > 1 ? ` of more` : ''}, by verdict)`);
  out.push(rows.length ? formatTable(['VERDICT', 'COUNT'], rows) : '  none');
  process.stdout.write(`${out.join('\n')}\n`);
  return 0;
}

export function registerStatusCommand(cli: CAC, run: Run): void {
  const command = cli
    .command('status', 'Client of a gateway: judicators (and the leader), executors and their slots, tasks by verdict')
    .option('--tasks <n>', `how many of the newest tasks to count by status (default: ${STATUS_SAMPLE})`, { type: [String] });
  addClientOptions(command);
  command.action((options: Record<string, unknown>) => run(() => runStatusCommand(withRawText(options, cli.rawArgs, command) as ClientOptions & { tasks?: unknown })));
}
