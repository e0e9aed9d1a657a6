// Judging on an executor (issue 17), with real processes, plain and confined: a task's tests share one
// compile and each runs in a fresh work dir; every way a run can fail gets its verdict on the right test,
// measured against millisecond limits; first_fail skips the rest, all runs them; the built-in checkers
// and a checker program (testlib's exit codes) decide; a task without tests is one test named "1".
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { packText } from '../../src/task/codec';
import { TaskStatus, type Checker, type JudgeSpec, type TestReport } from '../../src/task/types';
import { MODES, harness, text } from '../helpers/executor-harness';
import type { TaskSpec } from '../helpers/task';
import { makeTempDir } from '../helpers/temp';

/** A judge of `tests` given as [name, input, expected output]. */
function judge(tests: [string, string, string][], options: { mode?: JudgeSpec['mode']; checker?: Checker } = {}): JudgeSpec {
  return {
    mode: options.mode ?? 'first_fail',
    checker: options.checker ?? { kind: 'exact' },
    tests: tests.map(([name, input, output]) => ({ name, input: packText(input), output: packText(output) })),
  };
}

function verdicts(tests: TestReport[] | undefined): string[] {
  return (tests ?? []).map((t) => `${t.name}:${t.verdict}`);
}

/**
 * A C solution that doubles a number, and fails on purpose as its input says: wa, tle (spins), slow
 * (spins about 0.4 s of CPU, then answers right), mle (fills 128 MiB), segv, exit (42).
 */
const SOLUTION = `
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>
static void spin(double seconds) { clock_t end = clock() + (clock_t)(seconds * CLOCKS_PER_SEC); volatile unsigned long x = 0; while (clock() < end) x++; }
int main(void) {
  char word[32]; long n = 0;
  if (scanf("%31s %ld", word, &n) < 1) return 3;
  if (!strcmp(word, "wa")) { printf("%ld\\n", 2 * n + 1); return 0; }
  if (!strcmp(word, "tle")) { for (;;) spin(1); }
  if (!strcmp(word, "slow")) spin(0.4);
  if (!strcmp(word, "mle")) {
    /* Huge pages where the kernel has them: a fault per 2 MiB, not per 4 KiB (each costs CPU time). */
    size_t size = 128u << 20;
    void *memory = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (memory == MAP_FAILED) return 4;
    madvise(memory, size, MADV_HUGEPAGE);
    volatile char *p = memory;
    for (size_t i = 0; i < size; i += 4096) p[i] = (char)n;
    printf("%d\\n", p[size - 4096]);
  }
  if (!strcmp(word, "segv")) { volatile int *p = 0; *p = 1; }
  if (!strcmp(word, "exit")) return 42;
  printf("%ld\\n", 2 * n);
  return 0;
}
`;

function solution(judgeSpec: JudgeSpec, limits: TaskSpec['executeLimits'] = {}): TaskSpec {
  return {
    compile: `cat > main.c <<'EOF'\n${SOLUTION}\nEOF\ngcc -O1 -o main main.c`,
    compileTimeout: 60,
    execute: './main',
    executeTimeout: 20,
    executeLimits: limits,
    judge: judgeSpec,
  };
}

