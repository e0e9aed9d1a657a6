// kv2 in docker swarm: the services of a cluster (the original's start.bash and stop.bash), the command
// line each role's container gets, the overlay network they share, and the cluster's identity as docker
// secrets: the cluster CA (judicators only) and a join token for executors and gateways, made by swarm up
// before any judicator runs (cluster-secrets.ts), so that every task of a service starts alike. kv2 scale
// (scale.ts) reuses the service definitions to bring back a service that was scaled to nothing.
import { BusyError, UsageError } from '../common/errors';
import { makeClusterSecrets } from './cluster-secrets';
import { DockerCommandError, formatCommand, type Docker } from './docker';

export type SwarmRole = 'judicator' | 'gateway' | 'executor';
/** Start order; swarm down removes in the reverse order (executors first, judicators last). */
export const SWARM_ROLES: readonly SwarmRole[] = ['judicator', 'gateway', 'executor'];

/** The docker secrets of a kv2 swarm: the cluster CA (judicators) and the executors' and gateways' join token. */
export const SWARM_SECRETS = { ca: 'kv2_cluster_ca', token: 'kv2_join_token' } as const;
/** Where docker puts a service's secret in its containers. */
const secretPath = (name: string) => `/run/secrets/${name}`;
/** The port the gateway listens on inside its container (the gateway default --server-port). */
export const GATEWAY_CONTAINER_PORT = 7000;

/** The executor's task user, created in the image (Dockerfile): tasks never run as root. */
export const TASK_USER_GROUP = 'kv2-task:kv2-task';
/** Seconds of a stopping executor's grace period kept for handing unfinished tasks back. */
export const HAND_BACK_SECONDS = 10;

/**
 * Each task's node name: the service name and the task's slot (judicator.1, judicator.2, ...), which a
 * task restarted in the same slot keeps. The role reads it from $NAME through `--<module>-name=ENV`.
 */
export const NAME_ENV = 'NAME={{.Service.Name}}.{{.Task.Slot}}';

export interface SwarmSettings {
  image: string;
  network: string;
  /** Seconds docker gives a stopping container between SIGTERM and SIGKILL (the roles drain meanwhile). */
  stopGracePeriod: number;
  /** Port the gateways are published on, on every swarm node (the routing mesh). */
  gatewayPort: number;
  /** Copy every module's log to stdout, so `docker service logs` shows it. */
  outputLog: boolean;
  /**
   * Whether this kv2's `<role>` command takes a flag (name without dashes); undefined when this build
   * has no such role, and then every flag below is passed. The containers run the same kv2, so a flag
   * of a module this build's role does not have (--mongodb-name before the judicator has a mongodb
   * module) is left out rather than refused at the container's start.
   */
  accepts?: (role: SwarmRole, flag: string) => boolean | undefined;
}

/** What scale and swarm need besides docker: a way to wait between steps and to tell the operator. */
export interface OpsContext {
  docker: Docker;
  /** Waits between steps (seconds); the dry run prints instead, the tests record. */
  wait(seconds: number): Promise<void>;
  say(line: string): void;
}

/** Where executors and gateways find the judicators' RPC: every judicator task, through swarm DNS (port 4000). */
export const JUDICATOR_SERVICE = 'tasks.judicator';

/**
 * The kv2 flags of a role's containers: the original start.bash's, for kv2. Judicators find each other
 * through DNS tasks.judicator (the first founds the cluster, the rest join one at a time), advertise
 * their container address (DOCKER) and share the cluster CA (a docker secret); executors and gateways
 * reach the judicators' RPC there, joining with the token secret the judicators accept.
 */
