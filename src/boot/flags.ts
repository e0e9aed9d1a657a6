// Command-line flags as data: every flag of every role is declared once (name, type, default, help),
// parsed and validated here, and turned into config files by the module that owns it. A bad value is a
// UsageError with a one-line message naming the flag.
import fs from 'node:fs';
import os from 'node:os';
import { ConfigError, UsageError } from '../common/errors';

export type FlagValue = string | number | boolean | string[] | undefined;
export type FlagValues = Record<string, FlagValue>;

export interface FlagSpec {
  /** Long name without dashes: `etcd-listen-peer-port`. */
  name: string;
  aliases?: string[];
  type: 'string' | 'int' | 'number' | 'boolean' | 'strings';
  /** The value when the flag is not given; a function computes it (hostname, say). */
  default?: FlagValue | (() => FlagValue);
  /** How help shows a computed default ("the hostname"). */
  defaultText?: string;
  description: string;
  /** Environment variable read when the flag is absent (KV2_JOIN_TOKEN). */
  env?: string;
  /** Bounds for int and number flags. */
  min?: number;
  max?: number;
  /** Allowed values for a string flag. */
  choices?: readonly string[];
  /** Extra check of a parsed value; returns the reason it is bad. */
  check?: (value: NonNullable<FlagValue>) => string | undefined;
  /** Value placeholder in help (`<port>`). */
  placeholder?: string;
  /** Hidden flags are accepted but not listed (compatibility spellings). */
  hidden?: boolean;
  /** A secret (a token): taken out of the process list once read (common/hide-argv.ts). */
  secret?: boolean;
}

export const PORT = { type: 'int', min: 1, max: 65535, placeholder: 'port' } as const;

/** Flags declared by several modules (main-name in standalone) merge into one; the first declaration wins. */
export function mergeFlags(groups: readonly (readonly FlagSpec[])[]): FlagSpec[] {
  const byName = new Map<string, FlagSpec>();
  for (const group of groups) {
    for (const flag of group) {
      const existing = byName.get(flag.name);
      if (!existing) byName.set(flag.name, flag);
      else if (existing.type !== flag.type) {
        throw new Error(`flag --${flag.name} is declared twice with different types`);
      }
    }
  }
  return [...byName.values()];
}

/** The cac raw option name: `--etcd-listen-peer-port <port>` (aliases first). */
export function cacOptionName(flag: FlagSpec): string {
  const names = [...(flag.aliases ?? []), flag.name].map((n) => `--${n}`).join(', ');
  if (flag.type === 'boolean') return names;
  const placeholder = flag.placeholder ?? (flag.type === 'int' || flag.type === 'number' ? 'n' : 'value');
  return flag.type === 'strings' ? `${names} <${placeholder}>` : `${names} <${placeholder}>`;
}

/** Help text with the default spelled out, since kv2 applies defaults itself (to know what was given). */
export function helpText(flag: FlagSpec): string {
  let text = flag.description;
  if (flag.choices) text += ` (one of: ${flag.choices.join(', ')})`;
  const shown = flag.defaultText ?? (typeof flag.default === 'function' ? undefined : formatDefault(flag.default));
  if (shown !== undefined) text += ` (default: ${shown})`;
  if (flag.env) text += ` [env ${flag.env}]`;
  return text;
}

function formatDefault(value: FlagValue): string | undefined {
  if (value === undefined) return undefined;
  if (Array.isArray(value)) return value.length ? value.join(', ') : undefined;
  if (value === '') return '""';
  return String(value);
}

/** cac camel-cases option names (a dash between two lower-case letters); this mirrors it. */
function camel(name: string): string {
  return name.replace(/([a-z])-([a-z])/g, (_, a: string, b: string) => a + b.toUpperCase());
}

/**
 * The values of `--<name>` (any of `names`) exactly as typed. The argument parser turns number-like text
 * into numbers ("007" into 7) before cac sees it, which is wrong for names, prefixes, tokens and inputs.
 */
