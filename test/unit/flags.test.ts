// Flag parsing: defaults, environment, config file, and bad values refused with the flag's name.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, UsageError } from '../../src/common/errors';
import { parseFlagValue, resolveFlags, resolveNodeName, type FlagSpec } from '../../src/boot/flags';

const flags: FlagSpec[] = [
  { name: 'main-listen-port', type: 'int', min: 1, max: 65535, default: 4000, description: '' },
  { name: 'main-name', type: 'string', default: () => 'computed', description: '' },
  { name: 'cluster-token', type: 'string', env: 'KV2_TEST_TOKEN', description: '' },
  { name: 'module-print-log', type: 'boolean', description: '' },
  { name: 'server-token', type: 'strings', default: [], description: '' },
  { name: 'etcd-cluster-join-member-client', aliases: ['etcd-endpoints'], type: 'string', description: '' },
];

test('flags take the command line first, then the environment, then the config file, then the default', () => {
  process.env.KV2_TEST_TOKEN = 'from-env';
  try {
    const values = resolveFlags(flags, { mainListenPort: 4100 }, { 'main-listen-port': 4200, 'cluster-token': 'from-file', 'main-name': 'from-file' });
    assert.equal(values['main-listen-port'], 4100);
    assert.equal(values['cluster-token'], 'from-env');
    assert.equal(values['main-name'], 'from-file');
    assert.deepEqual(values['server-token'], []);
    assert.equal(values['module-print-log'], undefined);
  } finally {
    delete process.env.KV2_TEST_TOKEN;
  }
});

test('an alias sets the flag, and number-like text stays text for string flags', () => {
  const values = resolveFlags(flags, { etcdEndpoints: 'http://a:2001', mainName: 7 }, {}, ['--main-name', '007']);
  assert.equal(values['etcd-cluster-join-member-client'], 'http://a:2001');
  assert.equal(values['main-name'], '007');
  const tokens = resolveFlags(flags, { serverToken: [123, 'abc'] }, {}, ['--server-token', '0123', '--server-token=abc']);
  assert.deepEqual(tokens['server-token'], ['0123', 'abc']);
});

test('bad values are refused with the flag named', () => {
  const port = flags[0]!;
  assert.throws(() => parseFlagValue(port, 'abc', '--main-listen-port', UsageError), /--main-listen-port must be a whole number/);
  assert.throws(() => parseFlagValue(port, '1.5', '--main-listen-port', UsageError), /whole number/);
  assert.throws(() => parseFlagValue(port, 0, '--main-listen-port', UsageError), /at least 1/);
  assert.throws(() => resolveFlags(flags, {}, { 'main-listen-port': 'x' }), ConfigError);
  assert.equal(parseFlagValue(port, ['1', '2'], '--main-listen-port', UsageError), 2, 'the last of repeated values wins');
  assert.deepEqual(parseFlagValue(flags[4]!, ['a,b', 'c'], '--server-token', UsageError), ['a', 'b', 'c']);
});

test('ENV names read $NAME, and say so when it is missing', () => {
  const saved = process.env.NAME;
  try {
    process.env.NAME = 'judicator.2';
    assert.equal(resolveNodeName('ENV'), 'judicator.2');
    delete process.env.NAME;
    assert.throws(() => resolveNodeName('ENV'), /NAME is not set/);
    assert.equal(resolveNodeName('plain'), 'plain');
  } finally {
    if (saved === undefined) delete process.env.NAME;
    else process.env.NAME = saved;
  }
});
