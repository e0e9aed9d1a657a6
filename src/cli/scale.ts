// `kv2 scale <role> <n> [interval]`: the original reconfig_tasks.bash, through the docker CLI.
import type { CAC } from 'cac';
import { UsageError } from '../common/errors';
import type { FlagSpec, FlagValues } from '../boot/flags';
import { MIN_SCALE_DOWN_INTERVAL, scaleService } from '../ops/scale';
import { SWARM_ROLES, type SwarmRole } from '../ops/swarm';
import { opsContext, parseCount, registerFlagCommand, serviceFlags, swarmSettings, type Run } from './shared';

/** Seconds between steps when no interval is given: the page's minimum for shrinking, safe both ways. */
export const DEFAULT_SCALE_INTERVAL = MIN_SCALE_DOWN_INTERVAL;

const scaleOnlyFlags: FlagSpec[] = [
  { name: 'force', type: 'boolean', description: `shrink with an interval under ${MIN_SCALE_DOWN_INTERVAL} s (not recommended)` },
];

export function registerScaleCommand(cli: CAC, run: Run): void {
  registerFlagCommand(cli, run, {
    command: 'scale <role> <n> [interval]',
    description: `docker swarm: change a role's number of tasks one at a time, [interval] seconds apart (default ${DEFAULT_SCALE_INTERVAL}; 0 = one step)`,
    usage: 'scale judicator|gateway|executor <n> [interval]',
    examples: ['scale judicator 5 30', 'scale executor 0 25'],
    flags: [...scaleOnlyFlags, ...serviceFlags],
    action: scale,
  });
}

async function scale(flags: FlagValues, role: string, n: unknown, interval: unknown): Promise<number> {
  if (!SWARM_ROLES.includes(role as SwarmRole)) {
    throw new UsageError(`unknown role ${JSON.stringify(role)}: kv2 scale takes ${SWARM_ROLES.join(', ')}`);
  }
  const target = parseCount(n, `the number of ${role}s`);
  let seconds = DEFAULT_SCALE_INTERVAL;
  if (interval !== undefined) {
    const text = String(interval).trim();
    if (!/^\d+(\.\d+)?$/.test(text)) throw new UsageError(`the interval must be a number of seconds (0 or more), not ${JSON.stringify(text)}`);
    seconds = Number(text);
  }
  await scaleService(role as SwarmRole, target, { interval: seconds, force: Boolean(flags.force) }, swarmSettings(flags), opsContext(flags));
  return 0;
}
