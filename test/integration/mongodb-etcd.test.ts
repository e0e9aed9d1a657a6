// The etcd half of the MongoDB store, against a real etcd: the cluster's store decision (cluster/store,
// recorded once, followed by later judicators, a clear error for one that cannot follow) and the
// mongodb/init marker that makes the replica set be initiated exactly once — including the original's
// weak spot: a claimer that dies between claim and initiate must not block initiation forever.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { Etcd3 } from 'etcd3';
import { ConfigError } from '../../src/common/errors';
import { createLogger } from '../../src/common/logging';
import { clusterKeys } from '../../src/etcd/keys';
import { InitMarker } from '../../src/mongodb/init-marker';
import { chooseStore } from '../../src/store/open-store';
import { EtcdServer, etcdBinary } from '../helpers/etcd';
import { REPO_ROOT } from '../helpers/kv2';
import { waitFor } from '../helpers/wait';

const logger = createLogger('test', { maxBytes: 1 << 20, keep: 0, printToStdout: false, level: 'error' });
const found = etcdBinary();
const skip = 'missing' in found ? `needs etcd: ${found.missing}` : undefined;
if (skip) process.stdout.write(`# mongodb-etcd tests skipped: ${skip}\n`);

function client(t: { after: (fn: () => unknown) => void }, etcd: EtcdServer): Etcd3 {
  const c = new Etcd3({ hosts: [etcd.endpoint], dialTimeout: 2_000 });
  t.after(() => c.close());
  return c;
}

test('the first judicator records the store; later ones follow it or say what they lack', { skip }, async (t) => {
  const etcd = await EtcdServer.start(t);
  const c = client(t, etcd);
  const prefix = 'a/';
  const key = clusterKeys(prefix).clusterStore;

  // auto with a local mongod: MongoDB, recorded.
  assert.deepEqual(await chooseStore('auto', c, 'local', { prefix, logger }), { kind: 'mongodb', recorded: true });
  assert.equal(await c.get(key).string(), 'mongodb');
  // A later judicator asking for etcd follows the cluster when it can.
  assert.deepEqual(await chooseStore('etcd', c, 'local', { prefix, logger }), { kind: 'mongodb', recorded: false });
  assert.deepEqual(await chooseStore('auto', c, 'download', { prefix, logger }), { kind: 'mongodb', recorded: false });
  // One without any mongod cannot, and says how to fix it.
  await assert.rejects(chooseStore('auto', c, 'none', { prefix, logger }), (error: unknown) => {
    assert.ok(error instanceof ConfigError);
    assert.match(error.message, /keeps its tasks in MongoDB/);
    assert.match(error.message, /--mongodb-exe|kv2 fetch mongod|--mongodb-download/);
    return true;
  });
  assert.equal(await c.get(key).string(), 'mongodb', 'nothing was changed');
});

test('auto without a local mongod makes an etcd cluster; --store mongodb without any mongod records nothing', { skip }, async (t) => {
  const etcd = await EtcdServer.start(t);
  const c = client(t, etcd);
  assert.deepEqual(await chooseStore('auto', c, 'download', { prefix: 'b/', logger }), { kind: 'etcd', recorded: true });
  // An etcd cluster is followed even by a judicator that has a mongod.
  assert.deepEqual(await chooseStore('mongodb', c, 'local', { prefix: 'b/', logger }), { kind: 'etcd', recorded: false });

  await assert.rejects(chooseStore('mongodb', c, 'none', { prefix: 'c/', logger }), /no mongod to create a MongoDB store/);
  assert.equal(await c.get(clusterKeys('c/').clusterStore).string(), null);

  await c.put(clusterKeys('d/').clusterStore).value('postgres');
  await assert.rejects(chooseStore('auto', c, 'local', { prefix: 'd/', logger }), /not a store kind/);
});

test('judicators creating a cluster at once agree on one store', { skip }, async (t) => {
  const etcd = await EtcdServer.start(t);
  const clients = [client(t, etcd), client(t, etcd), client(t, etcd), client(t, etcd)];
  const choices = await Promise.all(
    clients.map((c, i) => chooseStore(i % 2 ? 'etcd' : 'auto', c, 'local', { prefix: 'e/', logger })),
  );
  assert.equal(new Set(choices.map((c) => c.kind)).size, 1);
  assert.equal(choices.filter((c) => c.recorded).length, 1, 'exactly one recorded it');
});

