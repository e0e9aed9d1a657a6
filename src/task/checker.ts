// A checker program's build (issue 17): how its source is compiled (in the compile step, after the
// solution) and run (once per test, `<run> <input> <output> <answer>`, testlib's order), by the extension
// of its name. The checker runs as the task's user, like the solution: it is user code too.

/** How one kind of checker source is built and started; the source is saved as `checker<ext>`. */
export interface CheckerBuild {
  /** The shell command that builds it in its own dir (null: nothing to build). */
  compile: string | null;
  /** The program and its first arguments; the three files follow. */
  run: readonly string[];
}

/**
 * The toolchain each extension names: C++ with g++ -O2 (testlib.h needs C++11, g++ 12 defaults to C++17),
 * C with gcc -O2, Python with python3, shell with bash.
 */
export const CHECKER_BUILDS: Readonly<Record<string, CheckerBuild>> = {
  '.cpp': { compile: 'g++ -O2 -o checker checker.cpp', run: ['./checker'] },
  '.cc': { compile: 'g++ -O2 -o checker checker.cc', run: ['./checker'] },
  '.cxx': { compile: 'g++ -O2 -o checker checker.cxx', run: ['./checker'] },
  '.c': { compile: 'gcc -O2 -o checker checker.c -lm', run: ['./checker'] },
  '.py': { compile: null, run: ['python3', 'checker.py'] },
  '.sh': { compile: null, run: ['bash', 'checker.sh'] },
};

/** The extension of a checker's source name (lower case, with its dot), or '' when it has none. */
export function checkerExtension(sourceName: string): string {
  const dot = sourceName.lastIndexOf('.');
  return dot > 0 ? sourceName.slice(dot).toLowerCase() : '';
}

/** The build of a checker named `sourceName`, or undefined when kv2 does not know how to build it. */
export function checkerBuild(sourceName: string): CheckerBuild | undefined {
  return CHECKER_BUILDS[checkerExtension(sourceName)];
}
