// `kv2 task submit|get|list|cancel|wait`: the command-line client of a gateway's API. Files and
// directories are zipped here; human tables by default (verdicts first: task-view.ts), `--json` for
// scripts; `--wait` and `wait` follow a task to its end (task-follow.ts: a progress line, and its output
// as it prints with submit --wait and wait --follow) and exit with a code that tells its verdict.
import fs from 'node:fs';
import path from 'node:path';
import type { CAC } from 'cac';
import { InvalidInputError, UsageError } from '../common/errors';
import { parseTime } from '../common/time';
import { writeZip, type ZipEntry } from '../task/zip';
import { addClientOptions, clientFrom, text, withRawText, type ClientOptions, type Run } from './shared';
import { followTask } from './task-follow';
import { TASK_EXIT_HELP, TaskExit, exitCodeOf, formatBriefs, formatTask } from './task-view';

const ACTIONS = ['submit', 'get', 'list', 'cancel', 'wait'] as const;
const LIMIT_NAMES = ['cpu-time', 'memory', 'processes', 'file-size', 'output', 'time-limit-ms', 'wall-limit-ms', 'memory-limit-kb', 'stack-limit-kb'] as const;
const LIMIT_HELP: Record<(typeof LIMIT_NAMES)[number], string> = {
  'cpu-time': 'CPU seconds',
  memory: 'bytes of memory',
  processes: 'processes at once',
  'file-size': 'largest file written, in bytes',
  output: 'bytes of output kept',
  'time-limit-ms': 'CPU time in milliseconds, measured (over it: time limit)',
  'wall-limit-ms': 'wall time in milliseconds',
  'memory-limit-kb': 'peak memory in KiB (over it: memory limit)',
  'stack-limit-kb': 'stack size in KiB',
};

function texts(value: unknown): string[] {
  if (value === undefined || value === null) return [];
  return (Array.isArray(value) ? value : [value]).map(String);
}

function print(line = ''): void {
  process.stdout.write(`${line}\n`);
}

/**
 * A zip of the given paths: a `.zip` file alone is sent as it is; files go in under their names,
 * directories with their contents (so `--source src/` puts src's files at the top of the task dir).
 */
export function zipPaths(paths: readonly string[], what: string): string | undefined {
  if (paths.length === 0) return undefined;
  if (paths.length === 1 && paths[0]!.toLowerCase().endsWith('.zip') && fs.statSync(paths[0]!, { throwIfNoEntry: false })?.isFile()) {
    return fs.readFileSync(paths[0]!).toString('base64');
  }
  const entries = new Map<string, ZipEntry>();
  const add = (file: string, name: string) => {
    if (entries.has(name)) throw new InvalidInputError(`${what}: two files would both be ${name} in the zip`);
    entries.set(name, { name, data: fs.readFileSync(file) });
  };
  const walk = (dir: string, prefix: string) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full, `${prefix}${entry.name}/`);
      else if (entry.isFile()) add(full, `${prefix}${entry.name}`);
      // Links and devices are left out: a zip with a link could point out of the task directory.
    }
  };
  for (const given of paths) {
    const stat = fs.statSync(given, { throwIfNoEntry: false });
    if (!stat) throw new InvalidInputError(`${what}: ${given} does not exist`);
    if (stat.isDirectory()) walk(given, '');
    else add(given, path.basename(given));
  }
  return writeZip([...entries.values()]).toString('base64');
}

function readTextOption(value: unknown, file: unknown, flag: string): string | undefined {
  const inline = text(value);
  const fromFile = text(file);
  if (inline !== undefined && fromFile !== undefined) throw new UsageError(`give --${flag} or --${flag}-file, not both`);
  if (fromFile === undefined) return inline;
  try {
    return fs.readFileSync(fromFile === '-' ? 0 : fromFile, 'utf8');
  } catch (error) {
    throw new UsageError(`--${flag}-file: cannot read ${fromFile}: ${(error as Error).message}`);
  }
}

/** The JSON fields of `POST /api/task` from the submit flags. */
export function submissionFields(options: Record<string, unknown>): Record<string, unknown> {
  const execute = text(options.execute);
  if (!execute) throw new UsageError('kv2 task submit needs --execute <command> (the command that runs the task)');
  const fields: Record<string, unknown> = {
    user: text(options.user) ?? '0',
    compile_command: text(options.compile) ?? '',
    compile_timeout: text(options.compileTimeout) ?? '30',
    execute_command: execute,
    execute_timeout: text(options.executeTimeout) ?? '10',
    execute_input: readTextOption(options.input, options.inputFile, 'input') ?? '',
    execute_standard: readTextOption(options.standard, options.standardFile, 'standard') ?? '',
  };
  const source = zipPaths(texts(options.source), '--source');
  if (source) fields.compile_source = source;
  const data = zipPaths(texts(options.data), '--data');
  if (data) fields.execute_data = data;
  for (const step of ['compile', 'execute']) {
    for (const limit of LIMIT_NAMES) {
      const key = `${step}${limit.replace(/(^|-)([a-z])/g, (_, __, c: string) => c.toUpperCase())}`;
      const value = text(options[key]);
      if (value !== undefined) fields[`${step}_${limit.replace(/-/g, '_')}`] = value;
    }
  }
  if (options.network) fields.network = true;
  Object.assign(fields, judgeFields(options));
  const callback = text(options.callbackUrl);
  if (callback !== undefined) fields.callback_url = callback;
  return fields;
}