test('mongodb/init: one claimer wins; confirming makes the marker permanent', { skip }, async (t) => {
  const etcd = await EtcdServer.start(t);
  const key = clusterKeys('m/').mongodbInit;
  const a = new InitMarker(() => client(t, etcd), key, logger);
  const b = new InitMarker(() => client(t, etcd), key, logger);

  const claim = await a.claim('a:3000', 30);
  assert.ok(claim);
  assert.equal(await b.claim('b:3000', 30), undefined, 'a second claim fails while the first holds');
  const seen = await b.read();
  assert.equal(seen?.host, 'a:3000');
  assert.equal(seen?.claim, true);
  assert.ok(await claim.stillHeld());

  assert.equal(await claim.confirm(), true);
  const permanent = await b.read();
  assert.deepEqual({ host: permanent?.host, claim: permanent?.claim }, { host: 'a:3000', claim: false });
  assert.equal(await b.claim('b:3000', 30), undefined, 'a permanent marker blocks new claims');
  assert.equal(await b.adopt('b:3000'), false, 'adopting never overwrites');
});

test('a claimer that dies before initiating frees mongodb/init when its lease expires', { skip }, async (t) => {
  const etcd = await EtcdServer.start(t);
  const key = clusterKeys('n/').mongodbInit;
  // The claimer is a real process, killed as a crash would kill it: no revoke, no more keep-alives.
  const claimer = spawn(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'test/helpers/mongodb-init-claimer.ts'), etcd.endpoint, key, 'dead:3000', '3'], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  t.after(() => {
    if (claimer.exitCode === null && claimer.signalCode === null) claimer.kill('SIGKILL');
  });
  let said = '';
  claimer.stdout!.on('data', (chunk: Buffer) => (said += chunk.toString()));
  await waitFor(() => said.includes('claimed'), { what: 'the claimer to claim', timeoutMs: 30_000 });
  assert.equal(said.trim(), 'claimed');

  const other = new InitMarker(() => client(t, etcd), key, logger);
  assert.equal((await other.read())?.host, 'dead:3000');
  assert.equal(await other.claim('alive:3000', 30), undefined, 'held while the claimer lives');
  claimer.kill('SIGKILL');
  const killedAt = Date.now();
  const next = await waitFor(() => other.claim('alive:3000', 30), { what: 'the dead claim to expire', timeoutMs: 20_000, intervalMs: 250 });
  assert.ok(Date.now() - killedAt < 10_000, 'freed within about one lease TTL');
  assert.equal(await next.confirm(), true);
  assert.equal((await other.read())?.host, 'alive:3000');
});

test('an abandoned claim goes at once; a lost claim cannot be confirmed', { skip }, async (t) => {
  const etcd = await EtcdServer.start(t);
  const c = client(t, etcd);
  const key = clusterKeys('o/').mongodbInit;
  const marker = new InitMarker(() => c, key, logger);

  const first = await marker.claim('a:1', 30);
  assert.ok(first);
  await first.abandon();
  assert.equal(await marker.read(), undefined);

  const second = await marker.claim('b:1', 30);
  assert.ok(second);
  // Someone removes the key (an operator, or the lease expired while etcd was cut off).
  await c.delete().key(key);
  assert.equal(await second.stillHeld(), false);
  assert.equal(await second.confirm(), false);
  assert.equal(await marker.read(), undefined, 'a failed confirm writes nothing');
});

test('a permanent marker whose set is gone is taken over by exactly one member', { skip }, async (t) => {
  const etcd = await EtcdServer.start(t);
  const c = client(t, etcd);
  const key = clusterKeys('p/').mongodbInit;
  const marker = new InitMarker(() => c, key, logger);
  assert.equal(await marker.adopt('old:3000'), true);
  const seen = await marker.read();
  assert.ok(seen && !seen.claim);

  const attempts = await Promise.all(['x:1', 'y:1', 'z:1'].map((host) => new InitMarker(() => client(t, etcd), key, logger).takeOver(seen, host, 30)));
  const winners = attempts.filter((claim) => claim !== undefined);
  assert.equal(winners.length, 1);
  assert.equal(await winners[0]!.confirm(), true);
  assert.equal((await marker.read())?.host, winners[0]!.host);
});
