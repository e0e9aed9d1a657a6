// What several commands share: commands whose flags are declared as FlagSpecs (boot/flags.ts), the
// options and output of the gateway's clients (`kv2 task`, `kv2 status`), the docker swarm settings
// (`kv2 swarm`, `kv2 scale`), and how an operator's command reaches the local judicator (`kv2 join-token`,
// `kv2 revoke`). Each command itself has its own file in this folder.
import { hideSecretFlags } from '../common/hide-argv';
import type { CAC, Command } from 'cac';
import { UsageError } from '../common/errors';
import { sleep } from '../common/processes';
import { PORT, cacOptionName, helpText, rawValues, resolveFlags, type FlagSpec, type FlagValues } from '../boot/flags';
import { ROLE_COMMANDS, roleFlags } from '../boot/roles';
import { DEFAULT_GATEWAY, GatewayClient } from '../gateway/client';
import { DockerCli, formatCommand } from '../ops/docker';
import type { AdminClient } from '../ops/admin';
import type { OpsContext, SwarmRole, SwarmSettings } from '../ops/swarm';
import { STATUS_NAMES, type TaskStatus } from '../task/types';

/** How a command hands its work to the program (cli/program.ts), which awaits it and exits with its code. */
export type Run = (action: () => Promise<number>) => void;

/** A command's hidden flags (names and aliases, without dashes): accepted, not listed in its help. */
const hiddenFlags = new WeakMap<Command, Set<string>>();

/** Lists the flags in the command's help; hidden ones (removed flags kept to explain themselves, test knobs) are accepted unlisted. */
export function addFlags(command: Command, flags: readonly FlagSpec[]): void {
  const hidden = hiddenFlags.get(command) ?? new Set<string>();
  for (const flag of flags) {
    if (flag.hidden) for (const name of [flag.name, ...(flag.aliases ?? [])]) hidden.add(name);
    else command.option(cacOptionName(flag), helpText(flag));
  }
  hiddenFlags.set(command, hidden);
  // cac would refuse them as unknown; cli/program.ts checks every flag against these lists itself.
  if (hidden.size > 0) command.allowUnknownOptions();
}

/** The hidden flags of a command (for the check of unknown flags). */
export function hiddenFlagsOf(command: Command): ReadonlySet<string> {
  return hiddenFlags.get(command) ?? new Set();
}

export interface FlagCommand {
  /** cac's spelling of the command and its arguments: `backup <dir>`. */
  command: string;
  description: string;
  usage?: string;
  examples?: readonly string[];
  flags: readonly FlagSpec[];
  /** The command's work, given its resolved (typed and checked) flags and its positional arguments. */
  action(flags: FlagValues, ...args: any[]): Promise<number>;
}

/** A command whose flags are FlagSpecs: listed in its help, and resolved before its action runs. */
export function registerFlagCommand(cli: CAC, run: Run, spec: FlagCommand): void {
  const command = cli.command(spec.command, spec.description);
  if (spec.usage) command.usage(spec.usage);
  for (const example of spec.examples ?? []) command.example(example);
  addFlags(command, spec.flags);
  command.action((...args: unknown[]) => {
    const given = args.pop() as Record<string, unknown>;
    run(async () => spec.action(resolveFlags(spec.flags, given, {}, cli.rawArgs), ...args));
  });
}

/** Options every client of a gateway shares (`kv2 task`, `kv2 status`). */
export interface ClientOptions {
  gateway?: string;
  token?: string;
  json?: boolean;
  requestTimeout?: string | number;
}

export function addClientOptions(command: Command): Command {
  command.option('--gateway <url>', `gateway to talk to [env KV2_GATEWAY] (default: ${DEFAULT_GATEWAY})`, { type: [String] });
  command.option('--token <token>', "the gateway's API token, when it needs one [env KV2_API_TOKEN]", { type: [String] });
  command.option('--json', 'print JSON (for scripts) instead of tables');
  command.option('--request-timeout <seconds>', 'seconds one request to the gateway may take (default: 30)', { type: [String] });
  return command;
}

