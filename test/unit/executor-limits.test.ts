// The rlimits of a step as the executor asks the step launcher to set them: to the byte, soft and hard,
// CPU seconds rounded up with SIGKILL a second after SIGXCPU, and only the limits that are set. (That the
// launcher sets them is test/integration/executor-launcher.test.ts's.)
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { IMPLIED_WALL_FACTOR, IMPLIED_WALL_MARGIN_MS, effectiveLimits, stepRlimits, wallLimitMs, type LimitValues } from '../../src/executor/limits';

const MiB = 1024 * 1024;

test('every limit that is set becomes an rlimit, to the byte, soft and hard', () => {
  const limits: LimitValues = { cpu_time: 2.5, memory: 0, processes: 0, file_size: 3 * MiB + 100, output: MiB };
  assert.deepEqual(stepRlimits(limits, { addressSpace: 512 * MiB + 7, processes: 77 }), [
    { name: 'core', soft: 0, hard: 0 },
    // As prlimit's --cpu=3:4 did: SIGXCPU at the soft limit, SIGKILL a second later.
    { name: 'cpu', soft: 3, hard: 4 },
    { name: 'fsize', soft: 3 * MiB + 100, hard: 3 * MiB + 100 },
    { name: 'as', soft: 512 * MiB + 7, hard: 512 * MiB + 7 },
    { name: 'nproc', soft: 77, hard: 77 },
  ]);
});

test('limits that are not set are left alone; a fraction of a CPU second is a whole one', () => {
  const none: LimitValues = { cpu_time: 0, memory: 0, processes: 0, file_size: 0, output: 0 };
  assert.deepEqual(stepRlimits(none, { addressSpace: 0, processes: 0 }), [{ name: 'core', soft: 0, hard: 0 }]);
  assert.deepEqual(stepRlimits({ ...none, cpu_time: 0.2 }, { addressSpace: 0, processes: 0 })[1], { name: 'cpu', soft: 1, hard: 2 });
});

test('a task asks within the maxima; "none" is more than any cap', () => {
  const settings = {
    defaults: { cpu_time: 0, memory: 2 * MiB, processes: 10, file_size: MiB, output: MiB },
    maxima: { cpu_time: 5, memory: 8 * MiB, processes: 0, file_size: 4 * MiB, output: 8 * MiB },
  };
  assert.deepEqual(effectiveLimits(settings, { cpu_time: 60, file_size: 1024, processes: 100000 }), {
    cpu_time: 5,
    memory: 2 * MiB,
    processes: 100000,
    file_size: 1024,
    output: MiB,
  });
  assert.equal(effectiveLimits(settings, undefined).cpu_time, 5);
});

test('issue 17: the judges\' units become the executor\'s (and win), a stack limit is an rlimit, wall time comes from the smallest limit', () => {
  const settings = {
    defaults: { cpu_time: 0, memory: 2 * MiB, processes: 10, file_size: MiB, output: MiB },
    maxima: { cpu_time: 5, memory: 8 * MiB, processes: 0, file_size: 4 * MiB, output: 8 * MiB },
  };
  const limits = effectiveLimits(settings, { cpu_time: 3, time_ms: 250, memory: MiB, memory_kb: 4096, stack_kb: 1024 });
  assert.equal(limits.cpu_time, 0.25);
  assert.equal(limits.memory, 4 * MiB);
  assert.equal(limits.stack, MiB);
  assert.equal(effectiveLimits(settings, { stack_kb: 64 * 1024 }).stack, 8 * MiB, 'the stack is bounded by the memory maximum');
  assert.equal(effectiveLimits(settings, { time_ms: 60_000 }).cpu_time, 5);
  // A quarter second is stopped by measuring; the rlimit stays a whole second behind as a backstop.
  assert.deepEqual(stepRlimits(limits, { addressSpace: 0, processes: 0 }), [
    { name: 'core', soft: 0, hard: 0 },
    { name: 'cpu', soft: 1, hard: 2 },
    { name: 'fsize', soft: MiB, hard: MiB },
    { name: 'stack', soft: MiB, hard: MiB },
  ]);
  assert.equal(wallLimitMs(10, undefined), 10_000);
  assert.equal(wallLimitMs(0, undefined), 0);
  assert.equal(wallLimitMs(10, { wall_ms: 1500 }), 1500);
  assert.equal(wallLimitMs(1, { wall_ms: 1500 }), 1000);
  assert.equal(wallLimitMs(0, { time_ms: 200 }), 200 * IMPLIED_WALL_FACTOR + IMPLIED_WALL_MARGIN_MS);
  assert.equal(wallLimitMs(0, { time_ms: 200, wall_ms: 5000 }), 5000);
});
