// Clusters of judicators (the built kv2) on loopback for tests: each node in its own work dir with its
// own ports, all stopped when the test ends. The first founds the cluster (and its CA); the others join
// through its RPC with the join token it keeps in judicator/data/pki/join-token, as an operator on one
// machine would (--join, --join-token-file). Tests reach etcd and the RPC with certificates they issue
// from the cluster's CA (`issueIdentity`): etcd admits only judicators' certificates.
import fs from 'node:fs';
import path from 'node:path';
import type { Etcd3 } from 'etcd3';
import { createEtcdClient } from '../../src/etcd/client';
import { createKeyAndCsr, readCsr } from '../../src/pki/csr';
import type { Role } from '../../src/pki/identity';
import { prepareIdentityDir, readNodeFiles, writeCaCertificate, writeNodePem, type NodeFiles } from '../../src/pki/identity-files';
import { loadCertificateAuthority } from '../../src/pki/init-identity';
import { judicatorPortFlags, judicatorPorts, startNode, waitForJudicator, type JudicatorPorts, type Kv2Node } from './kv2';
import { httpsJson } from './pki';
import { makeTempDir } from './temp';
import { waitFor } from './wait';

type Hooks = { after: (fn: () => unknown) => void };

export interface ClusterNode {
  name: string;
  dir: string;
  ports: JudicatorPorts;
  node: Kv2Node;
  /** Its etcd member's client URL (https). */
  clientUrl: string;
  /** Its RPC address, host:port (what other nodes --join). */
  rpcAddress: string;
  args: string[];
}

export const FAST_JUDICATOR_FLAGS = [
  '--boot-check-interval', '0.5',
  '--boot-grace-period', '15',
  '--main-lead-interval', '0.5',
];

export function judicatorArgs(name: string, ports: JudicatorPorts, extra: string[] = []): string[] {
  return ['judicator', ...judicatorPortFlags(ports), '--etcd-name', name, '--main-name', name, ...FAST_JUDICATOR_FLAGS, ...extra];
}

/** A judicator's identity dir (CA key, certificate, CRL, join token). */
export function identityDir(node: { dir: string }): string {
  return path.join(node.dir, 'judicator', 'data', 'pki');
}

/** The join token file a judicator keeps valid (readable by this user only). */
export function tokenFile(node: { dir: string }): string {
  return path.join(identityDir(node), 'join-token');
}

/**
 * A copy of `from`'s join token in `dir` (0600), as an operator hands a token to a new machine; its path.
 * (A node's command line then names only its own work dir, which the tests' process sweeps rely on.)
 */
export function copyToken(from: { dir: string }, dir: string): string {
  const copy = path.join(dir, 'join-token');
  fs.copyFileSync(tokenFile(from), copy);
  fs.chmodSync(copy, 0o600);
  return copy;
}

/** Waits for a judicator's join token file (its main module writes it once it reaches etcd). */
export async function waitForTokenFile(node: ClusterNode, timeoutMs = 60_000): Promise<string> {
  return waitFor(
    () => {
      if (node.node.exited) throw new Error(`judicator ${node.name} exited:\n${node.node.tail()}`);
      return fs.existsSync(tokenFile(node)) ? tokenFile(node) : undefined;
    },
    { what: `judicator ${node.name}'s join token file`, timeoutMs },
  );
}

/**
 * Starts `count` judicators: the first founds the cluster; once it serves, the others start at the same
 * moment joining it (--join its RPC, --join-token-file its token file), one etcd member at a time.
 */
export async function startJudicators(hooks: Hooks, count: number, extra: string[] = []): Promise<ClusterNode[]> {
  const specs = [];
  for (let i = 0; i < count; i++) {
    const ports = await judicatorPorts();
    specs.push({ name: `j${i + 1}`, dir: makeTempDir(hooks, `kv2-j${i + 1}-`), ports, clientUrl: `https://127.0.0.1:${ports.client}`, rpcAddress: `127.0.0.1:${ports.rpc}` });
  }
  const first = { ...specs[0]!, args: judicatorArgs(specs[0]!.name, specs[0]!.ports, extra) };
  const founder: ClusterNode = { ...first, node: startNode(hooks, first.dir, first.args) };
  await waitForJudicator(founder.node, founder.ports.rpc, 90_000);
  await waitForTokenFile(founder);
  if (count === 1) return [founder];
  const others = specs.slice(1).map((spec) => {
    const args = judicatorArgs(spec.name, spec.ports, ['--join', founder.rpcAddress, '--join-token-file', copyToken(founder, spec.dir), ...extra]);
    return { ...spec, args, node: startNode(hooks, spec.dir, args) };
  });
  await Promise.all(others.map((n) => waitForJudicator(n.node, n.ports.rpc, 120_000)));
  return [founder, ...others];
}

