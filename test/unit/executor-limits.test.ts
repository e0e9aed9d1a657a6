// The rlimits of a step as the executor asks the step launcher to set them: to the byte, soft and hard,
// CPU seconds rounded up with SIGKILL a second after SIGXCPU, and only the limits that are set. (That the
// launcher sets them is test/integration/executor-launcher.test.ts's.)
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { effectiveLimits, stepRlimits, type LimitValues } from '../../src/executor/limits';

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