for (const mode of MODES) test(`[${mode}] twenty tests share one compile, each in a fresh work dir that the previous test could not change`, async (t) => {
  const h = await harness(t, mode);
  const tests: [string, string, string][] = Array.from({ length: 20 }, (_, i) => [`t${String(i + 1).padStart(2, '0')}`, `${i}\n`, `clean ${i}\n`]);
  const run = await h.run({
    // The compile step leaves a nonce: every test must see the same one (one compile), and a clean dir.
    compile: 'head -c 8 /dev/urandom | od -An -tx1 | tr -d " \\n" > nonce; printf "#!/bin/bash\\necho base\\n" > tool; chmod +x tool',
    execute: [
      'read n',
      'if [ -e leftover ] || [ -e made ] || [ ! -e nonce ] || [ "$(stat -c %a data)" != 755 ]; then echo "dirty $n"; else echo "clean $n"; fi',
      'cat nonce >&2; ./tool >&2',
      // Each test tries to leave files for the next, to change the compiled tool in place (as the task
      // user the linked tool cannot be changed at all; as the executor's user, only this test's copy), to
      // remove a file of the compile's and to close a dir.
      'touch leftover; { echo echo hacked >> tool; } 2>/dev/null; mkdir -p made/deep; rm -f nonce; chmod 000 data',
    ].join('\n'),
    judge: judge(tests, { mode: 'all' }),
  });
  assert.equal(run.status, TaskStatus.SUCCESS, JSON.stringify(run.result!.tests));
  assert.equal(run.result!.verdict, 'accepted');
  assert.equal(run.result!.accepted, true);
  assert.deepEqual(verdicts(run.result!.tests), tests.map(([name]) => `${name}:accepted`));
  assert.deepEqual(run.stepCounts, { compile: 1, execute: 20, checker: 0 }, 'one compile, one run per test');
  // The last test's run is the one shown: the compile's nonce, and the tool as compile made it.
  assert.match(text(run, 'execute_error'), /^[0-9a-f]{16}base\n$/);
  for (const report of run.result!.tests!) {
    assert.ok(report.time_ms !== null && report.wall_ms !== null, `${report.name} reports its times`);
    assert.equal(report.exit_code, 0);
  }
});

for (const mode of MODES) test(`[${mode}] a test that swaps a dir of its work dir for a link out of it: the next test has the dir back, and nothing the link points to is touched`, async (t) => {
  const h = await harness(t, mode);
  const outside = makeTempDir(t);
  fs.writeFileSync(path.join(outside, 'precious'), 'keep me');
  const run = await h.run({
    compile: 'mkdir sub; echo inside > sub/file',
    execute: `read n; if [ -L sub ] || [ "$(cat sub/file)" != inside ]; then echo "swapped $n"; else echo "fine $n"; fi; rm -rf sub; ln -s ${outside} sub`,
    judge: judge(
      [1, 2, 3].map((n) => [`${n}`, `${n}\n`, `fine ${n}\n`]),
      { mode: 'all' },
    ),
  });
  assert.deepEqual(verdicts(run.result!.tests), ['1:accepted', '2:accepted', '3:accepted'], JSON.stringify(run.result));
  assert.equal(fs.readFileSync(path.join(outside, 'precious'), 'utf8'), 'keep me');
});

for (const mode of MODES) test(`[${mode}] every way a run fails gets its verdict, on the right test, with the reason; test_mode all runs them all`, async (t) => {
  const h = await harness(t, mode);
  const run = await h.run(
    solution(
      judge(
        [
          ['ok', 'ok 5', '10'],
          ['wrong', 'wa 5', '10'],
          ['spin', 'tle 1', '2'],
          ['slow', 'slow 1', '2'],
          ['hog', 'mle 1', '1\n2'],
          ['crash', 'segv 1', '2'],
          ['code', 'exit 1', '2'],
          ['last', 'ok 21', '42'],
        ],
        { mode: 'all' },
      ),
      { time_ms: 200, memory_kb: 16 * 1024 },
    ),
  );
  assert.equal(run.stepCounts.compile, 1);
  const byName = new Map(run.result!.tests!.map((report) => [report.name, report]));
  assert.deepEqual(
    verdicts(run.result!.tests),
    [
    'ok:accepted',
    'wrong:wrong_answer',
    'spin:time_limit',
    'slow:time_limit',
    'hog:memory_limit',
    'crash:runtime_error',
    'code:runtime_error',
    'last:accepted',
    ],
    JSON.stringify(run.result!.tests),
  );
  assert.match(byName.get('wrong')!.message, /line 1 differs: expected "10", found "11"/);
  // Judged by the CPU time it took, in milliseconds: even the one that finished with the right answer.
  for (const name of ['spin', 'slow']) {
    const report = byName.get(name)!;
    assert.ok(report.time_ms! > 200, `${name}: ${report.time_ms} ms`);
    assert.match(report.message, /^CPU time \d+\.\d\d s > 0\.20 s$|^wall time/, `${name}: ${report.message}`);
  }
  assert.ok(byName.get('ok')!.time_ms! < 200);
  assert.ok(byName.get('hog')!.memory_kb === null || byName.get('hog')!.memory_kb! > 0);
  assert.match(byName.get('crash')!.message, /SIGSEGV|exit code 139/);
  assert.equal(byName.get('code')!.message, 'exit code 42');
  assert.equal(byName.get('code')!.exit_code, 42);
  // The task: the first failing test's verdict, Run failed (tests did not finish normally), its output shown.
  assert.equal(run.result!.verdict, 'wrong_answer');
  assert.equal(run.status, TaskStatus.RUN_FAILED);
  assert.equal(run.result!.accepted, false);
  assert.equal(text(run, 'execute_output'), '11\n');
});

