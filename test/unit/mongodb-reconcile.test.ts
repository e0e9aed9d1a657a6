// The primary's membership decisions (src/mongodb/reconcile.ts), from replica-set configs and statuses
// shaped as replSetGetConfig / replSetGetStatus document them: new members non-voting, one voting change
// per reconfig, at most 7 voters, removal only after the grace period, never the primary itself.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MemberState, type ConfigMember, type ReplicaSetConfig, type ReplicaSetStatus } from '../../src/mongodb/commands';
import { freeMemberId, planForcedSingleMember, planReconcile, trackUnregistered, type ReconcileInput } from '../../src/mongodb/reconcile';

const SELF = 'j1:3000';

function member(id: number, host: string, votes = 1): ConfigMember {
  return { _id: id, host, arbiterOnly: false, buildIndexes: true, hidden: false, priority: votes ? 1 : 0, tags: {}, votes };
}

function config(members: ConfigMember[], version = 3): ReplicaSetConfig {
  return { _id: 'rs', version, term: 2, protocolVersion: 1, members, settings: { chainingAllowed: true } };
}

function status(states: Record<number, { state: number; health?: number; name?: string }>): ReplicaSetStatus {
  return {
    set: 'rs',
    myState: MemberState.PRIMARY,
    members: Object.entries(states).map(([id, s]) => ({ _id: Number(id), name: s.name ?? `m${id}`, health: s.health ?? 1, state: s.state, self: Number(id) === 0 })),
  };
}

function input(overrides: Partial<ReconcileInput>): ReconcileInput {
  return {
    config: config([member(0, SELF)]),
    status: status({ 0: { state: MemberState.PRIMARY } }),
    registered: [SELF],
    self: SELF,
    unregisteredSince: new Map(),
    now: 1_000_000,
    removeAfterMs: 120_000,
    maxVoters: 7,
    ...overrides,
  };
}

const votersOf = (c: ReplicaSetConfig) => c.members.filter((m) => m.votes > 0).map((m) => m.host);

test('nothing registered beyond the primary: no reconfig', () => {
  const plan = planReconcile(input({}));
  assert.equal(plan.config, undefined);
  assert.deepEqual(plan.changes, []);
});

test('newly registered members join non-voting with priority 0, with free ids, version + 1, other fields kept', () => {
  const plan = planReconcile(input({ registered: [SELF, 'j2:3000', 'j3:3000'] }));
  assert.ok(plan.config);
  assert.equal(plan.config.version, 4);
  assert.equal(plan.config.term, 2, 'fields the server sent are sent back as they were');
  assert.deepEqual(plan.config.settings, { chainingAllowed: true });
  const added = plan.config.members.filter((m) => m.host !== SELF);
  assert.deepEqual(added.map((m) => [m._id, m.host, m.votes, m.priority]), [
    [1, 'j2:3000', 0, 0],
    [2, 'j3:3000', 0, 0],
  ]);
  assert.deepEqual(votersOf(plan.config), [SELF], 'adding non-voting members does not change the voters');
});

test('a SECONDARY non-voting member gets a vote and priority 1, one per reconfig', () => {
  const current = config([member(0, SELF), member(1, 'j2:3000', 0), member(2, 'j3:3000', 0)]);
  const plan = planReconcile(
    input({
      config: current,
      registered: [SELF, 'j2:3000', 'j3:3000'],
      status: status({ 0: { state: MemberState.PRIMARY }, 1: { state: MemberState.SECONDARY }, 2: { state: MemberState.SECONDARY } }),
    }),
  );
  assert.ok(plan.config);
  assert.deepEqual(votersOf(plan.config), [SELF, 'j2:3000']);
  assert.equal(plan.config.members.find((m) => m.host === 'j2:3000')!.priority, 1);
  // The next round (config applied) promotes the other one.
  const next = planReconcile(
    input({
      config: plan.config,
      registered: [SELF, 'j2:3000', 'j3:3000'],
      status: status({ 0: { state: MemberState.PRIMARY }, 1: { state: MemberState.SECONDARY }, 2: { state: MemberState.SECONDARY } }),
    }),
  );
  assert.ok(next.config);
  assert.deepEqual(votersOf(next.config), [SELF, 'j2:3000', 'j3:3000']);
});

test('members still syncing (STARTUP2, RECOVERING) or unhealthy do not get a vote', () => {
  const current = config([member(0, SELF), member(1, 'j2:3000', 0), member(2, 'j3:3000', 0)]);
  const plan = planReconcile(
    input({
      config: current,
      registered: [SELF, 'j2:3000', 'j3:3000'],
      status: status({ 0: { state: MemberState.PRIMARY }, 1: { state: MemberState.STARTUP2 }, 2: { state: MemberState.SECONDARY, health: 0 } }),
    }),
  );
  assert.equal(plan.config, undefined);
});

