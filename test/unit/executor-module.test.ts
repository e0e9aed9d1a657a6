// The executor's flags and config: where it finds the judicators' etcd (the endpoints flag, or the local
// judicator in `kv2 standalone`), a plain `kv2 executor` without endpoints refused, limits rendered.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { resolveFlags, type FlagValues } from '../../src/boot/flags';
import { UsageError } from '../../src/common/errors';
import { executorMainFlags, executorMainModule } from '../../src/boot/modules/executor';
import { executorConfigSchema } from '../../src/executor/config';
import { effectiveLimits } from '../../src/executor/limits';

function render(command: 'executor' | 'standalone', given: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  const flags = { ...resolveFlags(executorMainFlags, given), ...extra } as FlagValues;
  return executorMainModule.render({ command, workDir: '/tmp/x', flags });
}

test('kv2 executor takes comma-separated etcd endpoints (either spelling) and refuses none', () => {
  const config = render('executor', { etcdEndpoints: 'http://a:2001, b:2001' });
  assert.deepEqual(config.etcd.endpoints, ['http://a:2001', 'b:2001']);
  assert.deepEqual(render('executor', { etcdClusterJoinMemberClient: 'http://c:2001' }).etcd.endpoints, ['http://c:2001']);
  assert.throws(() => render('executor', {}), (error: Error) => error instanceof UsageError && /--etcd-endpoints/.test(error.message));
  assert.equal(executorConfigSchema.safeParse(config).success, true);
});

test('kv2 standalone points the executor at the local judicator etcd client port', () => {
  const config = render('standalone', {}, { 'etcd-listen-client-port': 2301, 'etcd-listen-address': '0.0.0.0' });
  assert.deepEqual(config.etcd.endpoints, ['http://127.0.0.1:2301']);
});

test('defaults: the original slots and report interval, 1 MiB output cap, sandbox auto, no network', () => {
  const config = render('executor', { etcdEndpoints: 'http://a:2001' });
  assert.equal(config.slots, 3);
  assert.equal(config.report_interval, 5);
  assert.equal(config.task.output_limit, 1024 * 1024);
  assert.equal(config.sandbox, 'auto');
  assert.equal(config.allow_network, false);
  assert.equal(config.cluster_token, null);
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
