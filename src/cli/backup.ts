// `kv2 backup <dir>` and `kv2 backup --verify <dir>`: write a consistent backup of a running cluster, or
// check one (src/ops/backup.ts, src/ops/backup-verify.ts).
import type { CAC } from 'cac';
import { UsageError } from '../common/errors';
import type { FlagSpec, FlagValues } from '../boot/flags';
import { registerFlagCommand, type Run } from './shared';

export const backupFlags: FlagSpec[] = [
  { name: 'verify', type: 'boolean', description: 'check the backup in <dir> instead of writing one (exit 1 when it is damaged)' },
  { name: 'etcd-endpoints', type: 'string', description: "etcd client URLs of the cluster's judicators (comma-separated https://host:2001); default: the judicator in --work-dir", placeholder: 'urls' },
  { name: 'work-dir', type: 'string', default: '.', description: 'work dir of a judicator on this machine: its certificate reaches etcd, its CA goes into the backup (its judicator/config/etcd.json gives the cluster)', placeholder: 'dir' },
  { name: 'etcd-prefix', type: 'string', description: "the cluster's key prefix; default: the judicator's, else kv2/", placeholder: 'prefix' },
  { name: 'mongodb-uri', type: 'string', description: "MongoDB store only: the replica set's connection string; default: from the judicator's config or etcd", placeholder: 'uri' },
  { name: 'force', type: 'boolean', description: 'write into a directory that is not empty (replacing the backup files in it)' },
];

export function registerBackupCommand(cli: CAC, run: Run): void {
  registerFlagCommand(cli, run, {
    command: 'backup <dir>',
    description: 'Write a consistent backup of a running cluster (etcd snapshot, task export, manifest) into <dir>; --verify checks one',
    usage: 'backup <dir> [--work-dir <judicator work dir>] [--etcd-endpoints https://host:2001] | backup --verify <dir>',
    examples: ['backup /backups/kv2-2024-05-01 --work-dir /var/lib/kv2', 'backup --verify /backups/kv2-2024-05-01'],
    flags: backupFlags,
    action: backup,
  });
}

async function backup(flags: FlagValues, dir: string): Promise<number> {
  if (!dir) throw new UsageError('give the backup directory, e.g. kv2 backup /backups/kv2-2024-05-01');
  const say = (line: string) => process.stdout.write(`${line}\n`);
  const { terminalProgress } = await import('../ops/progress');
  const progress = terminalProgress();
  if (flags.verify) {
    const { formatVerifyReport, verifyBackup } = await import('../ops/backup-verify');
    say(`kv2 backup --verify: checking ${dir}`);
    const report = await verifyBackup(dir, (what) => progress.update(`checking ${what}`, 0, 0));
    progress.clear();
    for (const line of formatVerifyReport(report)) say(line);
    return report.problems.length === 0 ? 0 : 1;
  }
  const endpoints = flags['etcd-endpoints'] === undefined ? undefined : String(flags['etcd-endpoints']).split(',').map((s) => s.trim()).filter(Boolean);
  const { runBackup } = await import('../ops/backup');
  await runBackup(
    {
      dir,
      endpoints,
      workDir: String(flags['work-dir']),
      prefix: flags['etcd-prefix'] === undefined ? undefined : String(flags['etcd-prefix']),
      mongodbUri: flags['mongodb-uri'] === undefined ? undefined : String(flags['mongodb-uri']),
      force: Boolean(flags.force),
    },
    { say, progress },
  );
  return 0;
}