for (const mode of MODES) test(`[${mode}] first_fail stops at the first failure: the rest are skipped, a wrong answer is a successful run`, async (t) => {
  const h = await harness(t, mode);
  const run = await h.run(solution(judge([['a', 'ok 1', '2'], ['b', 'wa 1', '2'], ['c', 'segv 1', '2'], ['d', 'ok 2', '4']])));
  assert.deepEqual(verdicts(run.result!.tests), ['a:accepted', 'b:wrong_answer', 'c:skipped', 'd:skipped']);
  assert.deepEqual(run.stepCounts, { compile: 1, execute: 2, checker: 0 });
  assert.equal(run.status, TaskStatus.SUCCESS);
  assert.equal(run.result!.verdict, 'wrong_answer');
  const skipped = run.result!.tests![2]!;
  assert.deepEqual([skipped.time_ms, skipped.wall_ms, skipped.memory_kb, skipped.exit_code], [null, null, null, null]);
});

for (const mode of MODES) test(`[${mode}] built-in checkers: exact (a different layout is a presentation error), tokens, float with a tolerance`, async (t) => {
  const h = await harness(t, mode);
  const cases: [Checker, string, string, string][] = [
    [{ kind: 'exact' }, 'echo "1  2"', '1 2\n', 'presentation_error'],
    [{ kind: 'tokens' }, 'printf "1\\n2  \\n\\n"', '1 2', 'accepted'],
    [{ kind: 'tokens' }, 'echo 1 2 3', '1 2', 'wrong_answer'],
    [{ kind: 'float', error: 1e-6 }, 'echo 0.3333334 1e6 x', '0.333333 1000000.5 x', 'accepted'],
    [{ kind: 'float', error: 1e-6 }, 'echo 0.3334', '0.3333', 'wrong_answer'],
  ];
  for (const [checker, execute, expected, verdict] of cases) {
    const run = await h.run({ execute, judge: judge([['1', '', expected]], { checker }) });
    assert.equal(run.result!.verdict, verdict, `${checker.kind}: ${execute}`);
  }
});

/** A checker for "print two numbers whose sum is the input": any such pair is right (testlib's exit codes). */
const SUM_CHECKER = `
read n < "$1"
read a b extra < "$2" || { echo "wrong output format: no line" >&2; exit 2; }
[[ "$a" =~ ^-?[0-9]+$ && "$b" =~ ^-?[0-9]+$ && -z "$extra" ]] || { echo "wrong output format: two integers expected" >&2; exit 2; }
read answer < "$3"
[ "$answer" = any ] || { echo "fail: the answer file says $answer" >&2; exit 3; }
(( a + b == n )) && { echo "ok $a + $b = $n" >&2; exit 0; }
echo "wrong answer $a + $b != $n" >&2; exit 1
`;

