// The mongodb module's process (src/mongodb/member.ts) up to the point where it needs a mongod, against a
// real etcd: it records or follows the cluster's store, idles harmlessly when that store is etcd (and
// stops at once when asked), refuses with a clear message when the cluster needs a mongod it does not
// have; and data/mongodb_init is restored once, the previous data kept aside. etcd runs on mutual TLS, as
// a judicator's does: the module reaches it with the judicator identity in its role dir.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { ConfigError } from '../../src/common/errors';
import { createLogger } from '../../src/common/logging';
import { createEtcdClient } from '../../src/etcd/client';
import { clusterKeys } from '../../src/etcd/keys';
import { etcdClientTls } from '../../src/pki/etcd-tls';
import { readNodeFiles, writeCrl } from '../../src/pki/identity-files';
import { initClusterIdentity } from '../../src/pki/init-identity';
import { restoreFromInitDir, runMongodbMember } from '../../src/mongodb/member';
import { mongodbModule } from '../../src/boot/modules/mongodb';
import type { MongodbConfig } from '../../src/mongodb/config';
import { EtcdServer, etcdBinary } from '../helpers/etcd';
import { makeTempDir } from '../helpers/temp';
import { waitFor } from '../helpers/wait';

type Hooks = { after: (fn: () => unknown) => void };

const found = etcdBinary();
const skipEtcd = 'missing' in found ? found.missing : undefined;
if (skipEtcd) process.stdout.write(`# mongodb module tests against etcd skipped: ${skipEtcd}\n`);

function moduleConfig(etcd: EtcdServer, store: 'auto' | 'etcd' | 'mongodb', prefix: string): MongodbConfig {
  const config = mongodbModule.render({
    command: 'judicator',
    workDir: '/unused',
    flags: {
      'mongodb-name': 'j1',
      'mongodb-listen-address': '127.0.0.1',
      'mongodb-listen-port': 1,
      'mongodb-advertise-address': '127.0.0.1',
      'mongodb-replica-set': 'rs',
      'mongodb-remove-after': 120,
      'etcd-listen-address': '127.0.0.1',
      'etcd-listen-client-port': etcd.clientPort,
      'etcd-prefix': prefix,
      store,
    },
  });
  return mongodbModule.schema.parse(config);
}

/** A log we can read back, and no mongod anywhere the lookup looks. */
function setting(t: Hooks) {
  const dir = makeTempDir(t);
  const saved = { PATH: process.env.PATH, KV2_CACHE_DIR: process.env.KV2_CACHE_DIR, KV2_MONGOD_BINARY: process.env.KV2_MONGOD_BINARY };
  process.env.PATH = '/nonexistent';
  process.env.KV2_CACHE_DIR = path.join(dir, 'cache');
  delete process.env.KV2_MONGOD_BINARY;
  t.after(() => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });
  const logger = createLogger('mongodb', { dir: path.join(dir, 'log'), file: 'mongodb.log', maxBytes: 1 << 20, keep: 0, printToStdout: false, level: 'debug' });
  const messages = () =>
    fs
      .readFileSync(path.join(dir, 'log', 'mongodb.log'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => String((JSON.parse(line) as { msg: unknown }).msg));
  return { dir, logger, messages };
}

/**
 * An etcd on mutual TLS whose CA is the one of a judicator identity made in `dir`'s data/pki (where the
 * module looks for its own), and a client of it with that identity.
 */
async function tlsEtcd(t: Hooks, dir: string) {
  const pki = path.join(dir, 'data', 'pki');
  const { ca } = await initClusterIdentity(pki, { name: 'j1' });
  writeCrl(pki, await ca.signCrl([]));
  const etcd = await EtcdServer.start(t, { tls: { dir: pki, crl: true } });
  const client = createEtcdClient([etcd.endpoint], { tls: etcdClientTls(readNodeFiles(pki)!) });
  t.after(() => client.close());
  return { etcd, client };
}

const systemMongod = ['/usr/bin/mongod', '/usr/local/bin/mongod'].some((f) => fs.existsSync(f));
const skip = skipEtcd ?? (systemMongod ? 'this machine has a mongod in /usr/bin or /usr/local/bin' : undefined);