test('never more than the voter limit (7)', () => {
  const hosts = Array.from({ length: 8 }, (_, i) => (i === 0 ? SELF : `j${i + 1}:3000`));
  const current = config(hosts.map((h, i) => member(i, h, i < 7 ? 1 : 0)));
  const states = Object.fromEntries(hosts.map((_, i) => [i, { state: i === 0 ? MemberState.PRIMARY : MemberState.SECONDARY }]));
  const plan = planReconcile(input({ config: current, registered: hosts, status: status(states) }));
  assert.equal(plan.config, undefined, 'the eighth member stays non-voting');
});

test('an unregistered member is removed only after the grace period, and never the primary', () => {
  const current = config([member(0, SELF), member(1, 'j2:3000', 0)]);
  const since = new Map<string, number>();
  trackUnregistered(since, current.members.map((m) => m.host), [SELF], 1_000_000);
  assert.deepEqual([...since.keys()], ['j2:3000']);
  const early = planReconcile(input({ config: current, registered: [SELF], unregisteredSince: since, now: 1_000_000 + 119_000 }));
  assert.equal(early.config, undefined);
  assert.deepEqual(early.pendingRemoval, ['j2:3000']);
  const late = planReconcile(input({ config: current, registered: [SELF], unregisteredSince: since, now: 1_000_000 + 120_000 }));
  assert.ok(late.config);
  assert.deepEqual(late.config.members.map((m) => m.host), [SELF]);
  // The primary itself is never removed, even when its own registration is missing.
  const alone = planReconcile(input({ registered: [], unregisteredSince: new Map([[SELF, 0]]), now: 10_000_000 }));
  assert.equal(alone.config, undefined);
});

test('a member that registers again is no longer due for removal', () => {
  const since = new Map([['j2:3000', 0]]);
  trackUnregistered(since, [SELF, 'j2:3000'], [SELF, 'j2:3000'], 500_000);
  assert.equal(since.size, 0);
});

test('unregistered non-voting members all go at once, voting ones one per reconfig', () => {
  const current = config([member(0, SELF), member(1, 'a:1', 1), member(2, 'b:1', 1), member(3, 'c:1', 0), member(4, 'd:1', 0)]);
  const since = new Map(['a:1', 'b:1', 'c:1', 'd:1'].map((h) => [h, 0]));
  const plan = planReconcile(
    input({
      config: current,
      registered: [SELF],
      unregisteredSince: since,
      now: 500_000,
      status: status({ 0: { state: MemberState.PRIMARY }, 1: { state: MemberState.DOWN, health: 0 }, 2: { state: MemberState.DOWN, health: 0 } }),
    }),
  );
  assert.ok(plan.config);
  const remaining = plan.config.members.map((m) => m.host);
  assert.ok(!remaining.includes('c:1') && !remaining.includes('d:1'), 'non-voting members removed together');
  assert.equal(votersOf(current).length - votersOf(plan.config).length, 1, 'exactly one voter removed');
});

test('a replacement gets its vote before the dead voter it replaces is removed', () => {
  const current = config([member(0, SELF), member(1, 'dead:1', 1), member(2, 'new:1', 0)]);
  const base = {
    registered: [SELF, 'new:1'],
    unregisteredSince: new Map([['dead:1', 0]]),
    now: 500_000,
    status: status({ 0: { state: MemberState.PRIMARY }, 1: { state: MemberState.DOWN, health: 0 }, 2: { state: MemberState.SECONDARY } }),
  };
  const first = planReconcile(input({ ...base, config: current }));
  assert.ok(first.config);
  assert.deepEqual(votersOf(first.config), [SELF, 'dead:1', 'new:1']);
  const second = planReconcile(input({ ...base, config: first.config }));
  assert.ok(second.config);
  assert.deepEqual(votersOf(second.config), [SELF, 'new:1']);
});

test('member ids: the smallest free one within 0-255', () => {
  assert.equal(freeMemberId(new Set([0, 1, 3])), 2);
  assert.throws(() => freeMemberId(new Set(Array.from({ length: 256 }, (_, i) => i))));
});

test('disaster recovery keeps only this member, voting, and its _id', () => {
  const current = config([member(0, 'old1:1'), member(4, SELF, 0), member(2, 'old3:1')], 9);
  const forced = planForcedSingleMember({ config: current, self: SELF });
  assert.equal(forced.version, 10);
  assert.deepEqual(forced.members.map((m) => [m._id, m.host, m.votes]), [[4, SELF, 1]]);
  assert.ok(forced.members[0]!.priority >= 1);
  const foreign = planForcedSingleMember({ config: current, self: 'elsewhere:1' });
  assert.deepEqual(foreign.members.map((m) => [m.host, m.votes]), [['elsewhere:1', 1]]);
});