export function roleArgs(role: SwarmRole, settings: SwarmSettings): string[] {
  const wanted: [flag: string, value: string | undefined][] =
    role === 'judicator'
      ? [
          ['etcd-cluster-service', 'judicator'],
          ['etcd-advertise-address', 'DOCKER'],
          ['mongodb-advertise-address', 'DOCKER'],
          ['main-advertise-address', 'DOCKER'],
          ['etcd-name', 'ENV'],
          ['mongodb-name', 'ENV'],
          ['main-name', 'ENV'],
          ['cluster-ca-file', secretPath(SWARM_SECRETS.ca)],
          ['accept-join-token-file', secretPath(SWARM_SECRETS.token)],
        ]
      : role === 'gateway'
        ? [
            ['join', JUDICATOR_SERVICE],
            ['join-token-file', secretPath(SWARM_SECRETS.token)],
            ['server-advertise-address', 'DOCKER'],
            ['server-name', 'ENV'],
          ]
        : [
            ['join', JUDICATOR_SERVICE],
            ['join-token-file', secretPath(SWARM_SECRETS.token)],
            ['main-name', 'ENV'],
            ['main-task-user-group', TASK_USER_GROUP],
            // Docker kills a container at the end of its grace period: running tasks get what is left
            // after the time the executor needs to hand the unfinished ones back.
            ['drain-timeout', String(Math.max(0, settings.stopGracePeriod - HAND_BACK_SECONDS))],
          ];
  if (settings.outputLog) wanted.push(['boot-print-log', undefined], ['module-print-log', undefined]);
  return wanted
    .filter(([flag]) => settings.accepts?.(role, flag) ?? true)
    .map(([flag, value]) => (value === undefined ? `--${flag}` : `--${flag}=${value}`));
}

/** `docker service create ...` for a role's service with `replicas` tasks. */
export function createServiceArgs(role: SwarmRole, replicas: number, settings: SwarmSettings): string[] {
  return [
    'service',
    'create',
    `--stop-grace-period=${settings.stopGracePeriod}s`,
    '--replicas',
    String(replicas),
    '--network',
    settings.network,
    '--env',
    NAME_ENV,
    ...serviceSecrets(role).flatMap((name) => ['--secret', name]),
    ...(role === 'gateway' ? ['--publish', `${settings.gatewayPort}:${GATEWAY_CONTAINER_PORT}`] : []),
    '--name',
    role,
    settings.image,
    role,
    ...roleArgs(role, settings),
  ];
}

/** The secrets a role's containers get: the CA is the judicators' alone. */
function serviceSecrets(role: SwarmRole): string[] {
  return role === 'judicator' ? [SWARM_SECRETS.ca, SWARM_SECRETS.token] : [SWARM_SECRETS.token];
}

/** Names of the swarm's secrets. */
export async function listSecrets(docker: Docker): Promise<Set<string>> {
  const args = ['secret', 'ls', '--format', '{{.Name}}'];
  const result = await docker.query(args);
  if (result.status !== 0) throw queryFailed(args, result.stderr);
  return new Set(result.stdout.split('\n').map((s) => s.trim()).filter(Boolean));
}

/**
 * The cluster's secrets: kept when both exist (a cluster brought up again keeps its identity), made when
 * neither does (their content goes to docker on stdin, never on a command line); one without the other
 * is refused (remove it: it belongs to no cluster kv2 can finish).
 */
export async function ensureSecrets(ctx: OpsContext): Promise<void> {
  const existing = await listSecrets(ctx.docker);
  const have = Object.values(SWARM_SECRETS).filter((name) => existing.has(name));
  if (have.length === 2) {
    ctx.say(`Reusing the cluster's secrets ${SWARM_SECRETS.ca} and ${SWARM_SECRETS.token}.`);
    return;
  }
  if (have.length === 1) {
    throw new UsageError(`the secret ${have[0]} exists without ${have[0] === SWARM_SECRETS.ca ? SWARM_SECRETS.token : SWARM_SECRETS.ca}: remove it (docker secret rm ${have[0]}) and run kv2 swarm up again`);
  }
  const secrets = await makeClusterSecrets();
  ctx.say(`Creating the cluster CA (${secrets.fingerprint}) and the executors' and gateways' join token as docker secrets.`);
  await ctx.docker.change(['secret', 'create', SWARM_SECRETS.ca, '-'], secrets.caPem);
  await ctx.docker.change(['secret', 'create', SWARM_SECRETS.token, '-'], `${secrets.token}\n`);
}

/** Names of the swarm's services. */
export async function listServices(docker: Docker): Promise<Set<string>> {
  const args = ['service', 'ls', '--format', '{{.Name}}'];
  const result = await docker.query(args);
  if (result.status !== 0) throw queryFailed(args, result.stderr);
  return new Set(result.stdout.split('\n').map((s) => s.trim()).filter(Boolean));
}

