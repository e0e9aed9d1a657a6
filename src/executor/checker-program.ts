// A task's checker program (issue 17), testlib's convention: built once in its own dir after the
// solution compiled (with the compile step's limits), the dir then sealed (the executor's, read-only),
// then run after every test that ran to its end as `checker input.txt output.txt answer.txt` (the test's
// input, the solution's output, the expected output; there only while it runs), confined as the task
// user with limits of its own. Its exit code is the verdict: 0 accepted,
// 1 wrong answer, 2 presentation error (and testlib's 4 "dirt" and 8 "unexpected end of file", which it
// reports as a wrong output format), 3 the checker failed; anything else, a signal or a limit, is a checker
// that failed too. Its message is the first line of its stderr (testlib writes it there), else of its stdout.
import fs from 'node:fs';
import path from 'node:path';
import { findOnPath } from '../common/assets';
import { checkerBuild } from '../task/checker';
import { unpackBytes } from '../task/codec';
import type { Checker, StepLimits, TestVerdict } from '../task/types';
import type { StepResult, StepRunner } from './step-runner';
import type { TaskIdentity } from './task-user';

/** A checker's own limits when it runs (the solution's do not apply to it). */
export const CHECKER_TIME_MS = 10_000;
export const CHECKER_WALL_MS = 30_000;
export const CHECKER_MEMORY_KB = 1024 * 1024;
/** Bytes of a checker's stdout and stderr kept (its message is one line of them). */
export const CHECKER_OUTPUT_BYTES = 64 * 1024;
/** Characters of a checker's message kept in a test's report. */
export const CHECKER_MESSAGE_CHARS = 256;

const CHECKER_LIMITS: StepLimits = { time_ms: CHECKER_TIME_MS, memory_kb: CHECKER_MEMORY_KB, output: CHECKER_OUTPUT_BYTES };

/** The files a checker is given, in its dir. */
const FILES = { input: 'input.txt', output: 'output.txt', answer: 'answer.txt' } as const;

export interface CheckerVerdict {
  verdict: TestVerdict;
  message: string;
}

/** The first line of what a program said, cut to CHECKER_MESSAGE_CHARS. */
export function firstLine(...streams: Buffer[]): string {
  for (const stream of streams) {
    const line = stream.toString('utf8').split('\n').map((l) => l.trim()).find(Boolean);
    if (line) return line.length > CHECKER_MESSAGE_CHARS ? `${line.slice(0, CHECKER_MESSAGE_CHARS)}...` : line;
  }
  return '';
}

/** The verdict a checker's run gives (see the head of this file). */
export function checkerVerdict(run: StepResult): CheckerVerdict {
  const said = firstLine(run.error, run.output);
  const why = (reason: string) => ({ verdict: 'checker_error' as const, message: said ? `${reason}: ${said}` : reason });
  if (run.startError !== null) return why(`the checker could not run (${run.startError})`);
  // Its stderr then holds the limit's text, not anything the checker said.
  if (run.stopped !== null) return { verdict: 'checker_error', message: `the checker was stopped by its ${run.stopped === 'time' ? 'wall time' : run.stopped.replace('_', ' ')} limit` };
  if (run.report.signal !== null) return why(`the checker was killed by ${run.report.signal}`);
  switch (run.report.exit_code) {
    case 0:
      return { verdict: 'accepted', message: said };
    case 1:
      return { verdict: 'wrong_answer', message: said };
    case 2:
    case 4:
    case 8:
      return { verdict: 'presentation_error', message: said };
    case 3:
      return why('the checker failed');
    default:
      return why(`the checker exited with code ${run.report.exit_code}`);
  }
}

/** Writes `content` as `file`, replacing whatever is there (never writing through a link the checker made). */
function writeFresh(file: string, content: Buffer): void {
  fs.rmSync(file, { force: true });
  const fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o644);
  try {
    fs.writeSync(fd, content);
  } finally {
    fs.closeSync(fd);
  }
}

export class CheckerProgram {
  private constructor(
    private readonly dir: string,
    private readonly argv: readonly string[],
    private readonly run: StepRunner,
  ) {}

