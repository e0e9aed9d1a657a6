// Judging like the judges (issue 17), end to end with the built kv2 (a judicator, an executor as root with
// its cgroups and sandbox, a gateway): one C++ solution with 20 tests gets 20 verdicts from one compile
// (submitted with `kv2 task submit --tests dir/`, the single compile read from the executor's log); a
// wrong, a too slow (200 ms), a memory hog and a crashing solution each get their verdict on the test
// that shows it; a testlib-style checker decides a problem with many right answers; a callback receiver
// gets the signed result once, and after a failure, once more and no more.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import type { TestReport } from '../../src/task/types';
import { fileHooks } from '../helpers/file-hooks';
import { runKv2 } from '../helpers/kv2';
import { startSystem, type System } from '../helpers/system';
import { makeTempDir } from '../helpers/temp';
import { waitFor } from '../helpers/wait';

const hooks = fileHooks();

/** Doubles a number; -DMODE=n makes it fail on one input: 1 wrong on 3, 2 spins on 4, 3 fills memory on 2, 4 crashes on 5. */
const SOLUTION = `#include <cstdio>
#include <cstdlib>
#include <sys/mman.h>
int main() {
  long long n;
  if (std::scanf("%lld", &n) != 1) return 3;
#if MODE == 1
  if (n == 3) { std::printf("%lld\\n", 2 * n + 1); return 0; }
#elif MODE == 2
  if (n == 4) { volatile unsigned long long spin = 0; for (;;) spin++; }
#elif MODE == 3
  if (n == 2) {
    // Huge pages where the kernel has them: a fault per 2 MiB, not per 4 KiB (each costs CPU time).
    const unsigned long size = 512ul << 20;
    void *memory = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (memory == MAP_FAILED) return 4;
    madvise(memory, size, MADV_HUGEPAGE);
    volatile char *p = (volatile char *)memory;
    for (unsigned long i = 0; i < size; i += 4096) p[i] = 1;
  }
#elif MODE == 4
  if (n == 5) { volatile int *p = nullptr; *p = 1; }
#endif
  std::printf("%lld\\n", 2 * n);
}
`;

/**
 * A checker written as testlib's are (checker <input> <output> <answer>; exit 0 OK, 1 WA, 2 PE, 3 FAIL;
 * its verdict on stderr) for "print two non-negative integers whose sum is n": any such pair is right.
 */
const SUM_CHECKER = `#include <cstdio>
#include <cstdlib>
enum { OK = 0, WA = 1, PE = 2, FAIL = 3 };
static int quit(int code, const char *message, long long a = 0, long long b = 0, long long c = 0) {
  std::fprintf(stderr, message, a, b, c);
  std::fputc('\\n', stderr);
  return code;
}
int main(int argc, char **argv) {
  if (argc < 4) return quit(FAIL, "usage: checker <input> <output> <answer>");
  std::FILE *in = std::fopen(argv[1], "r"), *out = std::fopen(argv[2], "r"), *ans = std::fopen(argv[3], "r");
  if (!in || !out || !ans) return quit(FAIL, "cannot open the files");
  long long n, a, b, ja, jb;
  if (std::fscanf(in, "%lld", &n) != 1) return quit(FAIL, "no n in the input");
  if (std::fscanf(ans, "%lld %lld", &ja, &jb) != 2 || ja < 0 || jb < 0 || ja + jb != n) return quit(FAIL, "the jury's answer is wrong");
  if (std::fscanf(out, "%lld %lld", &a, &b) != 2) return quit(PE, "wrong output format: two integers expected");
  char extra;
  if (std::fscanf(out, " %c", &extra) == 1) return quit(PE, "wrong output format: extra output");
  if (a < 0 || b < 0) return quit(WA, "wrong answer %lld and %lld: negative", a, b);
  if (a + b != n) return quit(WA, "wrong answer %lld + %lld = %lld, not n", a, b, a + b);
  return quit(OK, "ok %lld + %lld = %lld", a, b, n);
}
`;

