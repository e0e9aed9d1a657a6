// `kv2 revoke <name>`: stop a node's certificates from working (a machine lost or retired, a certificate
// copied): the judicators refuse them from then on, and etcd too (through its CRL). Run on a judicator's
// machine, as an operator (src/ops/admin.ts). A revoked node may join again with a new join token.
import type { CAC } from 'cac';
import { UsageError } from '../common/errors';
import type { FlagSpec, FlagValues } from '../boot/flags';
import { checkNodeName, ROLES, type Role } from '../pki/identity';
import { ReturnCode } from '../task/types';
import { adminClientFrom, adminFlags, registerFlagCommand, type Run } from './shared';

export const revokeFlags: FlagSpec[] = [
  { name: 'role', type: 'string', choices: ROLES, description: "only this role's certificates of that name (default: every role's)", placeholder: 'role' },
  { name: 'reason', type: 'string', description: 'why, kept with the revocation and in the judicators\' log', placeholder: 'text' },
  ...adminFlags,
];

export function registerRevokeCommand(cli: CAC, run: Run): void {
  registerFlagCommand(cli, run, {
    command: 'revoke <name>',
    description: "Revoke a node's certificates (all of its role's with --role); run it on a judicator's machine",
    usage: 'revoke <name> [--role executor] [--reason "disk stolen"]',
    examples: ['revoke worker7 --role executor --reason "machine retired"'],
    flags: revokeFlags,
    action: revoke,
  });
}

async function revoke(flags: FlagValues, name: string): Promise<number> {
  try {
    checkNodeName(name);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const admin = await adminClientFrom(flags);
  try {
    const role = flags.role === undefined ? undefined : (String(flags.role) as Role);
    const answer = await admin.rpc.call('revoke', { name, ...(role ? { role } : {}), ...(flags.reason ? { reason: String(flags.reason) } : {}) }, { retryForMs: 0 });
    if (answer.result !== ReturnCode.OK) {
      process.stderr.write(`kv2: the judicator at ${admin.address} refused: ${answer.message ?? `result ${answer.result}`}\n`);
      return 1;
    }
    process.stdout.write(`revoked ${role ?? 'every role of'} ${name}: ${answer.serials.length} recorded certificate(s) listed in the CRL${answer.serials.length ? ` (${answer.serials.join(', ')})` : ''}; any other certificate of that name issued until now is refused too\n`);
    return 0;
  } finally {
    admin.close();
  }
}