test('on a cluster with the etcd store the module idles, harmlessly, until it is stopped', { skip }, async (t) => {
  const { dir, logger, messages } = setting(t);
  const { etcd, client } = await tlsEtcd(t, dir);
  // --store auto and no mongod anywhere: this first judicator records etcd.
  const controller = new AbortController();
  const running = runMongodbMember({ config: moduleConfig(etcd, 'auto', 'x/'), logger, roleDir: dir, signal: controller.signal });
  await waitFor(() => messages().some((m) => /task store is etcd: the mongodb module has nothing to run/.test(m)), { what: 'the module to idle' });
  assert.equal(await client.get(clusterKeys('x/').clusterStore).string(), 'etcd');
  assert.equal(await client.getAll().prefix(clusterKeys('x/').mongodbRegistrations).count(), 0, 'it registers nothing');
  assert.equal(fs.existsSync(path.join(dir, 'data', 'mongodb')), false, 'it creates no data');
  controller.abort();
  await running;
});

test('a judicator without a mongod stops with a clear message on a MongoDB cluster', { skip }, async (t) => {
  const { dir, logger } = setting(t);
  const { etcd, client } = await tlsEtcd(t, dir);
  await client.put(clusterKeys('y/').clusterStore).value('mongodb');
  await assert.rejects(
    runMongodbMember({ config: moduleConfig(etcd, 'auto', 'y/'), logger, roleDir: dir, signal: new AbortController().signal }),
    (error: unknown) => error instanceof ConfigError && /keeps its tasks in MongoDB/.test(error.message) && /kv2 fetch mongod/.test(error.message),
  );
  // --store mongodb on a new cluster, without any mongod: refused, and nothing recorded.
  await assert.rejects(
    runMongodbMember({ config: moduleConfig(etcd, 'mongodb', 'z/'), logger, roleDir: dir, signal: new AbortController().signal }),
    /no mongod to create a MongoDB store/,
  );
  assert.equal(await client.get(clusterKeys('z/').clusterStore).string(), null);
});

test('while etcd does not answer yet the module waits, and a stop ends the wait', { skip: skipEtcd }, async (t) => {
  const { dir, logger, messages } = setting(t);
  const { etcd } = await tlsEtcd(t, dir);
  await etcd.stop();
  const controller = new AbortController();
  const running = runMongodbMember({ config: moduleConfig(etcd, 'auto', 'w/'), logger, roleDir: dir, signal: controller.signal });
  await waitFor(() => messages().some((m) => /waiting for etcd/.test(m)), { what: 'the module to wait for etcd', timeoutMs: 30_000 });
  controller.abort();
  await running;
});

test('data/mongodb_init is copied in once and emptied; the data it replaces is kept aside', (t) => {
  const dir = makeTempDir(t);
  const logger = createLogger('t', { maxBytes: 1 << 20, keep: 0, printToStdout: false, level: 'error' });
  const init = path.join(dir, 'data', 'mongodb_init');
  const data = path.join(dir, 'data', 'mongodb');
  assert.equal(restoreFromInitDir(init, data, logger), false, 'no init dir: nothing to do');
  fs.mkdirSync(path.join(init, 'journal'), { recursive: true });
  fs.writeFileSync(path.join(init, 'WiredTiger'), 'restored');
  fs.writeFileSync(path.join(init, 'journal', 'log.1'), 'j');
  fs.mkdirSync(data, { recursive: true });
  fs.writeFileSync(path.join(data, 'WiredTiger'), 'old');

  assert.equal(restoreFromInitDir(init, data, logger), true);
  assert.equal(fs.readFileSync(path.join(data, 'WiredTiger'), 'utf8'), 'restored');
  assert.equal(fs.readFileSync(path.join(data, 'journal', 'log.1'), 'utf8'), 'j');
  assert.deepEqual(fs.readdirSync(init), [], 'emptied, so a restart does not restore again');
  const aside = fs.readdirSync(path.join(dir, 'data')).filter((name) => name.startsWith('mongodb.before-restore'));
  assert.equal(aside.length, 1);
  assert.equal(fs.readFileSync(path.join(dir, 'data', aside[0]!, 'WiredTiger'), 'utf8'), 'old');
  // A second start: the data stays as it is.
  assert.equal(restoreFromInitDir(init, data, logger), false);
  assert.equal(fs.readFileSync(path.join(data, 'WiredTiger'), 'utf8'), 'restored');
});
