// `kv2 swarm up <judicators> <gateways> <executors>` and `kv2 swarm down`: the original start.bash and
// stop.bash, through the docker CLI (src/ops/swarm.ts).
import type { CAC } from 'cac';
import { UsageError } from '../common/errors';
import type { FlagSpec, FlagValues } from '../boot/flags';
import { SWARM_ROLES, swarmDown, swarmUp, type SwarmRole } from '../ops/swarm';
import { opsContext, parseCount, registerFlagCommand, serviceFlags, swarmSettings, type Run } from './shared';

const swarmOnlyFlags: FlagSpec[] = [
  { name: 'interval', type: 'number', min: 0, default: 25, description: 'swarm up: seconds between adding one judicator and the next' },
  { name: 'cool-down', type: 'number', min: 0, default: 25, description: 'swarm up: seconds to let the cluster settle at the end' },
];

export function registerSwarmCommand(cli: CAC, run: Run): void {
  registerFlagCommand(cli, run, {
    command: 'swarm <action> [...counts]',
    description: 'docker swarm: start (up <judicators> <gateways> <executors>) or stop (down) the kv2 services',
    usage: 'swarm up <judicators> <gateways> <executors> [--output-log]  |  swarm down',
    examples: ['swarm up 3 1 2 --output-log', 'swarm down'],
    flags: [...serviceFlags, ...swarmOnlyFlags],
    action: swarm,
  });
}

async function swarm(flags: FlagValues, action: string, counts: unknown[]): Promise<number> {
  if (action === 'down') {
    if (counts.length) throw new UsageError('kv2 swarm down takes no counts');
    await swarmDown(opsContext(flags));
    return 0;
  }
  if (action !== 'up') throw new UsageError(`unknown swarm action ${JSON.stringify(action)}: use kv2 swarm up <judicators> <gateways> <executors>, or kv2 swarm down`);
  if (counts.length !== 3) {
    throw new UsageError(`kv2 swarm up takes three counts, <judicators> <gateways> <executors> (e.g. kv2 swarm up 3 1 2), not ${counts.length}`);
  }
  const parsed = Object.fromEntries(SWARM_ROLES.map((role, i) => [role, parseCount(counts[i], `the number of ${role}s`)])) as Record<SwarmRole, number>;
  const settings = swarmSettings(flags);
  await swarmUp(parsed, settings, { interval: Number(flags.interval), coolDown: Number(flags['cool-down']) }, opsContext(flags));
  return 0;
}
