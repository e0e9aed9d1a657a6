// kv2 scale: the original reconfig_tasks.bash. Changes a role's number of tasks one task at a time with
// an interval between steps, so each judicator joins or leaves the cluster before the next one moves;
// refuses to shrink faster than the maintenance page allows unless forced. Unlike the original it also
// handles a service at zero tasks, or one that was removed by scaling it to zero.
import { UsageError } from '../common/errors';
import { createServiceArgs, ensureNetwork, queryFailed, type OpsContext, type SwarmRole, type SwarmSettings } from './swarm';

/** The maintenance page: "the interval should at least be 25, to ensure a stable status of the system". */
export const MIN_SCALE_DOWN_INTERVAL = 25;

export interface ScaleOptions {
  /** Seconds between steps; 0 changes the count in one step. */
  interval: number;
  /** Allow shrinking with an interval under MIN_SCALE_DOWN_INTERVAL. */
  force: boolean;
}

const REPLICAS_FORMAT = '{{if .Spec.Mode.Replicated}}{{.Spec.Mode.Replicated.Replicas}}{{else}}global{{end}}';

/** The service's desired number of tasks, or undefined when there is no such service. */
export async function serviceReplicas(ctx: OpsContext, service: string): Promise<number | undefined> {
  const args = ['service', 'inspect', '--format', REPLICAS_FORMAT, service];
  const result = await ctx.docker.query(args);
  if (result.status !== 0) {
    if (/no such service|not found/i.test(result.stderr)) return undefined;
    throw queryFailed(args, result.stderr);
  }
  const text = result.stdout.trim();
  if (text === 'global') {
    throw new UsageError(`the service ${service} runs one task per node (global mode): kv2 scale changes replicated services only`);
  }
  if (!/^\d+$/.test(text)) throw queryFailed(args, `unexpected answer ${JSON.stringify(text)}`);
  return Number(text);
}

export async function scaleService(role: SwarmRole, target: number, options: ScaleOptions, settings: SwarmSettings, ctx: OpsContext): Promise<void> {
  const current = await serviceReplicas(ctx, role);
  const now = current ?? 0;
  if (now === target) {
    ctx.say(`The service ${role} already runs ${target} task${target === 1 ? '' : 's'}${current === undefined ? ' (it does not exist)' : ''}.`);
    return;
  }
  if (target < now && options.interval < MIN_SCALE_DOWN_INTERVAL && !options.force) {
    throw new UsageError(
      `scaling ${role} down with ${options.interval} s between steps: the maintenance page asks for at least ` +
        `${MIN_SCALE_DOWN_INTERVAL} s, so that each node has left cleanly before the next one stops; ` +
        `give an interval of ${MIN_SCALE_DOWN_INTERVAL} or more, or --force`,
    );
  }
  const pace = options.interval > 0 ? `one task at a time, ${options.interval} s apart` : 'in one step';
  ctx.say(`The service ${role} goes from ${now} to ${target} task${target === 1 ? '' : 's'}, ${pace}.`);

  // Every change after the first waits the interval: the node that just started or stopped settles first.
  let changes = 0;
  const step = async (describe: string, args: string[]) => {
    if (changes++ > 0 && options.interval > 0) await ctx.wait(options.interval);
    ctx.say(describe);
    await ctx.docker.change(args);
  };

  let count = now;
  if (current === undefined) {
    // Gone (scaled to zero before, or never started): create it as swarm up would. A judicator service
    // starts with one task, which founds or finds the cluster before more join.
    const first = role === 'judicator' || options.interval > 0 ? 1 : target;
    await ensureNetwork(settings, ctx);
    await step(`Creating the service ${role} with ${first} task${first === 1 ? '' : 's'}.`, createServiceArgs(role, first, settings));
    count = first;
  }
  if (options.interval === 0) {
    if (target === 0) await step(`Removing the service ${role}.`, ['service', 'rm', role]);
    else if (count !== target) await step(`Setting the service ${role} to ${target} tasks.`, ['service', 'scale', `${role}=${target}`]);
  } else {
    // Down to one task step by step, then the service itself goes (as the original did at 0).
    const floor = Math.max(target, 1);
    const delta = floor > count ? 1 : -1;
    while (count !== floor) {
      count += delta;
      await step(`Setting the service ${role} to ${count} task${count === 1 ? '' : 's'}.`, ['service', 'scale', `${role}=${count}`]);
    }
    if (target === 0) await step(`Removing the service ${role}.`, ['service', 'rm', role]);
  }
  ctx.say(`The service ${role} now ${target === 0 ? 'is removed' : `runs ${target} task${target === 1 ? '' : 's'}`}.`);
}
