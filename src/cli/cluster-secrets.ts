// `kv2 cluster-secrets <dir>`: the cluster CA and an executor/gateway join token made before any judicator
// runs (src/ops/cluster-secrets.ts), as files for a compose file or a configuration manager.
import type { CAC } from 'cac';
import { UsageError } from '../common/errors';
import type { FlagValues } from '../boot/flags';
import { registerFlagCommand, type Run } from './shared';

export function registerClusterSecretsCommand(cli: CAC, run: Run): void {
  registerFlagCommand(cli, run, {
    command: 'cluster-secrets <dir>',
    description: 'Make a cluster CA and a join token for executors and gateways, as files in <dir> (for compose and other one-definition deployments)',
    usage: 'cluster-secrets <dir>',
    examples: ['cluster-secrets ./secrets'],
    flags: [],
    action: clusterSecrets,
  });
}

async function clusterSecrets(_flags: FlagValues, dir: string): Promise<number> {
  if (!dir) throw new UsageError('give the directory to write the secrets into, e.g. kv2 cluster-secrets ./secrets');
  const { writeClusterSecrets } = await import('../ops/cluster-secrets');
  const made = await writeClusterSecrets(dir);
  process.stdout.write(
    [
      `cluster CA ${made.fingerprint}:`,
      `  ${made.files.ca}     (certificate and key: every judicator gets it with --cluster-ca-file; keep it secret)`,
      `  ${made.files.token}  (join token for executors and gateways: --join-token-file; judicators: --accept-join-token-file)`,
      '',
    ].join('\n'),
  );
  return 0;
}