/** Creates the overlay network the services share, unless it exists. */
export async function ensureNetwork(settings: SwarmSettings, ctx: OpsContext): Promise<void> {
  const args = ['network', 'inspect', '--format', '{{.Driver}}', settings.network];
  const result = await ctx.docker.query(args);
  if (result.status === 0) {
    const driver = result.stdout.trim();
    if (driver !== 'overlay') {
      throw new UsageError(
        `the network ${settings.network} exists but is a ${driver || 'non-overlay'} network; swarm services need an overlay ` +
          'network: remove it, or choose another name with --network',
      );
    }
    return;
  }
  if (!/no such network|not found/i.test(result.stderr)) throw queryFailed(args, result.stderr);
  ctx.say(`Creating the overlay network ${settings.network}.`);
  await ctx.docker.change(['network', 'create', '--driver', 'overlay', '--attachable', settings.network]);
}

export interface SwarmUpOptions {
  /** Seconds between adding one judicator and the next. */
  interval: number;
  /** Seconds to wait at the end, for the cluster to settle (start.bash's cool-down). */
  coolDown: number;
}

/**
 * start.bash: creates the judicator service with one task and grows it one task at a time, then the
 * gateways and the executors, then waits for the cluster to settle. Refuses, before changing anything,
 * when one of the services it would create exists already.
 */
export async function swarmUp(
  counts: Record<SwarmRole, number>,
  settings: SwarmSettings,
  options: SwarmUpOptions,
  ctx: OpsContext,
): Promise<void> {
  const wanted = SWARM_ROLES.filter((role) => counts[role] > 0);
  ctx.say(`kv2 swarm up: ${SWARM_ROLES.map((role) => `${role} ${counts[role]}`).join(', ')} (image ${settings.image}, network ${settings.network})`);
  if (wanted.length === 0) {
    ctx.say('Nothing to start.');
    return;
  }
  const existing = await listServices(ctx.docker);
  const clash = wanted.filter((role) => existing.has(role));
  if (clash.length) {
    throw new BusyError(
      `the service${clash.length > 1 ? 's' : ''} ${clash.join(', ')} already exist${clash.length > 1 ? '' : 's'}: ` +
        `kv2 scale <role> <n> changes a running service's size; kv2 swarm down removes them all`,
    );
  }
  await ensureNetwork(settings, ctx);
  await ensureSecrets(ctx);

  if (counts.judicator > 0) {
    // One judicator founds the cluster; the others join it one at a time (the original scaled in one
    // step, which raced concurrent member adds).
    ctx.say(`Creating the service judicator with 1 task.`);
    await ctx.docker.change(createServiceArgs('judicator', 1, settings));
    for (let n = 2; n <= counts.judicator; n++) {
      await ctx.wait(options.interval);
      ctx.say(`Growing the service judicator to ${n} tasks.`);
      await ctx.docker.change(['service', 'scale', `judicator=${n}`]);
    }
  }
  for (const role of ['gateway', 'executor'] as const) {
    if (counts[role] === 0) continue;
    ctx.say(`Creating the service ${role} with ${counts[role]} task${counts[role] > 1 ? 's' : ''}.`);
    await ctx.docker.change(createServiceArgs(role, counts[role], settings));
  }
  ctx.say(`Letting the cluster settle for ${options.coolDown} s.`);
  await ctx.wait(options.coolDown);
  ctx.say(`All services created.${counts.gateway > 0 ? ` The API and web UI answer on port ${settings.gatewayPort} of every swarm node.` : ''}`);
}

/** stop.bash: removes the services, executors first and judicators last; missing ones are skipped. */
export async function swarmDown(ctx: OpsContext): Promise<void> {
  const existing = await listServices(ctx.docker);
  const order = [...SWARM_ROLES].reverse();
  let removed = 0;
  for (const role of order) {
    if (!existing.has(role)) {
      ctx.say(`There is no service ${role}; nothing to remove.`);
      continue;
    }
    ctx.say(`Removing the service ${role}.`);
    await ctx.docker.change(['service', 'rm', role]);
    removed++;
  }
  ctx.say(removed ? 'All services removed. Their containers stop within the stop grace period.' : 'No kv2 service was running.');
  // The cluster is gone with its judicators' containers; its identity goes too (a new swarm up makes a new one).
  const secrets = await listSecrets(ctx.docker);
  const ours = Object.values(SWARM_SECRETS).filter((name) => secrets.has(name));
  if (ours.length) {
    ctx.say(`Removing the cluster's secrets ${ours.join(', ')}.`);
    await ctx.docker.change(['secret', 'rm', ...ours]);
  }
}

export function queryFailed(args: readonly string[], stderr: string): DockerCommandError {
  const said = stderr.trim().split('\n').slice(-3).join(' / ') || 'no message';
  return new DockerCommandError(`${formatCommand('docker', args)} failed: ${said}`);
}