for (const mode of MODES) test(`[${mode}] a checker program decides a problem with many right answers; exit 3 is a checker error, and a checker that does not build fails the task`, async (t) => {
  const h = await harness(t, mode);
  const checker: Checker = { kind: 'program', source_name: 'sum.sh', source: packText(SUM_CHECKER) };
  const tests: [string, string, string][] = [
    ['ten', '10', 'any'],
    ['seven', '7', 'any'],
    ['format', '5', 'any'],
    ['wrong', '9', 'any'],
    ['broken', '3', 'not any'],
  ];
  // Right answers that differ from any one expected output; then a bad layout, a wrong sum, a bad answer file.
  const run = await h.run({
    execute: 'read n; case $n in 10) echo 3 7;; 7) echo 0 7;; 5) echo five;; 9) echo 4 4;; *) echo 1 2;; esac',
    judge: judge(tests, { mode: 'all', checker }),
  });
  assert.deepEqual(verdicts(run.result!.tests), ['ten:accepted', 'seven:accepted', 'format:presentation_error', 'wrong:wrong_answer', 'broken:checker_error']);
  assert.equal(run.result!.tests![0]!.message, 'ok 3 + 7 = 10');
  assert.equal(run.result!.tests![3]!.message, 'wrong answer 4 + 4 != 9');
  assert.match(run.result!.tests![4]!.message, /^the checker failed: fail: the answer file says not any$/);
  assert.equal(run.result!.verdict, 'presentation_error');
  assert.equal(run.status, TaskStatus.SUCCESS);

  const unbuildable = await h.run({ execute: 'echo 1 1', judge: judge([['1', '2', 'any']], { checker: { kind: 'program', source_name: 'bad.c', source: packText('int main( {') } }) });
  assert.equal(unbuildable.status, TaskStatus.COMPILE_FAILED);
  assert.equal(unbuildable.result!.verdict, 'checker_error');
  assert.match(text(unbuildable, 'compile_error'), /^The checker bad\.c did not build \(gcc -O2 -o checker checker\.c -lm\):\n.*error/s);
  assert.deepEqual(unbuildable.stepCounts, { compile: 1, execute: 0, checker: 1 });
});

test('[confined, no sandbox] a solution cannot replace its checker or read an answer from its dir', async (t) => {
  const h = await harness(t, 'confined', { sandbox: 'none' });
  const checker: Checker = { kind: 'program', source_name: 'sum.sh', source: packText(SUM_CHECKER) };
  const run = await h.run({
    // Wrong sums, and attempts at the checker's dir beside the work dir (the task user's otherwise).
    execute: 'read n; echo 1 1; cat ../checker/answer.txt >&2; echo "exit 0" > ../checker/sum.sh; echo "exit 0" > ../checker/checker.sh; ls ../checker >&2; true',
    judge: judge([['a', '5', 'any'], ['b', '6', 'any']], { mode: 'all', checker }),
  });
  assert.deepEqual(verdicts(run.result!.tests), ['a:wrong_answer', 'b:wrong_answer']);
  assert.doesNotMatch(text(run, 'execute_error'), /any/);
});

for (const mode of MODES) test(`[${mode}] a task without tests is one test named "1": verdict and tests for the original's fields`, async (t) => {
  const h = await harness(t, mode);
  const right = await h.run({ execute: 'cat', input: 'same\n', standard: 'same' });
  assert.equal(right.result!.verdict, 'accepted');
  assert.deepEqual(verdicts(right.result!.tests), ['1:accepted']);
  const none = await h.run({ execute: 'echo x' });
  assert.equal(none.result!.verdict, 'ok');
  assert.equal(none.result!.accepted, null);
  assert.deepEqual(verdicts(none.result!.tests), ['1:ok']);
  const failed = await h.run({ compile: 'exit 1', execute: 'echo x' });
  assert.equal(failed.result!.verdict, 'compile_error');
  assert.deepEqual(failed.result!.tests, []);
  // A checker without tests judges the original's one execute.
  const tokens = await h.run({ execute: 'echo "a   b"', standard: 'a b', judge: { mode: 'first_fail', checker: { kind: 'tokens' }, tests: [] } });
  assert.equal(tokens.result!.verdict, 'accepted');
});

test('[confined] the stack limit is the one the task asks for', async (t) => {
  const h = await harness(t, 'confined');
  const run = await h.run({ execute: 'ulimit -s', executeLimits: { stack_kb: 12345 } });
  assert.equal(text(run, 'execute_output'), '12345\n');
});