/**
 * Issue 17's fields: --tests (a directory of <name>.in / <name>.out files, or a .zip of them, sent as
 * tests_zip; the gateway pairs them), --test-mode, --checker and --checker-source (a file: its name says
 * how the checker is built; --checker program is then implied).
 */
function judgeFields(options: Record<string, unknown>): Record<string, unknown> {
  const fields: Record<string, unknown> = {};
  const tests = zipPaths(texts(options.tests), '--tests');
  if (tests) fields.tests_zip = tests;
  const mode = text(options.testMode);
  if (mode !== undefined) fields.test_mode = mode;
  const checker = text(options.checker);
  const source = text(options.checkerSource);
  if (source !== undefined) {
    if (checker !== undefined && checker !== 'program') throw new UsageError(`--checker-source goes with --checker program, not --checker ${checker}`);
    let body: string;
    try {
      body = fs.readFileSync(source, 'utf8');
    } catch (error) {
      throw new UsageError(`--checker-source: cannot read ${source}: ${(error as Error).message}`);
    }
    Object.assign(fields, { checker: 'program', checker_source_name: path.basename(source), checker_source_str: body });
  } else if (checker !== undefined) {
    fields.checker = checker;
  }
  return fields;
}

function needId(args: string[], action: string): string {
  const id = args[0];
  if (!id) throw new UsageError(`kv2 task ${action} needs a task id`);
  return id;
}

function positiveSeconds(value: unknown, flag: string, fallback: number): number {
  const given = text(value);
  if (given === undefined) return fallback;
  const seconds = Number(given);
  if (!Number.isFinite(seconds) || seconds < 0) throw new UsageError(`--${flag} must be a number of seconds, not ${JSON.stringify(given)}`);
  return seconds;
}

export async function runTaskCommand(action: string, args: string[], options: Record<string, unknown>): Promise<number> {
  if (!(ACTIONS as readonly string[]).includes(action)) throw new UsageError(`unknown action "${action}": kv2 task ${ACTIONS.join('|')}`);
  const client = clientFrom(options as ClientOptions);
  const json = Boolean(options.json);
  const wait = async (id: string, follow: boolean) => {
    const followed = await followTask(client, id, {
      intervalMs: positiveSeconds(options.pollInterval, 'poll-interval', 0.5) * 1000,
      timeoutMs: positiveSeconds(options.waitTimeout, 'wait-timeout', 0) * 1000,
      quiet: json,
      output: follow,
    });
    if (!followed) {
      process.stderr.write(`kv2: task ${id} is not done yet (--wait-timeout reached)\n`);
      return TaskExit.WAIT_TIMEOUT;
    }
    if (json) print(JSON.stringify(followed.task, null, 2));
    else {
      const shown = formatTask(followed.task, follow ? followed.streamed : undefined);
      process.stderr.write(shown.err);
      process.stdout.write(shown.out);
    }
    return exitCodeOf(followed.task);
  };

  switch (action) {
    case 'submit': {
      const id = await client.submit(submissionFields(options));
      if (!options.wait) {
        print(json ? JSON.stringify({ id }) : id);
        return 0;
      }
      if (!json) process.stderr.write(`submitted task ${id}\n`);
      // submit --wait shows the task's output as it prints, as wait --follow does.
      return wait(id, true);
    }
    case 'wait':
      return wait(needId(args, action), Boolean(options.follow));
    case 'get': {
      const id = needId(args, action);
      const file = text(options.file);
      if (file) {
        process.stdout.write(await client.file(id, file));
        return 0;
      }
      const task = await client.get(id, { noTruncate: Boolean(options.full) });
      if (json) print(JSON.stringify(task, null, 2));
      else process.stdout.write(formatTask(task).out);
      return 0;
    }
    case 'list': {
      const time = (value: unknown, flag: string) => {
        const given = text(value);
        if (given === undefined) return undefined;
        if (parseTime(given) === undefined) throw new UsageError(`--${flag} must be an ISO time such as 2026-01-31T12:00:00Z, not ${JSON.stringify(given)}`);
        return given;
      };
      const user = text(options.user);
      const page = Number(text(options.page) ?? 1) - 1;
      if (!Number.isInteger(page) || page < 0) throw new UsageError('--page counts from 1');
      const limit = Number(text(options.limit) ?? 20);
      const answer = await client.list({
        id: text(options.id),
        user: user === undefined ? undefined : Number(user),
        start_time: time(options.since, 'since'),
        end_time: time(options.until, 'until'),
        old_to_new: Boolean(options.oldestFirst),
        limit,
        page,
      });
      if (json) print(JSON.stringify(answer, null, 2));
      else process.stdout.write(formatBriefs(answer.tasks, answer.pages, page));
      return 0;
    }
    case 'cancel': {
      if (args.length === 0) throw new UsageError('kv2 task cancel needs one or more task ids');
      let failed = 0;
      for (const id of args) {
        try {
          await client.cancel(id);
          print(json ? JSON.stringify({ id, cancelled: true }) : `cancelled ${id}`);
        } catch (error) {
          failed++;
          if (json) print(JSON.stringify({ id, cancelled: false, message: (error as Error).message }));
          else process.stderr.write(`kv2: cannot cancel ${id}: ${(error as Error).message}\n`);
        }
      }
      return failed ? TaskExit.ERROR : 0;
    }
  }
  return 0;
}