export function rawValues(rawArgs: readonly string[], names: readonly string[]): string[] {
  const found: string[] = [];
  for (let i = 0; i < rawArgs.length; i++) {
    const arg = rawArgs[i]!;
    if (arg === '--') break;
    const name = names.find((n) => arg === `--${n}` || arg.startsWith(`--${n}=`));
    if (name === undefined) continue;
    if (arg !== `--${name}`) found.push(arg.slice(name.length + 3));
    else if (i + 1 < rawArgs.length) found.push(rawArgs[++i]!);
  }
  return found;
}

function hasNumber(value: unknown): boolean {
  return typeof value === 'number' || (Array.isArray(value) && value.some((v) => typeof v === 'number'));
}

/**
 * Resolves every flag's value: command line first, then the flag's environment variable, then the
 * `--config` file, then the default. Throws UsageError (or ConfigError for the file) on a bad value.
 */
export function resolveFlags(
  flags: readonly FlagSpec[],
  given: Record<string, unknown>,
  fromFile: Record<string, unknown> = {},
  rawArgs: readonly string[] = [],
): FlagValues {
  const values: FlagValues = {};
  for (const flag of flags) {
    const names = [flag.name, ...(flag.aliases ?? [])];
    let cliValue = names.map((n) => given[camel(n)]).find((v) => v !== undefined);
    if ((flag.type === 'string' || flag.type === 'strings') && hasNumber(cliValue)) {
      const raw = rawValues(rawArgs, names);
      if (raw.length) cliValue = flag.type === 'string' ? raw[raw.length - 1] : raw;
    }
    if (cliValue !== undefined) {
      values[flag.name] = parseFlagValue(flag, cliValue, `--${flag.name}`, UsageError);
      continue;
    }
    const envValue = flag.env ? process.env[flag.env] : undefined;
    if (envValue !== undefined && envValue !== '') {
      values[flag.name] = parseFlagValue(flag, envValue, `${flag.env}`, UsageError);
      continue;
    }
    const fileValue = names.map((n) => fromFile[n]).find((v) => v !== undefined);
    if (fileValue !== undefined) {
      values[flag.name] = parseFlagValue(flag, fileValue, `"${flag.name}" in the config file`, ConfigError);
      continue;
    }
    values[flag.name] = typeof flag.default === 'function' ? flag.default() : flag.default;
  }
  return values;
}

type ErrorClass = new (message: string) => Error;

export function parseFlagValue(flag: FlagSpec, raw: unknown, where: string, Err: ErrorClass): FlagValue {
  // A flag given twice arrives as an array: the last one wins, as with most tools.
  if (Array.isArray(raw) && flag.type !== 'strings') raw = raw[raw.length - 1];
  let value: NonNullable<FlagValue>;
  switch (flag.type) {
    case 'boolean':
      if (typeof raw === 'boolean') value = raw;
      else if (raw === 'true' || raw === '1') value = true;
      else if (raw === 'false' || raw === '0') value = false;
      else throw new Err(`${where} must be true or false, not ${JSON.stringify(raw)}`);
      break;
    case 'int':
    case 'number': {
      const text = String(raw).trim();
      const number = typeof raw === 'number' ? raw : text === '' ? NaN : Number(text);
      if (!Number.isFinite(number) || (flag.type === 'int' && !Number.isInteger(number))) {
        throw new Err(`${where} must be ${flag.type === 'int' ? 'a whole number' : 'a number'}, not ${JSON.stringify(raw)}`);
      }
      if (flag.min !== undefined && number < flag.min) throw new Err(`${where} must be at least ${flag.min}, not ${number}`);
      if (flag.max !== undefined && number > flag.max) throw new Err(`${where} must be at most ${flag.max}, not ${number}`);
      value = number;
      break;
    }
    case 'strings': {
      const list = (Array.isArray(raw) ? raw : [raw]).map(String);
      value = list.flatMap((item) => item.split(',')).map((s) => s.trim()).filter(Boolean);
      break;
    }
    case 'string':
      if (typeof raw === 'boolean') throw new Err(`${where} needs a value`);
      value = String(raw);
      if (flag.choices && !flag.choices.includes(value)) {
        throw new Err(`${where} must be one of ${flag.choices.join(', ')}, not ${JSON.stringify(value)}`);
      }
      break;
  }
  const problem = flag.check?.(value);
  if (problem) throw new Err(`${where}: ${problem}`);
  return value;
}

