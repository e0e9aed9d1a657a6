// The MongoDB replica set managed through etcd, with real mongods (KV2_MONGOD_BINARY or the PATH; skipped
// with one line when there is none) and a real etcd:
// - three members started at once: the set is initiated exactly once, everyone joins, votes follow sync;
// - it loses its primary: another is elected and majority writes go on; the dead member is removed once
//   its registration is gone for the grace period, and membership follows registrations back and forth;
// - the same through three `kv2 judicator --store mongodb` nodes of the built binary.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { Etcd3 } from 'etcd3';
import { MongoClient } from 'mongodb';
import { createLogger } from '../../src/common/logging';
import { clusterKeys } from '../../src/etcd/keys';
import { LeasedRegistration } from '../../src/etcd/registration';
import { getConfig, hello } from '../../src/mongodb/commands';
import { mongodbConfigSchema, type MongodbConfig } from '../../src/mongodb/config';
import { ReplicaSetManager } from '../../src/mongodb/replica-set';
import { EtcdServer, etcdBinary } from '../helpers/etcd';
import { judicatorPortFlags, judicatorPorts, kv2Binary, startNode, waitForJudicator } from '../helpers/kv2';
import { TestMongod, skipUnlessMongod, testMongod } from '../helpers/mongod';
import { freePort } from '../helpers/ports';
import { makeTempDir } from '../helpers/temp';
import { waitFor } from '../helpers/wait';

type Hooks = { after: (fn: () => unknown) => void };

const logger = createLogger('replica-set-test', { maxBytes: 1 << 20, keep: 0, printToStdout: true, level: (process.env.KV2_LOG_LEVEL as 'info') ?? 'warn' });
const skip = skipUnlessMongod('MongoDB replica-set tests').skip ?? ('missing' in etcdBinary() ? 'no etcd' : undefined);

function memberConfig(name: string, port: number, etcdEndpoint: string, prefix: string): MongodbConfig {
  return mongodbConfigSchema.parse({
    exe: null,
    download: false,
    version: null,
    name,
    data_dir: 'data/mongodb',
    data_init_dir: 'data/mongodb_init',
    listen: { address: '127.0.0.1', port },
    advertise: { address: '127.0.0.1', port },
    replica_set: 'rs',
    cache_size_gb: 0.25,
    etcd: { endpoints: [etcdEndpoint], prefix },
    store: 'mongodb',
    register: { ttl: 3 },
    reconcile: { interval: 0.5, remove_after: 3, max_voters: 7, reconfig_timeout_ms: 30_000, removed_wipe_after: 5, unresponsive_after: 60 },
    init: { claim_ttl: 10 },
    start_timeout: 60,
    stop: { step_down_secs: 5, timeout: 10 },
    log: { dir: 'log/mongodb', print: false, max_bytes: 1 << 20, keep: 1, level: 'info' },
  });
}

/** One member as the mongodb module runs it: a mongod, its registration, its replica-set rounds. */
class Member {
  private registrationStop = new AbortController();
  private loopStop = new AbortController();
  private running: Promise<unknown> = Promise.resolve();
  readonly client: MongoClient;
  registration!: LeasedRegistration;

  constructor(
    readonly name: string,
    readonly mongod: TestMongod,
    readonly config: MongodbConfig,
    private readonly etcd: Etcd3,
  ) {
    this.client = new MongoClient(`mongodb://${mongod.host}/?directConnection=true`, { serverSelectionTimeoutMS: 2_000 });
  }

  get host(): string {
    return this.mongod.host;
  }

  start(): void {
    this.registrationStop = new AbortController();
    this.loopStop = new AbortController();
    const registration = new LeasedRegistration(() => this.etcd, { key: clusterKeys(this.config.etcd.prefix).mongodbRegistration(this.name), value: () => this.host, ttl: this.config.register.ttl }, logger);
    this.registration = registration;
    const manager = new ReplicaSetManager({
      config: this.config,
      admin: this.client.db('admin'),
      etcd: () => this.etcd,
      self: this.host,
      registered: () => registration.isRegistered,
      logger: logger.child({ member: this.name }),
      requestResync: (reason) => logger.error({ member: this.name, reason }, 'resync requested'),
    });
    this.running = Promise.all([registration.run(this.registrationStop.signal), manager.run(this.loopStop.signal)]);
  }

