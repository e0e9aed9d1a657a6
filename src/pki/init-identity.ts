// The first judicator's identity: the cluster CA and the judicator's own certificate, made on its first
// start and found again on every later one. A CA that exists is never made again (that would cut every
// node off); a half-made one (a crash between writing the key and the certificate) is finished from
// the staging directory it was written in, or refused with what to do.
import fs from 'node:fs';
import path from 'node:path';
import { ConfigError, describeError } from '../common/errors';
import type { Logger } from '../common/logging';
import { CertificateAuthority, ISSUE_BACKDATE_MS } from './certificate-authority';
import { createKeyAndCsr, readCsr } from './csr';
import { certificateHosts, coversHosts, LOOPBACK_HOSTS } from './hosts';
import { checkNodeName, type CertIdentity } from './identity';
import { identityPaths, prepareIdentityDir, readNodeFiles, writeCaCertificate, writeCaKey, writeNodePem } from './identity-files';
import { needsRenewal } from './renewal';

/** Where a new CA is written before it is moved into place. */
const STAGING = '.ca-init';

export interface InitIdentityOptions {
  /** This judicator's name. */
  name: string;
  /** Addresses and DNS names it serves etcd and the RPC on (127.0.0.1 and localhost are always added). */
  hosts?: readonly string[];
  leafLifetimeMs?: number;
  logger?: Logger;
}

export interface InitIdentityResult {
  ca: CertificateAuthority;
  /** True on the very first start: the CA was made now. */
  createdCa: boolean;
  /** True when a judicator certificate was issued now (first start, new name or address, due for renewal). */
  issuedCertificate: boolean;
  identity: CertIdentity;
}

export { LOOPBACK_HOSTS };

function exists(file: string): boolean {
  return fs.existsSync(file);
}

/** The CA in `dir` (ca.crt and ca.key), or undefined when there is no ca.key (a node that is not a judicator). */
export async function loadCertificateAuthority(dir: string): Promise<CertificateAuthority | undefined> {
  const paths = identityPaths(dir);
  if (!exists(paths.caKey)) return undefined;
  if (!exists(paths.caCert)) throw new ConfigError(`${paths.caKey} exists without ${paths.caCert}: restore ca.crt from a backup or another judicator`);
  try {
    return await CertificateAuthority.load(fs.readFileSync(paths.caCert, 'utf8'), fs.readFileSync(paths.caKey, 'utf8'));
  } catch (error) {
    throw new ConfigError(`the cluster CA in ${dir} cannot be used: ${describeError(error)}`);
  }
}

/** Makes the CA, or finishes one a crash interrupted, or finds the one there; never replaces one. */
async function ensureCa(dir: string, logger?: Logger): Promise<{ ca: CertificateAuthority; created: boolean }> {
  const paths = identityPaths(dir);
  const staging = path.join(dir, STAGING);
  const hasKey = exists(paths.caKey);
  const hasCert = exists(paths.caCert);
  if (hasKey && !hasCert && exists(path.join(staging, 'ca.crt'))) {
    logger?.warn({ dir }, 'finishing a CA creation that was interrupted');
    fs.renameSync(path.join(staging, 'ca.crt'), paths.caCert);
  } else if (!hasKey && hasCert) {
    throw new ConfigError(
      `${paths.caCert} exists without ${paths.caKey}: this directory belongs to a node that joined a cluster (or lost its CA key); a judicator never makes a new CA over an existing one`,
    );
  }
  if (exists(paths.caKey)) {
    fs.rmSync(staging, { recursive: true, force: true });
    return { ca: (await loadCertificateAuthority(dir))!, created: false };
  }
  // Neither file: nothing was ever issued from a staged CA, so a leftover one is discarded.
  fs.rmSync(staging, { recursive: true, force: true });
  const ca = await CertificateAuthority.create();
  prepareIdentityDir(staging);
  writeCaKey(staging, ca.keyPem);
  writeCaCertificate(staging, ca.certPem);
  fs.renameSync(path.join(staging, 'ca.key'), paths.caKey);
  fs.renameSync(path.join(staging, 'ca.crt'), paths.caCert);
  fs.rmSync(staging, { recursive: true, force: true });
  logger?.info({ dir, fingerprint: ca.fingerprint }, 'created the cluster CA');
  return { ca, created: true };
}

/**
 * The first judicator's identity in `dir`: the CA (made once) and a judicator certificate for `name`
 * covering `hosts`, issued again only when missing, for another name, short of an address, or due for
 * renewal. Safe to call on every start.
 */
export async function initClusterIdentity(dir: string, options: InitIdentityOptions): Promise<InitIdentityResult> {
  const name = checkNodeName(options.name);
  const hosts = [...new Set([...LOOPBACK_HOSTS, ...(options.hosts ?? [])])];
  prepareIdentityDir(dir);
  const { ca, created } = await ensureCa(dir, options.logger);
  let current: ReturnType<typeof readNodeFiles>;
  try {
    current = readNodeFiles(dir);
  } catch (error) {
    options.logger?.warn({ dir, err: describeError(error) }, 'the judicator certificate cannot be used; issuing a new one');
    current = undefined;
  }
  const keep =
    current &&
    current.identity.role === 'judicator' &&
    current.identity.name === name &&
    coversHosts(current.certPem, hosts) &&
    !needsRenewal(current.identity, new Date());
  if (keep) return { ca, createdCa: created, issuedCertificate: false, identity: current!.identity };
  const { keyPem, csrPem } = await createKeyAndCsr(name);
  const issued = await ca.issue({ publicKey: await readCsr(csrPem), role: 'judicator', name, hosts, lifetimeMs: options.leafLifetimeMs });
  writeNodePem(dir, keyPem, issued.pem);
  options.logger?.info({ dir, serial: issued.identity.serial, hosts, notAfter: issued.identity.notAfter.toISOString() }, 'issued this judicator\'s certificate');
  return { ca, createdCa: created, issuedCertificate: true, identity: issued.identity };
}

/**
 * A new certificate for the judicator in `dir`, from the CA key it holds, with the same name, host names
 * and life as its current one. A judicator does this when its etcd member starts and when it leaves: a
 * member the others removed (and revoked) while it was down, or one that revoked itself on leaving, comes
 * back with a certificate issued after that revocation. Returns the new identity.
 */
export async function reissueJudicatorCertificate(dir: string, logger?: Logger): Promise<CertIdentity> {
  const current = readNodeFiles(dir);
  if (!current) throw new ConfigError(`no judicator certificate in ${dir} to issue again`);
  const { identity } = current;
  if (identity.role !== 'judicator') throw new ConfigError(`${dir} holds a ${identity.role}'s certificate, not a judicator's`);
  const ca = await loadCertificateAuthority(dir);
  if (!ca) throw new ConfigError(`${dir} holds no CA key (ca.key): a judicator holds it`);
  const lifetimeMs = identity.notAfter.getTime() - identity.notBefore.getTime() - ISSUE_BACKDATE_MS;
  const { keyPem, csrPem } = await createKeyAndCsr(identity.name);
  const issued = await ca.issue({ publicKey: await readCsr(csrPem), role: 'judicator', name: identity.name, hosts: certificateHosts(current.certPem), lifetimeMs });
  writeNodePem(dir, keyPem, issued.pem);
  logger?.info({ dir, previousSerial: identity.serial, serial: issued.identity.serial, notAfter: issued.identity.notAfter.toISOString() }, "issued this judicator's certificate again");
  return issued.identity;
}
