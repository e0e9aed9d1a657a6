// `kv2 restore <dir>`: disaster recovery from a backup, for the one judicator to bring back
// (src/ops/restore.ts).
import type { CAC } from 'cac';
import { UsageError } from '../common/errors';
import { resolveFlags, type FlagSpec } from '../boot/flags';
import { addFlags } from './swarm';

export const restoreFlags: FlagSpec[] = [
  { name: 'work-dir', type: 'string', default: '.', description: 'work dir of the judicator to bring back (it must be stopped)', placeholder: 'dir' },
  { name: 'force', type: 'boolean', description: "replace what an earlier restore left in judicator/data/etcd_init (and mongodb_init); it is moved aside" },
  { name: 'mongodb-exe', type: 'string', description: 'MongoDB store only: the mongod that loads the dump; default: embedded, PATH or cache', placeholder: 'path' },
];

export function registerRestoreCommand(cli: CAC, run: (action: () => Promise<number>) => void): void {
  const command = cli
    .command('restore <dir>', 'Disaster recovery: prepare a stopped judicator (--work-dir) to come back from the backup in <dir> as a one-member cluster')
    .usage('restore <dir> --work-dir <judicator work dir>')
    .example('restore /backups/kv2-2024-05-01 --work-dir /var/lib/kv2');
  addFlags(command, restoreFlags);
  command.action((dir: string, options: Record<string, unknown>) => run(() => restore(dir, options, cli.rawArgs)));
}

async function restore(dir: string, given: Record<string, unknown>, rawArgs: readonly string[]): Promise<number> {
  const flags = resolveFlags(restoreFlags, given, {}, rawArgs);
  if (!dir) throw new UsageError('give the backup directory, e.g. kv2 restore /backups/kv2-2024-05-01 --work-dir /var/lib/kv2');
  const [{ runRestore }, { terminalProgress }] = await Promise.all([import('../ops/restore'), import('../ops/progress')]);
  await runRestore(
    {
      dir,
      workDir: String(flags['work-dir']),
      force: Boolean(flags.force),
      mongodbExe: flags['mongodb-exe'] === undefined ? undefined : String(flags['mongodb-exe']),
    },
    { say: (line) => process.stdout.write(`${line}\n`), progress: terminalProgress() },
  );
  return 0;
}