  /** Stops its rounds and unregisters (what a module does on SIGINT, minus stopping mongod). */
  async leave(): Promise<void> {
    this.loopStop.abort();
    this.registrationStop.abort();
    await this.running;
  }

  async close(): Promise<void> {
    await this.leave();
    await this.client.close();
  }
}

async function startMembers(t: Hooks, count: number) {
  const etcd = await EtcdServer.start(t);
  const client = new Etcd3({ hosts: [etcd.endpoint], dialTimeout: 2_000 });
  t.after(() => client.close());
  const prefix = 'rs-test/';
  const members: Member[] = [];
  for (let i = 0; i < count; i++) {
    const mongod = await TestMongod.start(t);
    const member = new Member(`m${i + 1}`, mongod, memberConfig(`m${i + 1}`, mongod.port, etcd.endpoint, prefix), client);
    t.after(() => member.close());
    members.push(member);
  }
  return { etcd, client, prefix, members };
}

async function configOf(member: Member) {
  return (await getConfig(member.client.db('admin'))).config;
}

async function primaryOf(members: readonly Member[]): Promise<Member | undefined> {
  for (const member of members) {
    try {
      if ((await hello(member.client.db('admin'))).isWritablePrimary) return member;
    } catch {
      // down
    }
  }
  return undefined;
}

test('three members started at once: initiated exactly once, all join, votes once synced', { skip, timeout: 300_000 }, async (t) => {
  const { client, prefix, members } = await startMembers(t, 3);
  for (const member of members) member.start();
  const hosts = members.map((m) => m.host).sort();
  await waitFor(
    async () => {
      const primary = await primaryOf(members);
      if (!primary) return false;
      const config = await configOf(primary);
      return config.members.map((m) => m.host).sort().join() === hosts.join() && config.members.every((m) => m.votes === 1);
    },
    { what: 'a three-member set with three voters', timeoutMs: 180_000, intervalMs: 500 },
  );
  // One initiation: the marker is permanent and names one of them; there is one set (one replicaSetId).
  const marker = await client.get(clusterKeys(prefix).mongodbInit).exec();
  assert.equal(marker.kvs.length, 1);
  assert.equal(marker.kvs[0]!.lease, '0');
  assert.ok(hosts.includes(marker.kvs[0]!.value.toString()));
  const setIds = await Promise.all(members.map(async (m) => String((await configOf(m)).settings?.replicaSetId)));
  assert.equal(new Set(setIds).size, 1);
});

test('the set loses its primary, keeps serving, and membership follows the registrations', { skip, timeout: 400_000 }, async (t) => {
  const { members } = await startMembers(t, 3);
  for (const member of members) member.start();
  const hosts = members.map((m) => m.host);
  await waitFor(
    async () => {
      const primary = await primaryOf(members);
      return primary && (await configOf(primary)).members.filter((m) => m.votes === 1).length === 3;
    },
    { what: 'three voters', timeoutMs: 180_000, intervalMs: 500 },
  );
  const rs = new MongoClient(`mongodb://${hosts.join(',')}/?replicaSet=rs`, { writeConcern: { w: 'majority', wtimeoutMS: 10_000 }, serverSelectionTimeoutMS: 30_000 });
  t.after(() => rs.close());
  const data = rs.db('kv2test').collection<{ _id: number }>('probe');
  await data.insertOne({ _id: 1 });

  // The primary dies (its module and mongod together): another member takes over, writes go on.
  const oldPrimary = (await primaryOf(members))!;
  await oldPrimary.leave();
  oldPrimary.mongod.process.child.kill('SIGKILL');
  const rest = members.filter((m) => m !== oldPrimary);
  await waitFor(() => primaryOf(rest), { what: 'a new primary', timeoutMs: 60_000, intervalMs: 500 });
  await waitFor(() => data.insertOne({ _id: 2 }).then(() => true, () => false), { what: 'a majority write after the failover', timeoutMs: 60_000, intervalMs: 500 });
  assert.deepEqual((await data.find().sort({ _id: 1 }).toArray()).map((d) => d._id), [1, 2]);

  // Unregistered past the grace period: the dead member leaves the config (one voter change).
  await waitFor(
    async () => {
      const primary = await primaryOf(rest);
      return primary && !(await configOf(primary)).members.some((m) => m.host === oldPrimary.host);
    },
    { what: 'the dead member to be removed from the config', timeoutMs: 60_000, intervalMs: 500 },
  );

  // A member that unregisters (its module stopped) is removed too; registering again brings it back.
  const leaving = rest[1]!;
  await leaving.leave();
  const primary = (await primaryOf(rest))!;
  await waitFor(async () => !(await configOf(primary)).members.some((m) => m.host === leaving.host), { what: 'the unregistered member removed', timeoutMs: 60_000, intervalMs: 500 });
  leaving.start();
  await waitFor(
    async () => {
      const config = await configOf((await primaryOf(rest))!);
      return config.members.some((m) => m.host === leaving.host && m.votes === 1);
    },
    { what: 'the member added back, voting once synced', timeoutMs: 120_000, intervalMs: 500 },
  );
  assert.equal((await data.countDocuments()), 2);
});