export function clientFrom(options: ClientOptions): GatewayClient {
  const timeout = text(options.requestTimeout);
  const seconds = timeout === undefined ? 30 : Number(timeout);
  if (!Number.isFinite(seconds) || seconds <= 0) throw new UsageError(`--request-timeout must be a positive number of seconds, not ${JSON.stringify(timeout)}`);
  // A `kv2 task wait` can run for minutes: its token should not sit in the process list meanwhile.
  hideSecretFlags(['token']);
  return new GatewayClient({
    url: text(options.gateway) || process.env.KV2_GATEWAY || DEFAULT_GATEWAY,
    token: text(options.token) || process.env.KV2_API_TOKEN || undefined,
    timeoutMs: seconds * 1000,
  });
}

/** The options with every text option's values as typed (see rawValues). */
export function withRawText(options: Record<string, unknown>, rawArgs: readonly string[], command: Command): Record<string, unknown> {
  const fixed = { ...options };
  for (const option of command.options) {
    if (option.isBoolean) continue;
    const raw = rawValues(rawArgs, [option.rawName.replace(/^--/, '').split(/[ ,]/)[0]!]);
    if (raw.length) fixed[option.name] = raw;
  }
  return fixed;
}

/** A text option's value (the last one when it is given twice). */
export function text(value: unknown): string | undefined {
  if (value === undefined || value === null || value === false) return undefined;
  const last = Array.isArray(value) ? value[value.length - 1] : value;
  return last === undefined || last === true ? undefined : String(last);
}

/** Plain-text table: columns padded to their widest cell. */
export function formatTable(headers: string[], rows: (string | number)[][]): string {
  const cells = [headers, ...rows.map((row) => row.map(String))];
  const widths = headers.map((_, i) => Math.max(...cells.map((row) => (row[i] ?? '').length)));
  return cells.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ').trimEnd()).join('\n');
}

export function statusName(status: number): string {
  return STATUS_NAMES[status as TaskStatus] ?? `status ${status}`;
}

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
      change: async (args, input) => {
        say(`> ${formatCommand('docker', args)}${dryRun ? '    (dry run: not run)' : ''}`);
        if (!dryRun) await docker.change(args, input);
      },
    },
    wait: async (seconds) => {
      if (seconds <= 0) return;
      say(dryRun ? `  (dry run: would wait ${seconds} s)` : `  waiting ${seconds} s`);
      if (!dryRun) await sleep(seconds * 1000);
    },
  };
}

/** Flags of the commands an operator runs on a judicator's machine, as an operator of its cluster. */
export const adminFlags: FlagSpec[] = [
  { name: 'work-dir', type: 'string', default: '.', description: "work dir of the judicator on this machine (its CA key makes the operator's certificate)", placeholder: 'dir' },
  { name: 'judicator', type: 'string', description: 'RPC address of the judicator to ask (default: the one in --work-dir)', placeholder: 'host:port' },
];

/** The RPC client of the judicator adminFlags name, with an operator's certificate made from its CA key. */
export async function adminClientFrom(flags: FlagValues): Promise<AdminClient> {
  // Loaded only when used: the X.509 library stays out of every other command's start.
  const { localAdminClient } = await import('../ops/admin');
  return localAdminClient({ workDir: String(flags['work-dir']), judicator: flags.judicator === undefined ? undefined : String(flags.judicator) });
}

/** A replica count typed by the operator. */
export function parseCount(value: unknown, what: string): number {
  const text = String(value ?? '').trim();
  if (!/^\d+$/.test(text)) throw new UsageError(`${what} must be a whole number of tasks (0 or more), not ${JSON.stringify(text)}`);
  const count = Number(text);
  if (count > 1000) throw new UsageError(`${what} must be at most 1000, not ${count}`);
  return count;
}
