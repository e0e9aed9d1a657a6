// What the primary changes in the replica-set config so that membership follows the registrations in etcd,
// as a pure function of what it sees (config, member states, registrations, clock). It keeps to the safe
// reconfiguration rules of MongoDB 4.4+: at most one voting member added or removed per reconfig, new
// members join non-voting with priority 0 (non-voting members must have priority 0) and get a vote once
// they are SECONDARY (synced), at most 7 voters, and a member is only removed after it has stayed
// unregistered for a grace period. The original did all of this in one reconfig, which newer servers
// refuse or which is unsafe (reference §3.3 [WEAK]).
import { MemberState, type ConfigMember, type ReplicaSetConfig, type ReplicaSetStatus } from './commands';

export interface ReconcileInput {
  config: ReplicaSetConfig;
  status: ReplicaSetStatus;
  /** Hosts registered under mongodb/register/ (host:port). */
  registered: readonly string[];
  /** This member's host (the primary running the reconcile): never removed or demoted. */
  self: string;
  /** Host -> when it was first seen in the config but not registered (see trackUnregistered). */
  unregisteredSince: ReadonlyMap<string, number>;
  now: number;
  removeAfterMs: number;
  maxVoters: number;
}

export interface ReconcilePlan {
  /** The config to send to replSetReconfig (version + 1), or undefined when nothing changes. */
  config?: ReplicaSetConfig;
  /** What the new config changes, one line each, for the log. */
  changes: string[];
  /** Hosts waiting for their grace period to end before removal (for the log). */
  pendingRemoval: string[];
}

/** Member _ids: 0-255 on MongoDB 4.4; the smallest free one keeps churn from running out of them. */
export function freeMemberId(used: ReadonlySet<number>): number {
  for (let id = 0; id <= 255; id++) if (!used.has(id)) return id;
  throw new Error('a replica set cannot have more than 256 member ids in use');
}

/** Updates `since` (host -> first time seen unregistered) from the config and the registrations. */
export function trackUnregistered(since: Map<string, number>, configHosts: readonly string[], registered: readonly string[], now: number): void {
  const registeredSet = new Set(registered);
  for (const host of [...since.keys()]) {
    if (registeredSet.has(host) || !configHosts.includes(host)) since.delete(host);
  }
  for (const host of configHosts) {
    if (!registeredSet.has(host) && !since.has(host)) since.set(host, now);
  }
}

function isVoter(member: ConfigMember): boolean {
  return member.votes > 0;
}

export function planReconcile(input: ReconcileInput): ReconcilePlan {
  const { config, status, self, now } = input;
  const registered = [...new Set(input.registered)];
  const changes: string[] = [];
  const pendingRemoval: string[] = [];
  const stateOf = new Map(status.members.map((m) => [m._id, m]));
  let members: ConfigMember[] = config.members.map((m) => ({ ...m }));
  const inConfig = new Set(members.map((m) => m.host));

  // 1. Registered hosts that are not members yet join without a vote (any number at once: the voting
  //    membership does not change).
  const used = new Set(members.map((m) => m._id));
  for (const host of registered) {
    if (inConfig.has(host)) continue;
    const id = freeMemberId(used);
    used.add(id);
    members.push({ _id: id, host, votes: 0, priority: 0 });
    changes.push(`add ${host} as member ${id}, non-voting until it is SECONDARY`);
  }

  // 2. Members unregistered for longer than the grace period are due for removal.
  const due = new Set<string>();
  for (const member of members) {
    if (member.host === self || registered.includes(member.host)) continue;
    const since = input.unregisteredSince.get(member.host) ?? now;
    if (now - since >= input.removeAfterMs) due.add(member.host);
    else pendingRemoval.push(member.host);
  }
  // Non-voting ones all go at once.
  for (const member of members.filter((m) => due.has(m.host) && !isVoter(m))) {
    changes.push(`remove ${member.host} (member ${member._id}, non-voting): unregistered for ${Math.round((now - (input.unregisteredSince.get(member.host) ?? now)) / 1000)} s`);
  }
  members = members.filter((m) => !(due.has(m.host) && !isVoter(m)));

  // 3. At most one change of the voting membership: first give a vote to a synced member (so that a
  //    replacement is in before the member it replaces goes), else remove one dead voter.
  const voters = members.filter(isVoter).length;
  const promotable = members.find((m) => {
    if (isVoter(m) || m.arbiterOnly || m.hidden || !registered.includes(m.host)) return false;
    const state = stateOf.get(m._id);
    return state !== undefined && state.state === MemberState.SECONDARY && state.health === 1;
  });
  if (promotable && voters < input.maxVoters) {
    promotable.votes = 1;
    promotable.priority = 1;
    changes.push(`give ${promotable.host} (member ${promotable._id}) a vote: it is SECONDARY`);
  } else {
    const deadVoter = members.find((m) => due.has(m.host) && isVoter(m));
    if (deadVoter) {
      members = members.filter((m) => m !== deadVoter);
      changes.push(`remove voting member ${deadVoter.host} (member ${deadVoter._id}): unregistered for ${Math.round((now - (input.unregisteredSince.get(deadVoter.host) ?? now)) / 1000)} s`);
    }
  }
  // Voters that are still due wait for a later round (one voting change per reconfig).
  for (const member of members) if (due.has(member.host) && !pendingRemoval.includes(member.host)) pendingRemoval.push(member.host);

  if (changes.length === 0) return { changes, pendingRemoval };
  return { config: { ...config, version: config.version + 1, members }, changes, pendingRemoval };
}

export interface ForceInput {
  config: ReplicaSetConfig;
  self: string;
}

/**
 * Disaster recovery: the config this member forces when every other member is gone for good (none is
 * registered or reachable, past the grace period): itself alone, voting. Its own member entry is kept
 * when it has one (same _id), else it gets a free id.
 */
export function planForcedSingleMember({ config, self }: ForceInput): ReplicaSetConfig {
  const own = config.members.find((m) => m.host === self);
  const member: ConfigMember = own ? { ...own, votes: 1, priority: Math.max(1, own.priority) } : { _id: 0, host: self, votes: 1, priority: 1 };
  if (member.hidden) member.hidden = false;
  if (member.arbiterOnly) member.arbiterOnly = false;
  return { ...config, version: config.version + 1, members: [member] };
}
