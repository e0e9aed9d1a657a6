// A cluster's identity made before any judicator runs, for deployments that start every judicator from
// one definition (docker swarm's service, a compose file): the cluster CA (certificate and key, one PEM,
// given to each judicator with --cluster-ca-file) and a join token pinned to it for executors and gateways
// (given to them with --join-token-file, and to the judicators with --accept-join-token-file, which makes
// the cluster accept it). `kv2 swarm up` makes them into docker secrets; `kv2 cluster-secrets <dir>`
// writes them as files (0600) for a compose file or a configuration manager.
import fs from 'node:fs';
import path from 'node:path';
import { UsageError } from '../common/errors';
import { CertificateAuthority } from '../pki/certificate-authority';
import { writeFileAtomically } from '../pki/identity-files';
import { formatJoinToken, newJoinToken } from '../pki/join-token';

export const CLUSTER_SECRET_FILES = { ca: 'cluster-ca.pem', token: 'join-token' } as const;

export interface ClusterSecrets {
  /** The CA certificate followed by its key (PEM). */
  caPem: string;
  /** A join token pinned to that CA (the judicators accept it for executors and gateways). */
  token: string;
  fingerprint: string;
}

export async function makeClusterSecrets(): Promise<ClusterSecrets> {
  const ca = await CertificateAuthority.create();
  return { caPem: `${ca.certPem.trimEnd()}\n${ca.keyPem.trimEnd()}\n`, token: formatJoinToken(newJoinToken(ca.fingerprint)), fingerprint: ca.fingerprint };
}

/** Writes new cluster secrets into `dir` (made 0700; files 0600); refuses to replace existing ones. */
export async function writeClusterSecrets(dir: string): Promise<ClusterSecrets & { files: { ca: string; token: string } }> {
  const files = { ca: path.join(dir, CLUSTER_SECRET_FILES.ca), token: path.join(dir, CLUSTER_SECRET_FILES.token) };
  for (const file of Object.values(files)) {
    if (fs.existsSync(file)) throw new UsageError(`${file} exists: a cluster's CA is made once (replacing it cuts every node off); remove it first if that is what you want`);
  }
  const secrets = await makeClusterSecrets();
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  fs.chmodSync(dir, 0o700);
  writeFileAtomically(files.ca, secrets.caPem, 0o600);
  writeFileAtomically(files.token, `${secrets.token}\n`, 0o600);
  return { ...secrets, files };
}
