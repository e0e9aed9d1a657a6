// The etcd key layout, in one place (SPEC §4). Every key lives under the cluster prefix (`--etcd-prefix`,
// default `kv2/`); directory prefixes end with `/` so a name can never run into its neighbour.

export const DEFAULT_PREFIX = 'kv2/';

export function clusterKeys(prefix: string = DEFAULT_PREFIX) {
  return {
    prefix,
    /** A judicator's registration (JSON: its RPC address and its etcd member's client URL). */
    judicatorServices: `${prefix}judicator/service/`,
    judicatorService: (name: string) => `${prefix}judicator/service/${name}`,
    /** etcd3 Election name: candidates and the leader live under it. */
    leaderElection: `${prefix}judicator/leader`,
    mongodbRegistrations: `${prefix}mongodb/register/`,
    mongodbRegistration: (name: string) => `${prefix}mongodb/register/${name}`,
    mongodbInit: `${prefix}mongodb/init`,
    /** `etcd` or `mongodb`: the store this cluster was created with. */
    clusterStore: `${prefix}cluster/store`,
    /** Held by a judicator while it joins, so concurrent joins happen one at a time. */
    joinLock: `${prefix}cluster/join-lock`,
    /** First time a member was seen missing (for dead-member collection). */
    memberMissingSince: (memberId: string) => `${prefix}cluster/member-missing/${memberId}`,
    memberMissing: `${prefix}cluster/member-missing/`,
    /** Where the task store keeps its keys (etcd store only). */
    store: `${prefix}store/`,
  };
}

export type ClusterKeys = ReturnType<typeof clusterKeys>;