export function registerTaskCommand(cli: CAC, run: Run): void {
  const command = cli
    .command('task <action> [...ids]', 'Client of a gateway: submit, get, list, cancel or wait for tasks')
    .usage(
      'task submit --execute <command> [--source file|dir] [--compile <command>] [--input <text>] [--wait]\n' +
        '  kv2 task get|wait <id>   kv2 task cancel <id>...   kv2 task list [--user N]\n\n' +
        TASK_EXIT_HELP,
    )
    .option('--user <n>', 'submit/list: user id (default: 0 for submit)', { type: [String] })
    .option('--source <path>', 'submit: source file, directory or .zip, unpacked at the top of the task directory (repeatable)', { type: [String] })
    .option('--compile <command>', 'submit: compile command, run by bash (default: none)', { type: [String] })
    .option('--compile-timeout <seconds>', 'submit: compile timeout, 0 = none (default: 30)', { type: [String] })
    .option('--input <text>', 'submit: standard input of the execute step', { type: [String] })
    .option('--input-file <path>', 'submit: file holding the input (- for stdin)', { type: [String] })
    .option('--data <path>', 'submit: data file, directory or .zip, unpacked into data/ (repeatable)', { type: [String] })
    .option('--execute <command>', 'submit: execute command, run by bash (required)', { type: [String] })
    .option('--execute-timeout <seconds>', 'submit: execute timeout, 0 = none (default: 10)', { type: [String] })
    .option('--standard <text>', 'submit: expected output, compared when the task succeeds', { type: [String] })
    .option('--standard-file <path>', 'submit: file holding the expected output', { type: [String] });
  for (const step of ['compile', 'execute']) {
    for (const limit of LIMIT_NAMES) command.option(`--${step}-${limit} <n>`, `submit: ${step} step limit: ${LIMIT_HELP[limit]}`, { type: [String] });
  }
  command
    .option('--tests <path>', 'submit: a directory (or .zip) of tests, <name>.in and <name>.out each: compiled once, run on every test', { type: [String] })
    .option('--test-mode <mode>', 'submit: first_fail (stop at the first failing test, the default) or all', { type: [String] })
    .option('--checker <checker>', 'submit: exact (default), tokens, float:<error> (such as float:1e-6) or program', { type: [String] })
    .option('--checker-source <file>', 'submit: a checker program (.cpp, .c, .py, .sh), run as: checker <input> <output> <answer>; exit 0 accepted, 1 wrong answer, 2 presentation error, 3 failed', { type: [String] })
    .option('--callback-url <url>', 'submit: where the finished task is POSTed (to a host the cluster allows)', { type: [String] })
    .option('--network', 'submit: the task needs network access')
    .option('--wait', "submit: wait for the result (showing the task's progress and output as it runs), print it, and exit with its verdict's code")
    .option('--follow', "wait: show the task's output as it prints (stdout to stdout, stderr to stderr), then its result")
    .option('--wait-timeout <seconds>', 'submit --wait/wait: give up after this long (exit 8; default: never)', { type: [String] })
    .option('--poll-interval <seconds>', 'submit --wait/wait: seconds between checks of a gateway that cannot hold a request until the task is done (older), or cannot be reached (default: 0.5)', { type: [String] })
    .option('--file <name>', 'get: print one field raw (compile_output, execute_output, compile_source, ...)', { type: [String] })
    .option('--full', 'get: show long text whole instead of its first 1000 characters (the API\'s no_truncate)')
    .option('--id <id>', 'list: only this task', { type: [String] })
    .option('--since <time>', 'list: added at or after this ISO time', { type: [String] })
    .option('--until <time>', 'list: added at or before this ISO time', { type: [String] })
    .option('--oldest-first', 'list: oldest first (default: newest first)')
    .option('--limit <n>', 'list: tasks per page (default: 20; 0 = all)', { type: [String] })
    .option('--page <n>', 'list: page, from 1', { type: [String] });
  addClientOptions(command);
  command
    .example('task submit --source main.cpp --compile "g++ -O2 -o main main.cpp" --input World --execute ./main --wait')
    .example('task submit --source main.cpp --compile "g++ -O2 -o main main.cpp" --execute ./main --tests tests/ --execute-time-limit-ms 1000 --wait')
    .example('task list --user 0')
    .example('task wait --follow 6a4f0c2b9d3e1f0a12345678')
    .action((action: string, ids: string[], options: Record<string, unknown>) => run(() => runTaskCommand(action, ids, withRawText(options, cli.rawArgs, command))));
}
