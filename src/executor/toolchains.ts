// The languages this executor can compile and run tasks in, found at its start: each toolchain the
// tasks' PATH has (gcc, g++, python3, javac and java, node, rustc, go), with the version it says. The
// executor registers them; the gateway counts, per language, the executors that have it.
import { execFile } from 'node:child_process';
import type { ExecutorLanguage } from '../task/types';

/** How long one toolchain may take to say its version (a JVM starts in a second on a busy machine). */
export const TOOLCHAIN_PROBE_TIMEOUT_MS = 15_000;

interface Probe {
  /** The language's name, as /api/languages shows it. */
  name: string;
  /** Programs a task needs for it; the first one is asked its version. */
  programs: string[];
  args: string[];
  /** The version in what the program printed (stdout and stderr together). */
  version: RegExp;
}

const PROBES: Probe[] = [
  { name: 'C', programs: ['gcc'], args: ['-dumpfullversion'], version: /^(\d+(?:\.\d+)*)/ },
  { name: 'C++', programs: ['g++'], args: ['-dumpfullversion'], version: /^(\d+(?:\.\d+)*)/ },
  { name: 'Python 3', programs: ['python3'], args: ['--version'], version: /Python (3\.\S+)/ },
  { name: 'Java', programs: ['javac', 'java'], args: ['-version'], version: /javac (\S+)/ },
  { name: 'JavaScript (Node.js)', programs: ['node'], args: ['--version'], version: /^v(\d\S*)/ },
  { name: 'Rust', programs: ['rustc'], args: ['--version'], version: /rustc (\S+)/ },
  { name: 'Go', programs: ['go'], args: ['version'], version: /go version go(\S+)/ },
];

/** What a program printed, or undefined when it is not there, failed or took too long. */
function ask(program: string, args: string[], env: NodeJS.ProcessEnv): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile(program, args, { env, timeout: TOOLCHAIN_PROBE_TIMEOUT_MS, maxBuffer: 64 * 1024, encoding: 'utf8' }, (error, stdout, stderr) => {
      resolve(error ? undefined : `${stdout}\n${stderr}`.trim());
    });
  });
}

/**
 * The languages whose toolchains answer on `path` (the tasks' PATH), in the order above. A program that
 * is there but does not say a version it recognises is not counted: a task could not rely on it.
 */
export async function detectLanguages(path: string): Promise<ExecutorLanguage[]> {
  const env = { PATH: path, LANG: 'C' };
  const found = await Promise.all(
    PROBES.map(async (probe) => {
      const [first, ...others] = probe.programs;
      const said = await ask(first!, probe.args, env);
      const version = said && probe.version.exec(said)?.[1];
      if (!version) return undefined;
      // Every other program must answer too (java beside javac).
      for (const other of others) if ((await ask(other, ['-version'], env)) === undefined) return undefined;
      return { name: probe.name, version };
    }),
  );
  return found.filter((language): language is ExecutorLanguage => language !== undefined);
}
