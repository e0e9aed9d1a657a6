// An operator's identity on a judicator's machine: a short-lived `admin` certificate made in memory from
// the CA key of the judicator in a work dir (never written anywhere), and an RPC client of that judicator
// presenting it. What `kv2 join-token create` and `kv2 revoke` use: whoever can read the CA key is the
// cluster's root already, so this grants nothing new.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { UsageError } from '../common/errors';
import { configPath, readConfigFile } from '../boot/config-files';
import { IDENTITY_DIR } from '../boot/join-flags';
import { localHost } from '../etcd/config';
import { judicatorConfigSchema } from '../judicator/config';
import { createKeyAndCsr, readCsr } from '../pki/csr';
import { readIdentity } from '../pki/identity';
import { identityPaths, type NodeFiles } from '../pki/identity-files';
import { loadCertificateAuthority } from '../pki/init-identity';
import { JudicatorRpcClient } from '../rpc/client';
import { formatAddress, parseJudicatorAddress } from '../rpc/judicator-list';

/** Life of an operator's certificate, ms: one command. */
export const ADMIN_CERT_LIFETIME_MS = 10 * 60 * 1000;
/** Milliseconds one admin call may take. */
export const ADMIN_CALL_TIMEOUT_MS = 15_000;

export interface AdminClient {
  rpc: JudicatorRpcClient;
  /** The judicator it talks to. */
  address: string;
  close(): void;
}

/** The admin identity made from the judicator CA in `workDir`, and a client of `judicator` (default: that judicator). */
export async function localAdminClient(options: { workDir: string; judicator?: string }): Promise<AdminClient> {
  const roleDir = path.resolve(options.workDir, 'judicator');
  const dir = path.join(roleDir, IDENTITY_DIR);
  if (!fs.existsSync(identityPaths(dir).caKey)) {
    throw new UsageError(`no judicator's CA key in ${dir}: run this on a judicator's machine, with --work-dir the judicator's work dir`);
  }
  const ca = (await loadCertificateAuthority(dir))!;
  let address: string;
  if (options.judicator) {
    const { host, port } = parseJudicatorAddress(options.judicator);
    address = formatAddress(host, port);
  } else {
    const file = configPath(roleDir, 'main');
    if (!fs.existsSync(file)) throw new UsageError(`${file} does not exist: start the judicator in ${options.workDir} first, or give --judicator host:port`);
    const config = readConfigFile(file, judicatorConfigSchema);
    address = formatAddress(localHost(config.listen.address), config.listen.port);
  }
  const { keyPem, csrPem } = await createKeyAndCsr('admin');
  const name = `admin-${os.hostname().replace(/[^A-Za-z0-9_.-]/g, '-')}`.slice(0, 128);
  const issued = await ca.issue({ publicKey: await readCsr(csrPem), role: 'admin', name, lifetimeMs: ADMIN_CERT_LIFETIME_MS });
  const files: NodeFiles = { caPem: ca.certPem, keyPem, certPem: issued.pem, identity: readIdentity(issued.pem) };
  const rpc = new JudicatorRpcClient({
    source: { addresses: async () => [address] },
    identity: { current: files, onChange: () => () => undefined },
    timeoutMs: ADMIN_CALL_TIMEOUT_MS,
  });
  return { rpc, address, close: () => rpc.close() };
}