interface JudgedTask {
  id: string;
  status: number;
  done: boolean;
  result: { verdict: string | null; accepted: boolean | null; tests: TestReport[]; compile_output: string; execute_output: string } | null;
}

const FORM = { user: '0', compile_command: '', compile_timeout: '60', execute_timeout: '10', execute_input: '', execute_standard: '' };

describe('judging: tests from one compile, verdicts on the right test, checkers, callbacks', () => {
  let system: System;
  let base: string;
  let secret: string;

  before(async () => {
    const dir = makeTempDir(hooks, 'kv2-judging-');
    secret = 'judge secret 17';
    const secretFile = path.join(dir, 'callback.secret');
    fs.writeFileSync(secretFile, `${secret}\n`, { mode: 0o600 });
    system = await startSystem(hooks, {
      slots: 2,
      judicatorFlags: ['--task-callback-allow', '127.0.0.1', '--task-callback-secret-file', secretFile],
      gatewayFlags: ['--task-callback-allow', '127.0.0.1'],
    });
    base = system.gateways[0]!.url;
  });

  async function submit(fields: Record<string, string>): Promise<string> {
    const response = await fetch(`${base}/api/task`, { method: 'POST', body: new URLSearchParams({ ...FORM, ...fields }), signal: AbortSignal.timeout(30_000) });
    const answer = (await response.json()) as { result: number; id: string; message?: string };
    assert.equal(answer.result, 0, answer.message);
    return answer.id;
  }

  async function done(id: string): Promise<JudgedTask> {
    const response = await fetch(`${base}/api/task?id=${id}&wait=60`, { signal: AbortSignal.timeout(90_000) });
    const { task } = (await response.json()) as { task: JudgedTask };
    assert.ok(task.done, `task ${id} is done`);
    return task;
  }

  const verdicts = (task: JudgedTask) => task.result!.tests.map((t) => `${t.name}:${t.verdict}`);

  it('one C++ solution, 20 tests from a directory, 20 verdicts from one compile', async () => {
    const dir = makeTempDir(hooks, 'kv2-tests-');
    fs.writeFileSync(path.join(dir, 'main.cpp'), SOLUTION);
    const tests = path.join(dir, 'tests');
    fs.mkdirSync(tests);
    for (let i = 1; i <= 20; i++) {
      fs.writeFileSync(path.join(tests, `${i}.in`), `${i * 7}\n`);
      fs.writeFileSync(path.join(tests, `${i}.out`), `${i * 14}\n`);
    }
    const cli = runKv2(
      [
        'task', 'submit', '--gateway', base, '--json', '--wait',
        '--source', path.join(dir, 'main.cpp'), '--compile', 'g++ -O2 -DMODE=0 -o main main.cpp && echo compiled',
        '--execute', './main', '--tests', tests, '--test-mode', 'all', '--execute-time-limit-ms', '1000', '--execute-memory-limit-kb', '65536',
      ],
      { timeoutMs: 120_000 },
    );
    assert.equal(cli.status, 0, cli.stderr);
    const task = JSON.parse(cli.stdout.slice(cli.stdout.indexOf('{'))) as JudgedTask;
    assert.equal(task.status, 5);
    assert.equal(task.result!.verdict, 'accepted');
    assert.equal(task.result!.accepted, true);
    // Natural order of the names: 1, 2, ..., 10, ..., 20.
    assert.deepEqual(verdicts(task), Array.from({ length: 20 }, (_, i) => `${i + 1}:accepted`));
    for (const test of task.result!.tests) {
      assert.ok(test.time_ms !== null && test.time_ms < 1000, `test ${test.name} took ${test.time_ms} ms of CPU`);
      assert.ok(test.wall_ms !== null && test.memory_kb !== null && test.memory_kb > 0, `test ${test.name} reports wall time and memory`);
    }
    assert.equal(task.result!.compile_output, 'compiled\n');
    // The executor says what it ran for the task: one compile, twenty runs.
    const log = path.join(system.executors[0]!.dir, 'executor', 'log', 'main', 'main.log');
    const finished = await waitFor(
      () => fs.readFileSync(log, 'utf8').split('\n').find((line) => line.includes(`"task":"${task.id}"`) && line.includes('"steps"')),
      { what: 'the executor to log the finished task' },
    );
    assert.deepEqual(JSON.parse(finished).steps, { compile: 1, execute: 20, checker: 0 });
  });

  it('a wrong, a too slow (200 ms), a memory hog and a crashing solution: each verdict on the test that shows it, the rest skipped', async () => {
    const tests = JSON.stringify(Array.from({ length: 6 }, (_, i) => ({ name: `n${i + 1}`, input: `${i + 1}`, output: `${2 * (i + 1)}` })));
    const ids = await Promise.all(
      [1, 2, 3, 4].map((mode) =>
        submit({
          compile_source_name: 'main.cpp',
          compile_source_str: SOLUTION,
          compile_command: `g++ -O2 -DMODE=${mode} -o main main.cpp`,
          execute_command: './main',
          tests,
          // The too slow one has 200 ms; the others a second, so that the memory hog (whose page faults
          // cost CPU time, much of it on a loaded machine) meets its memory limit first.
          execute_time_limit_ms: mode === 2 ? '200' : '1000',
          execute_memory_limit_kb: String(64 * 1024),
        }),
      ),
    );
    const [wrong, slow, hog, crash] = await Promise.all(ids.map(done));
    assert.deepEqual(verdicts(wrong!), ['n1:accepted', 'n2:accepted', 'n3:wrong_answer', 'n4:skipped', 'n5:skipped', 'n6:skipped']);
    assert.equal(wrong!.result!.verdict, 'wrong_answer');
    assert.equal(wrong!.status, 5, 'a wrong answer is a successful run');
    assert.equal(wrong!.result!.execute_output, '7\n', 'the output of the failing test is kept');
    assert.match(wrong!.result!.tests[2]!.message, /expected "6", found "7"/);

    assert.deepEqual(verdicts(slow!), ['n1:accepted', 'n2:accepted', 'n3:accepted', 'n4:time_limit', 'n5:skipped', 'n6:skipped']);
    const spun = slow!.result!.tests[3]!;
    assert.ok(spun.time_ms! > 200, `measured ${spun.time_ms} ms of CPU`);
    assert.match(spun.message, /^CPU time \d\.\d\d s > 0\.20 s$/);
    assert.equal(slow!.status, 4);

    assert.deepEqual(verdicts(hog!), ['n1:accepted', 'n2:memory_limit', 'n3:skipped', 'n4:skipped', 'n5:skipped', 'n6:skipped'], JSON.stringify(hog!.result!.tests[1]));
    assert.equal(hog!.result!.verdict, 'memory_limit');

    assert.deepEqual(verdicts(crash!), ['n1:accepted', 'n2:accepted', 'n3:accepted', 'n4:accepted', 'n5:runtime_error', 'n6:skipped']);
    assert.match(crash!.result!.tests[4]!.message, /SIGSEGV|exit code 139/);
  });

  it('a testlib-style checker decides a problem with many right answers', async () => {
    const tests = JSON.stringify([10, 7, 1, 1000].map((n, i) => ({ name: `s${i + 1}`, input: `${n}`, output: `0 ${n}` })));
    const checker = { checker: 'program', checker_source_name: 'sum.cpp', checker_source_str: SUM_CHECKER };
    // Right answers, none of them the jury's own "0 n".
    const right = await submit({ execute_command: 'read n; echo $((n / 2)) $((n - n / 2))', tests, test_mode: 'all', ...checker });
    const wrong = await submit({ execute_command: 'read n; if [ $n = 7 ]; then echo 3 3; elif [ $n = 1 ]; then echo one; else echo $n 0; fi', tests, test_mode: 'all', ...checker });
    const rightTask = await done(right);
    assert.equal(rightTask.result!.verdict, 'accepted', JSON.stringify(rightTask.result));
    assert.deepEqual(verdicts(rightTask), ['s1:accepted', 's2:accepted', 's3:accepted', 's4:accepted']);
    assert.equal(rightTask.result!.tests[0]!.message, 'ok 5 + 5 = 10');
    const wrongTask = await done(wrong);
    assert.deepEqual(verdicts(wrongTask), ['s1:accepted', 's2:wrong_answer', 's3:presentation_error', 's4:accepted']);
    assert.equal(wrongTask.result!.tests[1]!.message, 'wrong answer 3 + 3 = 6, not n');
    assert.equal(wrongTask.result!.verdict, 'wrong_answer');
  });

  it('a callback receiver gets the signed result once; after a failure it gets it again, with the same idempotency key', async (t) => {
    const received: { headers: http.IncomingHttpHeaders; body: Buffer; path: string }[] = [];
    let failFirst = false;
    const server = http.createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        received.push({ headers: request.headers, body: Buffer.concat(chunks), path: request.url ?? '' });
        const fail = failFirst && received.length === 1;
        response.writeHead(fail ? 503 : 200).end(fail ? 'busy' : 'thanks');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const port = (server.address() as AddressInfo).port;
    const judicatorLog = path.join(system.judicators[0]!.dir, 'judicator', 'log', 'main', 'main.log');
    const delivered = (id: string) => fs.readFileSync(judicatorLog, 'utf8').includes(`callback of task ${id} delivered`);

    const id = await submit({ execute_command: 'cat', tests: JSON.stringify([{ input: 'hi', output: 'hi' }]), callback_url: `http://127.0.0.1:${port}/kv2/done?from=test` });
    await waitFor(() => delivered(id), { what: 'the callback to be delivered', timeoutMs: 60_000 });
    assert.equal(received.length, 1, 'delivered once');
    const [call] = received;
    assert.equal(call!.path, '/kv2/done?from=test');
    assert.equal(call!.headers['content-type'], 'application/json');
    assert.equal(call!.headers['idempotency-key'], id);
    assert.equal(call!.headers['x-kv2-task'], id);
    assert.equal(call!.headers['x-kv2-signature'], `sha256=${createHmac('sha256', secret).update(call!.body).digest('hex')}`);
    const body = JSON.parse(call!.body.toString('utf8')) as JudgedTask & { callback_url: string };
    assert.equal(body.id, id);
    assert.equal(body.done, true);
    assert.equal(body.status, 5);
    assert.equal(body.result!.verdict, 'accepted');
    assert.deepEqual(body.result!.tests.map((test) => test.verdict), ['accepted']);
    // The same as GET /api/task shows it.
    const shown = (await (await fetch(`${base}/api/task?id=${id}`)).json()) as { task: unknown };
    assert.deepEqual(body, shown.task);

    // A receiver that fails the first time gets it again (with backoff), and then no more.
    received.length = 0;
    failFirst = true;
    const again = await submit({ execute_command: 'echo x', callback_url: `http://127.0.0.1:${port}/retry` });
    await waitFor(() => delivered(again), { what: 'the retried callback to be delivered', timeoutMs: 60_000 });
    assert.deepEqual(received.map((r) => r.headers['x-kv2-delivery-attempt']), ['1', '2']);
    assert.deepEqual(received.map((r) => r.headers['idempotency-key']), [again, again]);
    assert.deepEqual(received[0]!.body, received[1]!.body);

    // A host the operator did not allow is refused at submit, naming the flag.
    const refused = await fetch(`${base}/api/task`, { method: 'POST', body: new URLSearchParams({ ...FORM, execute_command: 'true', callback_url: 'http://127.0.0.2:9/' }) });
    assert.equal(refused.status, 400);
    const answer = (await refused.json()) as { result: number; errors: { field: string; message: string }[] };
    assert.equal(answer.result, 4);
    assert.equal(answer.errors[0]!.field, 'callback_url');
    assert.match(answer.errors[0]!.message, /--task-callback-allow/);
  });
});
