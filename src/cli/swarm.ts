// `kv2 swarm up <judicators> <gateways> <executors>` and `kv2 swarm down`: the original start.bash and
// stop.bash, through the docker CLI. Also the flags and the docker context `kv2 scale` shares.
import type { CAC } from 'cac';
import { UsageError } from '../common/errors';
import { sleep } from '../common/processes';
import { PORT, cacOptionName, helpText, resolveFlags, type FlagSpec, type FlagValues } from '../boot/flags';
import { DockerCli, formatCommand } from '../ops/docker';
import { SWARM_ROLES, swarmDown, swarmUp, type OpsContext, type SwarmRole, type SwarmSettings } from '../ops/swarm';
import { roleFlags } from './role-command';
import { ROLE_COMMANDS } from '../boot/roles';

/** Flags of every docker swarm command: how services are made, and how docker is driven. */
export const serviceFlags: FlagSpec[] = [
  { name: 'image', type: 'string', default: 'kv2:latest', description: 'the kv2 image the services run', placeholder: 'image' },
  { name: 'network', type: 'string', default: 'kv2', description: 'the overlay network the services share (created when missing)', placeholder: 'name' },
  { name: 'stop-grace-period', type: 'number', min: 0, default: 30, description: 'seconds a stopping container gets between SIGTERM and SIGKILL' },
  { name: 'gateway-port', ...PORT, default: 7000, description: 'port the gateways are published on, on every swarm node' },
  { name: 'output-log', type: 'boolean', description: "copy every module's log to the container's stdout (docker service logs shows it)" },
  { name: 'docker-timeout', type: 'number', min: 1, default: 600, description: 'seconds one docker command may take (create and scale wait for the tasks to run)' },
  { name: 'dry-run', type: 'boolean', description: 'print the docker commands and waits instead of running them (the queries still run)' },
];

const swarmOnlyFlags: FlagSpec[] = [
  { name: 'interval', type: 'number', min: 0, default: 25, description: 'swarm up: seconds between adding one judicator and the next' },
  { name: 'cool-down', type: 'number', min: 0, default: 25, description: 'swarm up: seconds to let the cluster settle at the end' },
];

export function addFlags(command: ReturnType<CAC['command']>, flags: readonly FlagSpec[]): void {
  for (const flag of flags) command.option(cacOptionName(flag), helpText(flag));
}

/** Whether this build's `kv2 <role>` takes `--<flag>`; undefined when this build has no such role. */
function accepts(role: SwarmRole, flag: string): boolean | undefined {
  const command = ROLE_COMMANDS[role];
  if (!command) return undefined;
  return roleFlags(command.modules).some((f) => f.name === flag || f.aliases?.includes(flag));
}

export function swarmSettings(flags: FlagValues): SwarmSettings {
  const image = String(flags.image);
  if (!/^[A-Za-z0-9][A-Za-z0-9_./:@-]*$/.test(image)) throw new UsageError(`--image ${JSON.stringify(image)} is not an image name such as kv2:latest`);
  const network = String(flags.network);
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(network)) throw new UsageError(`--network ${JSON.stringify(network)} is not a network name (letters, digits, "_", "." and "-")`);
  return {
    image,
    network,
    stopGracePeriod: Number(flags['stop-grace-period']),
    gatewayPort: Number(flags['gateway-port']),
    outputLog: Boolean(flags['output-log']),
    accepts,
  };
}

/** The real docker, or in a dry run a docker whose changes and waits are only printed. */
export function opsContext(flags: FlagValues): OpsContext {
  const docker = new DockerCli(Number(flags['docker-timeout']) * 1000);
  const dryRun = Boolean(flags['dry-run']);
  const say = (line: string) => {
    process.stdout.write(`${line}\n`);
  };
  return {
    say,
    docker: {
      query: (args) => docker.query(args),
      change: async (args) => {
        say(`> ${formatCommand('docker', args)}${dryRun ? '    (dry run: not run)' : ''}`);
        if (!dryRun) await docker.change(args);
      },
    },
    wait: async (seconds) => {
      if (seconds <= 0) return;
      say(dryRun ? `  (dry run: would wait ${seconds} s)` : `  waiting ${seconds} s`);
      if (!dryRun) await sleep(seconds * 1000);
    },
  };
}

/** A replica count typed by the operator. */
export function parseCount(value: unknown, what: string): number {
  const text = String(value ?? '').trim();
  if (!/^\d+$/.test(text)) throw new UsageError(`${what} must be a whole number of tasks (0 or more), not ${JSON.stringify(text)}`);
  const count = Number(text);
  if (count > 1000) throw new UsageError(`${what} must be at most 1000, not ${count}`);
  return count;
}

export function registerSwarmCommand(cli: CAC, run: (action: () => Promise<number>) => void): void {
  const command = cli
    .command('swarm <action> [...counts]', 'docker swarm: start (up <judicators> <gateways> <executors>) or stop (down) the kv2 services')
    .usage('swarm up <judicators> <gateways> <executors> [--output-log]  |  swarm down')
    .example('swarm up 3 1 2 --output-log')
    .example('swarm down');
  addFlags(command, [...serviceFlags, ...swarmOnlyFlags]);
  command.action((action: string, counts: unknown[], options: Record<string, unknown>) =>
    run(() => swarm(action, counts, options, cli.rawArgs)),
  );
}

async function swarm(action: string, counts: unknown[], given: Record<string, unknown>, rawArgs: readonly string[]): Promise<number> {
  const flags = resolveFlags([...serviceFlags, ...swarmOnlyFlags], given, {}, rawArgs);
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
