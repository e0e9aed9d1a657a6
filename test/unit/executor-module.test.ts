// The executor's flags and config: where it finds the judicators (--join, the judicator of the same work
// dir, or its own in `kv2 standalone`), a plain `kv2 executor` that knows none refused, the etcd flags and
// the cluster token it had refused with what replaced them, limits rendered.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { resolveFlags, type FlagValues } from '../../src/boot/flags';
import { UsageError } from '../../src/common/errors';
import { executorMainFlags, executorMainModule } from '../../src/boot/modules/executor';
import { executorConfigSchema } from '../../src/executor/config';
import { effectiveLimits } from '../../src/executor/limits';

function render(command: 'executor' | 'standalone', given: Record<string, unknown>, extra: Record<string, unknown> = {}, workDir = '/tmp/x') {
  const flags = { ...resolveFlags(executorMainFlags, given), ...extra } as FlagValues;
  return executorMainModule.render({ command, workDir, flags });
}

test('kv2 executor takes comma-separated judicator addresses and refuses none', () => {
  const config = render('executor', { join: 'a:4100, b' });
  assert.deepEqual(config.judicators.join, ['a:4100', 'b']);
  assert.equal(config.identity_dir, 'data/pki');
  assert.throws(() => render('executor', {}), (error: Error) => error instanceof UsageError && /--join <judicator host>/.test(error.message));
  assert.throws(() => render('executor', { join: 'a:99999' }), (error: Error) => error instanceof UsageError && /not host\[:port\]/.test(error.message));
  assert.equal(executorConfigSchema.safeParse(config).success, true);
});

test('an executor started in a judicator\'s work dir reaches that judicator without --join', () => {
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kv2-exec-module-'));
  try {
    fs.mkdirSync(path.join(workDir, 'judicator', 'config'), { recursive: true });
    fs.writeFileSync(path.join(workDir, 'judicator', 'config', 'main.json'), JSON.stringify({ listen: { address: '0.0.0.0', port: 4321 } }));
    assert.deepEqual(render('executor', {}, {}, workDir).judicators.join, ['127.0.0.1:4321']);
  } finally {
    fs.rmSync(workDir, { recursive: true, force: true });
  }
});

test('the etcd flags and the cluster token an executor had stop it with what replaced them', () => {
  for (const given of [{ etcdEndpoints: 'http://a:2001' }, { etcdClusterJoinMemberClient: 'http://a:2001' }]) {
    assert.throws(() => render('executor', given), (error: Error) => error instanceof UsageError && /no longer talk to etcd.*--join/.test(error.message));
  }
  assert.throws(() => render('executor', { etcdPrefix: 'x/' }), (error: Error) => error instanceof UsageError && /--etcd-prefix.*judicators/.test(error.message));
  assert.throws(() => render('executor', { clusterToken: 's3cret' }), (error: Error) => error instanceof UsageError && /--cluster-token.*join token/.test(error.message));
});

test('kv2 standalone points the executor at the local judicator RPC port', () => {
  const config = render('standalone', {}, { 'main-listen-port': 4301, 'main-listen-address': '0.0.0.0' });
  assert.deepEqual(config.judicators.join, ['127.0.0.1:4301']);
});

test('defaults: the original slots and report interval, 1 MiB output cap, sandbox auto, no network', () => {
  const config = render('executor', { join: 'a' });
  assert.equal(config.slots, 3);
  assert.equal(config.report_interval, 5);
  assert.equal(config.task.output_limit, 1024 * 1024);
  assert.equal(config.sandbox, 'auto');
  assert.equal(config.allow_network, false);
  assert.equal(config.task.user_group, null);
  assert.equal(config.drain_timeout, 30);
  const bad = { ...config, task: { ...config.task, user_group: 'a:b:c' } };
  assert.equal(executorConfigSchema.safeParse(bad).success, false);
});

test('a task may ask for less or more than the defaults, never more than the maxima', () => {
  const settings = {
    defaults: { cpu_time: 0, memory: 100, processes: 10, file_size: 1000, output: 50 },
    maxima: { cpu_time: 30, memory: 400, processes: 0, file_size: 2000, output: 80 },
  };
  assert.deepEqual(effectiveLimits(settings, undefined), { cpu_time: 30, memory: 100, processes: 10, file_size: 1000, output: 50 });
  assert.deepEqual(effectiveLimits(settings, { cpu_time: 5, memory: 1000, processes: 99999, output: 10 }), {
    cpu_time: 5,
    memory: 400,
    processes: 99999,
    file_size: 1000,
    output: 10,
  });
});
