// `kv2 join-token create`: a new join token, for nodes to join the cluster with (`--join-token-file`,
// KV2_JOIN_TOKEN). Run on a judicator's machine: it asks that judicator over mutual TLS, as an operator
// whose certificate it makes from the judicator's CA key (src/ops/admin.ts). The token goes to stdout
// alone (for scripts); what it allows goes to stderr.
import type { CAC } from 'cac';
import { UsageError } from '../common/errors';
import type { FlagSpec, FlagValues } from '../boot/flags';
import { DEFAULT_JOIN_TOKEN_TTL_MS, MAX_JOIN_TOKEN_TTL_MS } from '../pki/join-token';
import { ROLES, type Role } from '../pki/identity';
import { ReturnCode } from '../task/types';
import { adminClientFrom, adminFlags, registerFlagCommand, type Run } from './shared';

/** Roles a token allows when --role is not given: the nodes that run tasks and serve the API. */
export const DEFAULT_TOKEN_ROLES: readonly Role[] = ['executor', 'gateway'];

/** `24h`, `30m`, `7d`, `90s` or a number of seconds, in ms. */
export function parseDuration(text: string, what: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*(s|m|h|d)?$/i.exec(text.trim());
  if (!match) throw new UsageError(`${what} ${JSON.stringify(text)} is not a duration such as 24h, 30m, 7d or 3600 (seconds)`);
  const unit = { s: 1, m: 60, h: 3600, d: 86_400 }[(match[2] ?? 's').toLowerCase() as 's']!;
  return Math.round(Number(match[1]) * unit * 1000);
}

export const joinTokenFlags: FlagSpec[] = [
  { name: 'ttl', type: 'string', default: '24h', description: `how long the token can be used (24h, 30m, 7d; at most ${MAX_JOIN_TOKEN_TTL_MS / 86_400_000}d)`, placeholder: 'duration' },
  {
    name: 'role',
    type: 'strings',
    default: [...DEFAULT_TOKEN_ROLES],
    check: (value) => {
      const bad = (value as string[]).filter((r) => !(ROLES as readonly string[]).includes(r) || r === 'admin');
      return bad.length ? `unknown role ${bad.join(', ')}: a token is for judicator, executor or gateway` : undefined;
    },
    description: 'roles a node may join as with it (judicator, executor, gateway; a judicator also receives the CA key)',
    placeholder: 'roles',
  },
  { name: 'description', type: 'string', description: 'a note kept with the token (who it is for)', placeholder: 'text' },
  ...adminFlags,
];

export function registerJoinTokenCommand(cli: CAC, run: Run): void {
  registerFlagCommand(cli, run, {
    command: 'join-token <action>',
    description: 'Make a join token (create) for nodes joining the cluster; run it on a judicator\'s machine',
    usage: 'join-token create [--ttl 24h] [--role executor,gateway]',
    examples: ['join-token create --role executor --ttl 2h > /secure/executor.token', 'join-token create --role judicator --ttl 1h'],
    flags: joinTokenFlags,
    action: joinTokenCommand,
  });
}

async function joinTokenCommand(flags: FlagValues, action: string): Promise<number> {
  if (action !== 'create') throw new UsageError(`unknown join-token action ${JSON.stringify(action)}: the one action is create`);
  const ttlMs = parseDuration(String(flags.ttl ?? '24h'), '--ttl');
  if (ttlMs <= 0 || ttlMs > MAX_JOIN_TOKEN_TTL_MS) throw new UsageError(`--ttl must be more than 0 and at most ${MAX_JOIN_TOKEN_TTL_MS / 86_400_000}d (default ${DEFAULT_JOIN_TOKEN_TTL_MS / 3_600_000}h)`);
  const roles = [...new Set(flags.role as Role[])];
  const admin = await adminClientFrom(flags);
  try {
    const answer = await admin.rpc.call('join_token_create', { roles, ttl_ms: ttlMs, ...(flags.description ? { description: String(flags.description) } : {}) }, { retryForMs: 0 });
    if (answer.result !== ReturnCode.OK || !answer.token) {
      process.stderr.write(`kv2: the judicator at ${admin.address} refused: ${answer.message ?? `result ${answer.result}`}\n`);
      return 1;
    }
    process.stdout.write(`${answer.token}\n`);
    process.stderr.write(`join token ${answer.id}: for ${answer.roles?.join(', ')}, valid until ${answer.expires_at}. Keep it secret: pass it as KV2_JOIN_TOKEN or --join-token-file (mode 600).\n`);
    return 0;
  } finally {
    admin.close();
  }
}