/** A flag's number; undefined when it is not given. */
export function optionalNumber(value: FlagValue): number | undefined {
  return value === undefined ? undefined : Number(value);
}

/** A flag's text; null when it is not given or empty. */
export function optionalText(value: FlagValue): string | null {
  return value === undefined || value === '' ? null : String(value);
}

/** Reads a `--config` file: a JSON object of flag names (without dashes) to values. */
export function readFlagFile(file: string, flags: readonly FlagSpec[]): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (error as Error).message;
    throw new ConfigError(`cannot read config file ${file}: ${reason}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ConfigError(`config file ${file} must hold a JSON object of flag names to values`);
  }
  const known = new Set(flags.flatMap((f) => [f.name, ...(f.aliases ?? [])]));
  for (const key of Object.keys(parsed)) {
    if (!known.has(key)) throw new ConfigError(`config file ${file}: unknown flag "${key}"`);
  }
  return parsed as Record<string, unknown>;
}

/**
 * Node names: the original's `ENV` means "read the environment variable NAME" (docker swarm's
 * `{{.Service.Name}}.{{.Task.Slot}}`). Names end up in etcd keys and URLs, so they are kept simple.
 */
export function resolveNodeName(value: string): string {
  if (value === 'ENV') {
    const fromEnv = process.env.NAME;
    if (!fromEnv) throw new UsageError('a name flag is ENV but the environment variable NAME is not set');
    return fromEnv;
  }
  return value;
}

export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

export function checkNodeName(value: NonNullable<FlagValue>): string | undefined {
  const name = String(value);
  if (name === 'ENV') return undefined;
  return NAME_PATTERN.test(name) ? undefined : 'a name is 1-128 letters, digits, "_", "." or "-", starting with a letter or digit';
}

export function hostnameDefault(): string {
  return os.hostname().replace(/[^A-Za-z0-9_.-]/g, '-') || 'kv2';
}

/** A module's `--<x>-name` flag: a node name, the hostname unless given, ENV for $NAME (resolveNodeName). */
export function nodeNameFlag(name: string, description: string): FlagSpec {
  return { name, type: 'string', default: hostnameDefault, defaultText: 'the hostname', check: checkNodeName, description, placeholder: 'name' };
}

/**
 * The original's address words: ALL is 0.0.0.0, DOCKER is this container's own address, other all-caps
 * words name a network interface (its first IPv4 address), anything else is used as written.
 */
export function resolveAddress(value: string): string {
  if (value === 'ALL') return '0.0.0.0';
  if (value === 'DOCKER') return containerAddress();
  if (!/^[A-Z][A-Z0-9_]*$/.test(value)) return value;
  const iface = os.networkInterfaces()[value.toLowerCase()];
  const ipv4 = iface?.find((a) => a.family === 'IPv4');
  if (!ipv4) throw new UsageError(`network interface ${value.toLowerCase()} (from the address ${value}) has no IPv4 address`);
  return ipv4.address;
}

/**
 * DOCKER: the IPv4 address of the first non-loopback interface, which in a swarm task is its address
 * on the service's first network (eth0; the overlay network kv2 swarm attaches), so the other
 * containers of that network reach it there. The original used the container's name and asked the
 * Docker API for it; an address needs neither the docker socket nor DNS. Where that interface is the
 * wrong one (several networks, published ports on the ingress network), name the interface: ETH1.
 */
export function containerAddress(): string {
  for (const addresses of Object.values(os.networkInterfaces())) {
    const ipv4 = addresses?.find((a) => a.family === 'IPv4' && !a.internal);
    if (ipv4) return ipv4.address;
  }
  throw new UsageError('the address DOCKER means this container\'s own IPv4 address, but no network interface other than loopback has one');
}
