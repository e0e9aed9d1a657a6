// An executor's task runner in-process, for tests: TaskRun with the plain confinement (bash as the test's
// user, nothing else) or with what a real executor uses on this machine (task users, rlimits, cgroups,
// bwrap, as far as the machine has them), over a work dir whose parents anyone may search.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { createLogger } from '../../src/common/logging';
import { unpackText } from '../../src/task/codec';
import { DEFAULT_TASK_MAX_SIZE } from '../../src/task/limits';
import type { Task } from '../../src/task/types';
import { PlainConfinement, createConfinement, type Confinement } from '../../src/executor/confinement';
import { TaskRun, type RunnerSettings } from '../../src/executor/runner';
import { makeTask, type TaskSpec } from './task';
import { makeTempDir } from './temp';

export const logger = createLogger('executor-test', { maxBytes: 1 << 20, keep: 0, printToStdout: false, level: 'warn' });

export interface Harness {
  dataDir: string;
  settings: RunnerSettings;
  start(task: Task): TaskRun;
  run(spec: TaskSpec): Promise<TaskRun>;
}

/**
 * plain: bash as the test's user, nothing else. confined: what a real executor uses on this machine
 * (task users, rlimits, cgroups, bwrap, as far as the machine has them).
 */
export type Mode = 'plain' | 'confined';
export const MODES: Mode[] = ['plain', 'confined'];

export async function harness(
  t: TestContext,
  mode: Mode,
  overrides: Partial<RunnerSettings> & { wrap?: (inner: Confinement) => Confinement; sandbox?: 'auto' | 'none' } = {},
): Promise<Harness> {
  // A work dir whose parents anyone may search, as /var/lib/kv2 (see executor-isolation for a closed one).
  const base = makeTempDir(t, 'kv2-executor-');
  fs.chmodSync(base, 0o755);
  const roleDir = path.join(base, 'executor');
  const dataDir = path.join(roleDir, 'data', 'main');
  fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const outputLimit = overrides.outputLimit ?? 1024 * 1024;
  const inner =
    mode === 'plain'
      ? new PlainConfinement()
      : await createConfinement(
          {
            userGroup: null,
            slots: 3,
            sandbox: overrides.sandbox ?? 'auto',
            allowNetwork: false,
            limits: {
              defaults: { cpu_time: 0, memory: 1024 * 1024 * 1024, processes: 256, file_size: 256 * 1024 * 1024, output: outputLimit },
              maxima: { cpu_time: 0, memory: 4 * 1024 * 1024 * 1024, processes: 4096, file_size: 1024 * 1024 * 1024, output: 8 * 1024 * 1024 },
            },
            executorName: `test-${process.pid}`,
            roleDir,
          },
          logger,
        );
  if (inner.usesTaskUsers) fs.chmodSync(dataDir, 0o711);
  t.after(() => (inner as Confinement).close?.());
  const settings: RunnerSettings = {
    dataDir,
    outputLimit,
    zipLimits: { maxBytes: 64 * 1024 * 1024, maxFiles: 1000 },
    taskMaxSize: DEFAULT_TASK_MAX_SIZE,
    confinement: overrides.wrap ? overrides.wrap(inner) : inner,
    ...overrides,
  };
  let slot = 0;
  const start = (task: Task) => new TaskRun(task, slot++ % 3, settings, logger, () => undefined);
  return {
    dataDir,
    settings,
    start,
    run: async (spec) => {
      const run = start(makeTask(spec));
      await run.done;
      return run;
    },
  };
}

export function text(run: TaskRun, field: 'compile_output' | 'compile_error' | 'execute_output' | 'execute_error'): string {
  assert.ok(run.result, `task has no result (status ${run.status})`);
  return unpackText(run.result[field]);
}

