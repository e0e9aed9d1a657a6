// The commands a documentation section tells a user to type, so that the container tests run those very
// commands (only the names of this run's container, volume, ports and directories swapped in).
import fs from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from '../helpers/kv2';

/**
 * The lines of the section under `heading`: up to the next heading of the same or a higher level (a `#`
 * line inside a code block is not a heading).
 */
function sectionLines(file: string, heading: string): string[] {
  const lines = fs.readFileSync(path.join(REPO_ROOT, file), 'utf8').split('\n');
  const start = lines.findIndex((line) => line.trim() === heading);
  if (start < 0) throw new Error(`${file} has no heading "${heading}"`);
  const level = heading.match(/^#+/)![0].length;
  const section: string[] = [];
  let inBlock = false;
  for (const line of lines.slice(start + 1)) {
    if (/^```/.test(line.trim())) inBlock = !inBlock;
    const headingMatch = /^(#+) /.exec(line);
    if (!inBlock && headingMatch && headingMatch[1]!.length <= level) break;
    section.push(line);
  }
  return section;
}

/** The ```sh blocks of the section under `heading`, as written (for scripts with here-documents). */
export function sectionBlocks(file: string, heading: string): string[] {
  const blocks: string[] = [];
  let block: string[] | undefined;
  for (const line of sectionLines(file, heading)) {
    if (/^```/.test(line.trim())) {
      if (block) blocks.push(block.join('\n'));
      block = !block && line.trim() === '```sh' ? [] : undefined;
      continue;
    }
    block?.push(line);
  }
  return blocks;
}

/**
 * The shell commands in the ```sh blocks of the section under `heading`: continuation lines joined,
 * comments dropped.
 */
export function sectionCommands(file: string, heading: string): string[] {
  const commands: string[] = [];
  for (const block of sectionBlocks(file, heading)) {
    let pending = '';
    for (const line of block.split('\n')) {
      const text = stripComment(line).trimEnd();
      if (text.endsWith('\\')) {
        pending += `${text.slice(0, -1).trim()} `;
        continue;
      }
      const command = (pending + text.trim()).trim();
      pending = '';
      if (command) commands.push(command);
    }
  }
  return commands;
}

/** The one command of `commands` that starts with `prefix`; throws (naming the doc) when there is not exactly one. */
export function theCommand(commands: string[], prefix: string, where: string): string {
  const found = commands.filter((c) => c.startsWith(prefix));
  if (found.length !== 1) throw new Error(`${where} should show exactly one command starting with "${prefix}", it shows ${found.length}:\n${commands.join('\n')}`);
  return found[0]!;
}

/** A `#` comment outside quotes ends the line. */
function stripComment(line: string): string {
  let quote: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote) {
      if (c === quote) quote = undefined;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '#' && (i === 0 || /\s/.test(line[i - 1]!))) return line.slice(0, i);
  }
  return line;
}

/** Splits a command line into words as sh would for the simple commands the docs show (quotes, no expansions). */
export function words(command: string): string[] {
  const out: string[] = [];
  let current = '';
  let quote: string | undefined;
  let started = false;
  for (const c of command) {
    if (quote) {
      if (c === quote) quote = undefined;
      else current += c;
    } else if (c === '"' || c === "'") {
      quote = c;
      started = true;
    } else if (/\s/.test(c)) {
      if (started || current) out.push(current);
      current = '';
      started = false;
    } else current += c;
  }
  if (quote) throw new Error(`unbalanced quote in: ${command}`);
  if (started || current) out.push(current);
  return out;
}

/** The instance names a test swaps into a documented command. */
export interface Instance {
  /** The documented container name (kv2) and this run's. */
  container: [string, string];
  /** The documented named volume (kv2-data) and this run's. */
  volume?: [string, string];
  /** The documented published port (7000) and the loopback port this run publishes it on. */
  port?: [number, number];
  /** Host directories in the docs and the temp dirs that stand in for them. */
  dirs?: [string, string][];
}

/**
 * A documented `docker ...` command as this run executes it: without the leading `docker` (the engine's
 * CLI runs it), with the instance's names, its ports on loopback only, and `-it` as `-i` (no terminal).
 */
export function forThisRun(command: string, instance: Instance): string[] {
  const argv = words(command);
  if (argv[0] !== 'docker') throw new Error(`not a docker command: ${command}`);
  const [docName, ourName] = instance.container;
  const out = argv.slice(1).map((word, i, all) => {
    const previous = all[i - 1];
    if (word === '-it') return '-i';
    if (previous === '--name' && word === docName) return ourName;
    if (word === `container:${docName}`) return `container:${ourName}`;
    if (previous === '--volumes-from' && word === docName) return ourName;
    if ((previous === '-p' || previous === '--publish') && instance.port && word === `${instance.port[0]}:${instance.port[0]}`) {
      return `127.0.0.1:${instance.port[1]}:${instance.port[0]}`;
    }
    if ((previous === '-v' || previous === '--volume') && word.includes(':')) {
      const [source, ...rest] = word.split(':');
      if (instance.volume && source === instance.volume[0]) return [instance.volume[1], ...rest].join(':');
      const dir = instance.dirs?.find(([doc]) => doc === source);
      if (dir) return [dir[1], ...rest].join(':');
    }
    const dir = instance.dirs?.find(([doc]) => word.startsWith(`${doc}/`) || word === doc);
    if (dir) return dir[1] + word.slice(dir[0].length);
    return word;
  });
  // The container a command acts on: the first word after the subcommand and its options.
  const valueOptions = VALUE_OPTIONS[out[0] ?? ''];
  if (valueOptions) {
    for (let i = 1; i < out.length; i++) {
      if (valueOptions.includes(out[i]!)) i++;
      else if (out[i]!.startsWith('-')) continue;
      else {
        if (out[i] === docName) out[i] = ourName;
        break;
      }
    }
  }
  return out;
}

/** The subcommands that act on a container, with their options that take a value. */
const VALUE_OPTIONS: Record<string, string[]> = {
  exec: ['-e', '--env', '-u', '--user', '-w', '--workdir'],
  stop: ['-t', '--time', '--timeout'],
  rm: [],
  logs: ['-n', '--tail', '--since', '--until'],
  inspect: ['-f', '--format'],
  kill: ['-s', '--signal'],
  start: [],
  restart: ['-t', '--time'],
};