/** Starts a judicator again in its old work dir, with its old flags. */
export function restartJudicator(hooks: Hooks, node: ClusterNode): ClusterNode {
  return { ...node, node: startNode(hooks, node.dir, node.args) };
}

/**
 * A new identity of `role` issued straight from a judicator's CA (a test on the judicators' machine, as
 * an operator holding the CA key could): its directory (ca.crt, node.pem) and files. A `judicator` one
 * reaches etcd; its name is its own, so no judicator leaving revokes it. With `dir`, it goes there (a
 * role's `<work dir>/<role>/data/pki`: the node then starts with it, joined already).
 */
export async function issueIdentity(
  hooks: Hooks,
  from: { dir: string },
  role: Role,
  name: string,
  options: { lifetimeMs?: number; dir?: string } = {},
): Promise<{ dir: string; files: NodeFiles }> {
  const ca = await loadCertificateAuthority(identityDir(from));
  if (!ca) throw new Error(`no CA key in ${identityDir(from)}`);
  const { lifetimeMs } = options;
  const dir = options.dir ?? path.join(makeTempDir(hooks, `kv2-${role}-`), 'pki');
  const { keyPem, csrPem } = await createKeyAndCsr(name);
  const issued = await ca.issue({ publicKey: await readCsr(csrPem), role, name, lifetimeMs });
  prepareIdentityDir(dir);
  writeCaCertificate(dir, ca.certPem);
  writeNodePem(dir, keyPem, issued.pem);
  return { dir, files: readNodeFiles(dir)! };
}

/** An etcd client of the cluster (a judicator certificate of its own, made from `ca`'s CA), closed when the test ends. */
export async function etcdClient(hooks: Hooks, urls: string[], ca: { dir: string }): Promise<Etcd3> {
  const { files } = await issueIdentity(hooks, ca, 'judicator', 'test-etcd-client');
  const client = createEtcdClient(urls, { tls: { ca: files.caPem, cert: files.certPem, key: files.keyPem }, dialTimeoutMs: 2_000, callTimeoutMs: 3_000 });
  hooks.after(() => client.close());
  return client;
}

/**
 * One RPC call to a judicator (`POST /rpc/<method>`) over mutual TLS with `files` (none: no client
 * certificate): the HTTP status and the JSON answer.
 */
export function rpcCall(node: Pick<ClusterNode, 'rpcAddress'>, method: string, body: unknown, files?: NodeFiles): Promise<{ status: number; json: any }> {
  const tls = files ? { ca: files.caPem, cert: files.certPem, key: files.keyPem } : { rejectUnauthorized: false };
  return httpsJson(node.rpcAddress, `/rpc/${method}`, { ...tls, checkServerIdentity: () => undefined, headers: { 'content-type': 'application/json' } }, 'POST', JSON.stringify(body));
}

/** A judicator's Prometheus page (`GET /metrics` needs a cluster certificate: `files`). */
export async function judicatorMetrics(node: Pick<ClusterNode, 'rpcAddress'>, files: NodeFiles): Promise<string> {
  const { status, json } = await httpsJson(node.rpcAddress, '/metrics', { ca: files.caPem, cert: files.certPem, key: files.keyPem, checkServerIdentity: () => undefined });
  if (status !== 200) throw new Error(`GET /metrics of ${node.rpcAddress}: HTTP ${status} ${JSON.stringify(json)}`);
  return String(json);
}

/** Names of the cluster's members (started ones have a name), as seen through `client`. */
export async function memberNames(client: Etcd3): Promise<string[]> {
  const { members } = await client.cluster.memberList({});
  return members.map((m) => m.name || '(unstarted)').sort();
}

export async function waitForMembers(client: Etcd3, expected: string[], timeoutMs = 60_000): Promise<void> {
  const want = [...expected].sort().join(',');
  let seen = '';
  await waitFor(
    async () => {
      seen = (await memberNames(client)).join(',');
      return seen === want;
    },
    { what: () => `etcd members to be ${want} (last seen: ${seen})`, timeoutMs, intervalMs: 250 },
  );
}

export function dataDir(node: ClusterNode): string {
  return path.join(node.dir, 'judicator', 'data', 'etcd');
}
