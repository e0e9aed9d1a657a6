// Keeps secrets typed on a command line out of the process list: /proc/<pid>/cmdline is readable by
// every user of the machine (and by every task an executor runs without a sandbox). A process given a
// secret flag rewrites its own command line (process.title writes over the argv memory the kernel
// shows) with the values replaced; kv2 itself never passes a secret to a process it starts in argv
// (modules read theirs from 0600 config files; the child that prepares a role's identity gets the join
// token in its environment).
import fs from 'node:fs';

/**
 * What replaces a secret value in the process list: never longer than the value, since the new command
 * line must fit in the old one's memory (a longer one would be cut, losing the flags after it).
 */
function hidden(value: string): string {
  return '*'.repeat(Math.min(value.length, 3));
}

/**
 * `argv` with every flag in `names` (`--server-token`, with or without `=`) passed to `keep`, which says
 * what stands instead of the flag and its value (nothing: both go).
 */
function mapSecretFlags(argv: readonly string[], names: readonly string[], keep: (flag: string, value: string, joined: boolean) => string[]): string[] {
  const flags = new Set(names.map((name) => (name.startsWith('--') ? name : `--${name}`)));
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const at = arg.indexOf('=');
    if (arg.startsWith('--') && at > 0 && flags.has(arg.slice(0, at))) out.push(...keep(arg.slice(0, at), arg.slice(at + 1), true));
    else if (flags.has(arg) && i + 1 < argv.length) out.push(...keep(arg, argv[++i]!, false));
    else out.push(arg);
  }
  return out;
}

/** `argv` with the value of every flag in `names` (`--server-token`, with or without `=`) replaced. */
export function redactArgv(argv: readonly string[], names: readonly string[]): string[] {
  return mapSecretFlags(argv, names, (flag, value, joined) => (joined ? [`${flag}=${hidden(value)}`] : [flag, hidden(value)]));
}

/** `argv` without the flags in `names` and their values: for a process kv2 starts, which gets them another way. */
export function withoutSecretFlags(argv: readonly string[], names: readonly string[]): string[] {
  return mapSecretFlags(argv, names, () => []);
}

/**
 * The command line as the kernel shows it (a single executable's process.argv repeats the program, so
 * it is not that).
 */
function kernelArgv(): string[] {
  try {
    return fs.readFileSync('/proc/self/cmdline', 'utf8').replace(/\0$/, '').split('\0');
  } catch {
    return process.argv;
  }
}

/** Rewrites this process's command line when it carries one of the secret flags `names`. */
export function hideSecretFlags(names: readonly string[], argv: readonly string[] = kernelArgv()): void {
  const redacted = redactArgv(argv, names);
  if (redacted.every((arg, i) => arg === argv[i])) return;
  try {
    process.title = redacted.join(' ');
  } catch {
    // A platform without a settable title: nothing more can be done from inside.
  }
}
