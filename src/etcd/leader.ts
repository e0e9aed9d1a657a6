// Who leads the judicators. Candidates put `judicator/leader/<lease id>` = their name under their lease
// (see election.ts); the leader is the candidate whose key was created first. Readers (gateway, CLI)
// only need this.
import type { Etcd3 } from 'etcd3';
import { clusterKeys } from './keys';

export function leaderPrefix(prefix: string): string {
  return `${clusterKeys(prefix).leaderElection}/`;
}

/** The name of the leading judicator, or undefined when none campaigns. */
export async function currentLeader(client: Etcd3, prefix: string): Promise<string | undefined> {
  const response = await client.getAll().prefix(leaderPrefix(prefix)).sort('Create', 'Ascend').limit(1).exec();
  return response.kvs[0]?.value.toString();
}
