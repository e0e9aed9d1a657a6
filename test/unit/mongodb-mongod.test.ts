// mongod's command line and its log lines (src/mongodb/mongod-process.ts), the mongod version check
// (binary.ts), and the store decision of `--store` (store/choose-store.ts wantedStore).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compareVersions, parseMongodVersion } from '../../src/mongodb/binary';
import { mongodArgs, parseMongodLogLine, TEXT_SEVERITY_POSITION } from '../../src/mongodb/mongod-process';
import { mongodbModule } from '../../src/boot/modules/mongodb';
import { directUri, memberHost, replicaSetUri } from '../../src/mongodb/config';
import { wantedStore } from '../../src/store/open-store';

test('mongod gets the original flags, loopback for the shutdown command, no unix socket', () => {
  const args = mongodArgs({ replica_set: 'rs', listen: { address: '0.0.0.0', port: 3000 }, cache_size_gb: null }, '/w/judicator/data/mongodb');
  assert.deepEqual(args, ['--replSet', 'rs', '--bind_ip', '0.0.0.0', '--port', '3000', '--dbpath', '/w/judicator/data/mongodb', '--nounixsocket']);
  const specific = mongodArgs({ replica_set: 'set1', listen: { address: '10.1.2.3', port: 3100 }, cache_size_gb: 0.5 }, '/d');
  assert.equal(specific[specific.indexOf('--bind_ip') + 1], '10.1.2.3,127.0.0.1');
  assert.deepEqual(specific.slice(-2), ['--wiredTigerCacheSizeGB', '0.5']);
});

test('mongod 4.4+ JSON log lines keep their severity, component and attributes', () => {
  const line = JSON.stringify({
    t: { $date: '2024-05-01T10:00:00.000+00:00' },
    s: 'W',
    c: 'CONTROL',
    id: 22120,
    ctx: 'initandlisten',
    msg: 'Access control is not enabled for the database',
    tags: ['startupWarnings'],
  });
  const parsed = parseMongodLogLine(line);
  assert.equal(parsed.level, 'warn');
  assert.equal(parsed.message, 'Access control is not enabled for the database');
  assert.deepEqual(parsed.fields, { c: 'CONTROL', id: 22120, ctx: 'initandlisten', tags: ['startupWarnings'] });
  const severities: Record<string, string> = { F: 'fatal', E: 'error', W: 'warn', I: 'info', D1: 'debug', D5: 'debug' };
  for (const [s, level] of Object.entries(severities)) {
    assert.equal(parseMongodLogLine(JSON.stringify({ s, c: 'X', id: 1, ctx: 'c', msg: 'm', attr: { a: 1 } })).level, level, s);
  }
  assert.deepEqual(parseMongodLogLine(JSON.stringify({ s: 'I', c: 'X', id: 1, ctx: 'c', msg: 'm', attr: { port: 3000 } })).fields.attr, { port: 3000 });
});

test('the older text format has its severity letter at column 29', () => {
  const line = '2020-02-27T10:15:52.123+0000 E  STORAGE  [initandlisten] exception in initAndListen';
  assert.equal(line[TEXT_SEVERITY_POSITION], 'E');
  assert.equal(parseMongodLogLine(line).level, 'error');
  assert.equal(parseMongodLogLine('2020-02-27T10:15:52.123+0000 I  CONTROL  [main] ok').level, 'info');
  assert.equal(parseMongodLogLine('2020-02-27T10:15:52.123+0000 W  NETWORK  [main] hm').level, 'warn');
  // Anything else (a banner, a half line) is info, and never throws.
  assert.equal(parseMongodLogLine('about to fork child process').level, 'info');
  assert.equal(parseMongodLogLine('{not json').level, 'info');
});

test('mongod --version output and the 4.4 minimum', () => {
  assert.deepEqual(parseMongodVersion('db version v7.0.14\nBuild Info: {...}'), [7, 0, 14]);
  assert.deepEqual(parseMongodVersion('db version v4.4.29-rc1'), [4, 4, 29]);
  assert.equal(parseMongodVersion('mongos version v7.0.1'), undefined);
  assert.ok(compareVersions([4, 2, 24], [4, 4, 0]) < 0);
  assert.ok(compareVersions([8, 0, 0], [7, 99, 99]) > 0);
});

test('--store auto prefers MongoDB only when a mongod is there without downloading', () => {
  assert.equal(wantedStore('auto', 'local'), 'mongodb');
  assert.equal(wantedStore('auto', 'download'), 'etcd');
  assert.equal(wantedStore('auto', 'none'), 'etcd');
  assert.equal(wantedStore('etcd', 'local'), 'etcd');
  assert.equal(wantedStore('mongodb', 'none'), 'mongodb');
});

test('config/mongodb.json from the original flags: port 3000 also advertised, set rs, etcd endpoint and store flag', () => {
  const flags = {
    'mongodb-name': 'j1',
    'mongodb-listen-address': '0.0.0.0',
    'mongodb-listen-port': 3100,
    'mongodb-advertise-address': 'host1',
    'mongodb-replica-set': 'rs',
    'mongodb-remove-after': 120,
    'etcd-listen-address': '0.0.0.0',
    'etcd-listen-client-port': 2101,
    'etcd-prefix': 'kv2/',
    store: 'mongodb',
  };
  const config = mongodbModule.render({ command: 'judicator', workDir: '/w', flags });
  assert.ok(mongodbModule.schema.safeParse(config).success);
  assert.equal(memberHost(config), 'host1:3100');
  assert.equal(config.store, 'mongodb');
  assert.deepEqual(config.etcd.endpoints, ['https://127.0.0.1:2101']); // etcd speaks only mutual TLS
  assert.equal(config.data_dir, 'data/mongodb');
  assert.equal(config.data_init_dir, 'data/mongodb_init');
  assert.equal(replicaSetUri(config), 'mongodb://127.0.0.1:3100/?replicaSet=rs');
  assert.equal(directUri(config), 'mongodb://127.0.0.1:3100/?directConnection=true');
  const advertised = mongodbModule.render({ command: 'judicator', workDir: '/w', flags: { ...flags, 'mongodb-advertise-port': 4100 } });
  assert.equal(memberHost(advertised), 'host1:4100');
});
