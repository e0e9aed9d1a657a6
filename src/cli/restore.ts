// `kv2 restore <dir>`: disaster recovery from a backup, for the one judicator to bring back
// (src/ops/restore.ts).
import type { CAC } from 'cac';
import { UsageError } from '../common/errors';
import type { FlagSpec, FlagValues } from '../boot/flags';
import { registerFlagCommand, type Run } from './shared';

export const restoreFlags: FlagSpec[] = [
  { name: 'work-dir', type: 'string', default: '.', description: 'work dir of the judicator to bring back (it must be stopped)', placeholder: 'dir' },
  { name: 'force', type: 'boolean', description: "replace what an earlier restore left in judicator/data/etcd_init (and mongodb_init); it is moved aside" },
  { name: 'mongodb-exe', type: 'string', description: 'MongoDB store only: the mongod that loads the dump; default: embedded, PATH or cache', placeholder: 'path' },
];

export function registerRestoreCommand(cli: CAC, run: Run): void {
  registerFlagCommand(cli, run, {
    command: 'restore <dir>',
    description: 'Disaster recovery: prepare a stopped judicator (--work-dir) to come back from the backup in <dir> as a one-member cluster',
    usage: 'restore <dir> --work-dir <judicator work dir>',
    examples: ['restore /backups/kv2-2024-05-01 --work-dir /var/lib/kv2'],
    flags: restoreFlags,
    action: restore,
  });
}

async function restore(flags: FlagValues, dir: string): Promise<number> {
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