// ---- the same through the built kv2 ----

function judicatorRunsMongodb(): string | undefined {
  try {
    const help = spawnSync(kv2Binary(), ['judicator', '--help'], { encoding: 'utf8', timeout: 30_000 });
    return help.stdout.includes('--mongodb-exe') ? undefined : 'the built kv2 judicator has no mongodb module yet (src/cli/roles.ts)';
  } catch (error) {
    return (error as Error).message;
  }
}

test('three kv2 judicators on the MongoDB store form one replica set and survive losing the primary', { skip: skip ?? judicatorRunsMongodb(), timeout: 600_000 }, async (t) => {
  const mongodPath = (testMongod() as { path: string }).path;
  const specs: { name: string; dir: string; ports: Awaited<ReturnType<typeof judicatorPorts>>; mongoPort: number }[] = [];
  for (let i = 1; i <= 3; i++) specs.push({ name: `j${i}`, dir: makeTempDir(t, `kv2-mj${i}-`), ports: await judicatorPorts(), mongoPort: await freePort() });
  const join = specs.map((s) => `http://127.0.0.1:${s.ports.client}`).join(',');
  const nodes = specs.map((spec) =>
    startNode(t, spec.dir, [
      'judicator',
      ...judicatorPortFlags(spec.ports),
      '--etcd-name', spec.name, '--main-name', spec.name, '--mongodb-name', spec.name,
      '--etcd-cluster-join-member-client', join,
      '--store', 'mongodb',
      '--mongodb-exe', mongodPath,
      '--mongodb-listen-address', '127.0.0.1',
      '--mongodb-listen-port', String(spec.mongoPort),
      '--mongodb-advertise-address', '127.0.0.1',
      '--mongodb-remove-after', '5',
      '--boot-check-interval', '0.5', '--boot-grace-period', '30',
    ]),
  );
  await Promise.all(nodes.map((node, i) => waitForJudicator(node, specs[i]!.ports.rpc, 240_000)));
  const hosts = specs.map((s) => `127.0.0.1:${s.mongoPort}`);
  const direct = hosts.map((host) => new MongoClient(`mongodb://${host}/?directConnection=true`, { serverSelectionTimeoutMS: 2_000 }));
  t.after(() => Promise.all(direct.map((c) => c.close())));
  const primaryIndex = async (): Promise<number> => {
    for (let i = 0; i < direct.length; i++) {
      try {
        if ((await hello(direct[i]!.db('admin'))).isWritablePrimary) return i;
      } catch {
        // down
      }
    }
    return -1;
  };
  await waitFor(
    async () => {
      const i = await primaryIndex();
      if (i < 0) return false;
      const { config } = await getConfig(direct[i]!.db('admin'));
      return config.members.length === 3 && config.members.every((m) => m.votes === 1);
    },
    { what: 'the judicators to form a three-voter replica set', timeoutMs: 240_000, intervalMs: 1_000 },
  );
  const first = await primaryIndex();
  // SIGINT the primary's judicator: its mongod hands over and stops, and it unregisters.
  await nodes[first]!.stop('SIGINT', 120_000);
  const others = [0, 1, 2].filter((i) => i !== first);
  await waitFor(async () => others.includes(await primaryIndex()), { what: 'a new primary among the others', timeoutMs: 60_000, intervalMs: 500 });
  await waitFor(
    async () => {
      const i = await primaryIndex();
      if (i < 0) return false;
      const { config } = await getConfig(direct[i]!.db('admin'));
      return !config.members.some((m) => m.host === hosts[first]);
    },
    { what: 'the stopped judicator removed from the set', timeoutMs: 120_000, intervalMs: 1_000 },
  );
  for (const i of others) assert.ok(!nodes[i]!.exited, `judicator ${i + 1} still runs`);
});