  /**
   * Builds the task's checker in `<task dir>/checker` (owned by the task user), with the compile step's
   * limits and timeout. Returns it, or why it cannot be used (its build's output for the task's
   * compile_error), or undefined when the task was cancelled meanwhile.
   */
  static async build(options: {
    checker: Extract<Checker, { kind: 'program' }>;
    taskDir: string;
    owner: TaskIdentity | undefined;
    run: StepRunner;
    compileTimeoutMs: number;
    compileLimits: StepLimits | undefined;
  }): Promise<{ checker: CheckerProgram } | { failure: string }> {
    const { checker } = options;
    const build = checkerBuild(checker.source_name);
    if (!build) return { failure: `kv2 cannot build a checker named ${checker.source_name}` };
    const dir = path.join(options.taskDir, 'checker');
    const extension = path.extname(checker.source_name).toLowerCase();
    fs.mkdirSync(dir, { mode: 0o700 });
    let source: Buffer;
    try {
      source = unpackBytes(checker.source);
    } catch {
      return { failure: 'the checker source is not valid zlib data' };
    }
    writeFresh(path.join(dir, `checker${extension}`), source);
    if (build.compile) writeFresh(path.join(dir, 'build.sh'), Buffer.from(`${build.compile}\n`));
    if (options.owner) for (const name of fs.readdirSync(dir).concat('.')) fs.chownSync(path.join(dir, name), options.owner.uid, options.owner.gid);
    // Interpreters and compiled checkers alike are started by absolute path (the step launcher's rule).
    const [program, ...rest] = build.run;
    const absolute = program!.startsWith('./') ? path.join(dir, program!.slice(2)) : findOnPath(program!);
    if (!absolute) return { failure: `${program} is not installed on this executor, so the checker ${checker.source_name} cannot run` };
    if (build.compile) {
      const built = await options.run({ step: 'compile', checker: true, script: 'build.sh', workDir: dir, stdinFile: null, timeoutMs: options.compileTimeoutMs, limits: options.compileLimits });
      if (!built.ok) {
        const said = Buffer.concat([built.output, built.error]).toString('utf8').trim();
        return { failure: `The checker ${checker.source_name} did not build (${build.compile}):\n${said}` };
      }
    }
    if (options.owner) seal(dir);
    return { checker: new CheckerProgram(dir, [absolute, ...rest], options.run) };
  }

  /** The verdict of the checker on one test. Its files are there only while it runs (the answer most of all). */
  async check(input: Buffer, output: Buffer, answer: Buffer): Promise<CheckerVerdict> {
    const files = Object.values(FILES).map((name) => path.join(this.dir, name));
    try {
      writeFresh(files[0]!, input);
      writeFresh(files[1]!, output);
      writeFresh(files[2]!, answer);
      const run = await this.run({
        step: 'execute',
        checker: true,
        argv: [...this.argv, FILES.input, FILES.output, FILES.answer],
        workDir: this.dir,
        stdinFile: null,
        timeoutMs: CHECKER_WALL_MS,
        limits: CHECKER_LIMITS,
      });
      return checkerVerdict(run);
    } finally {
      for (const file of files) fs.rmSync(file, { force: true });
    }
  }
}

/**
 * A built checker's dir, where tasks run as users of their own: the executor's, searchable but not
 * listable, its files read-only. Without a sandbox the solution runs as the same task user as the checker
 * and could otherwise replace the checker, or read an answer left in its dir.
 */
function seal(dir: string): void {
  const uid = process.getuid?.() ?? 0;
  const gid = process.getgid?.() ?? 0;
  for (const name of fs.readdirSync(dir)) {
    const file = path.join(dir, name);
    const stat = fs.lstatSync(file);
    if (stat.isDirectory()) {
      // What the build left in a dir of its own (object files): not the checker's to keep.
      fs.rmSync(file, { recursive: true, force: true });
      continue;
    }
    fs.lchownSync(file, uid, gid);
    if (stat.isFile()) fs.chmodSync(file, (stat.mode & 0o111) !== 0 ? 0o555 : 0o444);
  }
  fs.chownSync(dir, uid, gid);
  fs.chmodSync(dir, 0o711);
}
