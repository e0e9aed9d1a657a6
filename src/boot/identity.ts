// Each role's cluster identity, made ready before its modules start (they only load it): the first
// judicator makes the cluster CA and its own certificate; a judicator started with --join gets its
// certificate (and the CA key) from a running judicator with a join token; an executor or a gateway gets
// one from the CA of the judicator in the same work dir (`kv2 standalone`, or roles side by side in one
// work dir: no token needed), else with a join token from the judicators it joins through. A node that
// has a usable certificate keeps it (its modules renew it). The join token is read here and goes nowhere
// else: not into a config file, not onto a module's command line. Making keys, CSRs and certificates
// loads the X.509 library (about 15 MB that a process keeps for good), so start-role.ts does that work in
// a short-lived child process, and only when `identityWork` says there is some.
import fs from 'node:fs';
import path from 'node:path';
import { ConfigError, InvalidInputError, UnavailableError, UsageError, describeError } from '../common/errors';
import type { Logger } from '../common/logging';
import { readOptionalText } from '../common/optional-file';
import { sleep } from '../common/processes';
import type { ExecutorConfig } from '../executor/config';
import type { GatewayConfig } from '../gateway/config';
import type { JudicatorConfig } from '../judicator/config';
import { LEAF_LIFETIME_MS } from '../pki/certificate-authority';
import { createKeyAndCsr, readCsr } from '../pki/csr';
import { JoinRefusedError, TrustError } from '../pki/errors';
import { coversHosts, LOOPBACK_HOSTS } from '../pki/hosts';
import type { Role } from '../pki/identity';
import { caFingerprint } from '../pki/fingerprint';
import { identityPaths, prepareIdentityDir, readNodeFiles, splitPem, writeCaCertificate, writeCaKey, writeCrl, writeFileAtomically, writeNodePem, type NodeFiles } from '../pki/identity-files';
import { initClusterIdentity, loadCertificateAuthority } from '../pki/init-identity';
import { join } from '../pki/join-client';
import { needsRenewal } from '../pki/renewal';
import { formatAddress, parseJudicatorAddress } from '../rpc/judicator-list';
import { type FlagValues } from './flags';
import { IDENTITY_DIR, joinAddresses } from './join-flags';

/** First and longest pause between attempts to reach a judicator to join, ms. */
export const JOIN_RETRY_FIRST_MS = 1_000;
export const JOIN_RETRY_MAX_MS = 10_000;
/** How often the wait for a judicator (or for the join token file) is logged again, ms. */
const WAIT_LOG_EVERY_MS = 30_000;

/** A module about to start, as prepareRole rendered it. */
export interface RenderedModule {
  role: 'judicator' | 'executor' | 'gateway';
  name: string;
  roleDir: string;
  config: unknown;
}

export interface IdentityContext {
  workDir: string;
  flags: FlagValues;
  logger: Logger;
  signal: AbortSignal;
}

/**
 * Whether any role of `modules` needs its identity made, joined or issued again (a cheap look at the
 * files, with no X.509 library): false when every one has a usable certificate already.
 */
export function identityWork(modules: readonly RenderedModule[], context: Pick<IdentityContext, 'workDir' | 'flags'>): boolean {
  return modules.some((module) => {
    if (module.role === 'judicator' && module.name === 'main') {
      const config = module.config as JudicatorConfig;
      const dir = path.resolve(module.roleDir, config.pki.identity_dir);
      const paths = identityPaths(dir);
      const caFile = context.flags['cluster-ca-file'];
      // A CA given as a file (swarm, compose) is the one there already when its certificate is.
      const caFromFile = typeof caFile === 'string' && caFile ? splitPem(readOptionalText(path.resolve(caFile)) ?? '').certificates[0]?.trim() : undefined;
      const files = quietReadNodeFiles(dir);
      return !(
        files &&
        fs.existsSync(paths.caKey) &&
        fs.existsSync(paths.crl) &&
        (caFromFile === undefined || caFromFile === files.caPem.trim()) &&
        files.identity.role === 'judicator' &&
        files.identity.name === config.name &&
        coversHosts(files.certPem, [...LOOPBACK_HOSTS, ...config.pki.hosts]) &&
        !needsRenewal(files.identity, new Date())
      );
    }
    if (module.role === 'executor' || module.role === 'gateway') {
      const config = module.config as { name: string; identity_dir: string };
      const files = quietReadNodeFiles(path.resolve(module.roleDir, config.identity_dir));
      const localCaCert = readOptionalText(identityPaths(path.join(context.workDir, 'judicator', IDENTITY_DIR)).caCert);
      return !(
        files &&
        files.identity.role === module.role &&
        files.identity.name === config.name &&
        files.identity.notAfter.getTime() > Date.now() &&
        (localCaCert === undefined || localCaCert === files.caPem)
      );
    }
    return false;
  });
}

function quietReadNodeFiles(dir: string): NodeFiles | undefined {
  try {
    return readNodeFiles(dir);
  } catch {
    return undefined;
  }
}

/** Makes every role of `modules` ready to start: the judicator first (standalone's others use its CA). */
export async function prepareIdentities(modules: readonly RenderedModule[], context: IdentityContext): Promise<void> {
  const judicator = modules.find((m) => m.role === 'judicator' && m.name === 'main');
  if (judicator) await judicatorIdentity(judicator.roleDir, judicator.config as JudicatorConfig, context);
  for (const module of modules) {
    if (context.signal.aborted) return;
    if (module.role === 'executor') await memberIdentity('executor', module.roleDir, module.config as ExecutorConfig, (module.config as ExecutorConfig).judicators.join, context, judicator?.config as JudicatorConfig | undefined);
    if (module.role === 'gateway') await memberIdentity('gateway', module.roleDir, module.config as GatewayConfig, (module.config as GatewayConfig).judicators.join, context, judicator?.config as JudicatorConfig | undefined);
  }
}

function tryReadNodeFiles(dir: string, logger: Logger): NodeFiles | undefined {
  try {
    return readNodeFiles(dir);
  } catch (error) {
    logger.warn({ dir, err: describeError(error) }, 'the identity in this directory cannot be used; getting a new one');
    return undefined;
  }
}

async function judicatorIdentity(roleDir: string, config: JudicatorConfig, context: IdentityContext): Promise<void> {
  const { logger } = context;
  const dir = path.resolve(roleDir, config.pki.identity_dir);
  const paths = identityPaths(dir);
  const hosts = [...new Set([...LOOPBACK_HOSTS, ...config.pki.hosts])];
  const lifetimeMs = config.pki.cert_lifetime * 1000;
  const joining = joinAddresses(context.flags);
  const caFile = context.flags['cluster-ca-file'];
  if (typeof caFile === 'string' && caFile) await installClusterCa(path.resolve(caFile), dir, logger);
  if (!fs.existsSync(paths.caKey) && (fs.existsSync(paths.node) || fs.existsSync(paths.caCert) || joining.length > 0)) {
    if (joining.length === 0) {
      throw new ConfigError(`${dir} holds a node identity without the cluster CA key: a judicator holds it (join this judicator with --join <judicator> and a judicator join token, or restore ca.key from a backup)`);
    }
    const token = await joinToken(context);
    const joined = await joinWithRetry({ addresses: joining, token, role: 'judicator', name: config.name, dir, hosts }, context);
    if (!joined.receivedCaKey) throw new ConfigError('the judicator that signed this judicator\'s certificate did not send the cluster CA key; every judicator needs it');
    logger.info({ serial: joined.identity.serial, ca: joined.caFingerprint }, `joined the cluster as judicator ${config.name}`);
  }
  // Cheap checks first: loading the CA loads the X.509 library, which a supervisor should not carry.
  const current = tryReadNodeFiles(dir, logger);
  const usable =
    current &&
    fs.existsSync(paths.caKey) &&
    current.identity.role === 'judicator' &&
    current.identity.name === config.name &&
    coversHosts(current.certPem, hosts) &&
    !needsRenewal(current.identity, new Date());
  if (!usable) {
    const result = await initClusterIdentity(dir, { name: config.name, hosts, leafLifetimeMs: lifetimeMs, logger });
    if (result.createdCa) {
      // The judicator main module prints its first join token once and removes this.
      writeFileAtomically(paths.announce, '', 0o600);
      logger.info({ dir, fingerprint: result.ca.fingerprint }, `made a new cluster CA in ${dir}`);
    }
  }
  // etcd refuses every connection while it cannot read its CRL; the main module keeps it current.
  if (!fs.existsSync(paths.crl)) {
    const ca = await loadCertificateAuthority(dir);
    writeCrl(dir, await ca!.signCrl([]));
  }
}

/**
 * A cluster CA given as a file (certificate and key: kv2 cluster-secrets, a swarm secret) put into the
 * judicator's identity directory, unless it holds that CA already; another CA there is refused.
 */
async function installClusterCa(file: string, dir: string, logger: Logger): Promise<void> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    throw new UsageError(`--cluster-ca-file ${file}: ${describeError(error)}`);
  }
  const { certificates, privateKeys } = splitPem(text);
  if (certificates.length !== 1 || privateKeys.length !== 1) {
    throw new ConfigError(`--cluster-ca-file ${file} must hold the CA certificate and its key (found ${certificates.length} certificates, ${privateKeys.length} keys)`);
  }
  const { CertificateAuthority } = await import('../pki/certificate-authority');
  let ca: Awaited<ReturnType<typeof CertificateAuthority.load>>;
  try {
    ca = await CertificateAuthority.load(certificates[0]!, privateKeys[0]!);
  } catch (error) {
    throw new ConfigError(`--cluster-ca-file ${file}: ${describeError(error)}`);
  }
  const paths = identityPaths(dir);
  const present = readOptionalText(paths.caCert);
  if (present !== undefined && fs.existsSync(paths.caKey)) {
    if (caFingerprint(present) !== ca.fingerprint) {
      throw new ConfigError(`${dir} holds another cluster CA (${caFingerprint(present)}) than --cluster-ca-file ${file} (${ca.fingerprint}): a judicator never changes its cluster; move ${dir} aside to start over`);
    }
    return;
  }
  prepareIdentityDir(dir);
  writeCaKey(dir, ca.keyPem);
  writeCaCertificate(dir, ca.certPem);
  logger.info({ file, fingerprint: ca.fingerprint }, `took the cluster CA ${ca.fingerprint} from ${file}`);
}

async function memberIdentity(
  role: Extract<Role, 'executor' | 'gateway'>,
  roleDir: string,
  config: { name: string; identity_dir: string },
  addresses: readonly string[],
  context: IdentityContext,
  judicator: JudicatorConfig | undefined,
): Promise<void> {
  const { logger } = context;
  const dir = path.resolve(roleDir, config.identity_dir);
  const localCaDir = path.join(context.workDir, 'judicator', IDENTITY_DIR);
  const localCaCert = readOptionalText(identityPaths(localCaDir).caCert);
  const current = tryReadNodeFiles(dir, logger);
  const usable =
    current &&
    current.identity.role === role &&
    current.identity.name === config.name &&
    current.identity.notAfter.getTime() > Date.now() &&
    // Next to a judicator, this node belongs to that judicator's cluster.
    (localCaCert === undefined || localCaCert === current.caPem);
  if (usable) return;
  const ca = fs.existsSync(identityPaths(localCaDir).caKey) ? await loadCertificateAuthority(localCaDir) : undefined;
  if (ca) {
    const { keyPem, csrPem } = await createKeyAndCsr(config.name);
    const lifetimeMs = (judicator?.pki.cert_lifetime ?? localCertLifetime(context.workDir) ?? LEAF_LIFETIME_MS / 1000) * 1000;
    const issued = await ca.issue({ publicKey: await readCsr(csrPem), role, name: config.name, lifetimeMs });
    prepareIdentityDir(dir);
    writeCaCertificate(dir, ca.certPem);
    writeNodePem(dir, keyPem, issued.pem);
    logger.info({ serial: issued.identity.serial, notAfter: issued.identity.notAfter.toISOString() }, `issued ${role} ${config.name}'s certificate from the CA of the judicator in ${context.workDir}`);
    return;
  }
  if (current && current.identity.notAfter.getTime() > Date.now()) {
    throw new ConfigError(
      `${dir} holds the certificate of ${current.identity.role} ${current.identity.name}, not of ${role} ${config.name}: start with the name it was issued for, or move ${dir} aside and join again with a join token`,
    );
  }
  const token = await joinToken(context, role);
  const joined = await joinWithRetry({ addresses, token, role, name: config.name, dir }, context);
  logger.info({ serial: joined.identity.serial, ca: joined.caFingerprint, notAfter: joined.identity.notAfter.toISOString() }, `joined the cluster as ${role} ${config.name}`);
}

/** The certificate lifetime of the judicator in `workDir` (its config), for certificates issued from its CA. */
function localCertLifetime(workDir: string): number | undefined {
  try {
    const config = JSON.parse(fs.readFileSync(path.join(workDir, 'judicator', 'config', 'main.json'), 'utf8')) as { pki?: { cert_lifetime?: unknown } };
    return typeof config.pki?.cert_lifetime === 'number' ? config.pki.cert_lifetime : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The join token: `--join-token` / KV2_JOIN_TOKEN, else the `--join-token-file` (waited for while it does
 * not exist yet: the judicator whose file it is may be starting), else a UsageError saying how to get one.
 */
async function joinToken(context: IdentityContext, role = 'judicator'): Promise<string> {
  const given = context.flags['join-token'];
  if (typeof given === 'string' && given.trim()) return given.trim();
  const fileFlag = context.flags['join-token-file'];
  if (typeof fileFlag === 'string' && fileFlag) {
    const file = path.resolve(fileFlag);
    let lastLog = 0;
    while (!context.signal.aborted) {
      try {
        const stat = fs.statSync(file);
        if (stat.mode & 0o077) context.logger.warn({ file, mode: (stat.mode & 0o777).toString(8) }, `${file} can be read by other users: a join token is a secret (chmod 600 it)`);
        const token = fs.readFileSync(file, 'utf8').trim();
        if (token) return token;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw new UsageError(`--join-token-file ${file}: ${describeError(error)}`);
      }
      if (Date.now() - lastLog > WAIT_LOG_EVERY_MS) {
        lastLog = Date.now();
        context.logger.warn({ file }, `waiting for the join token file ${file} (a judicator writes it when it starts)`);
      }
      await sleep(JOIN_RETRY_FIRST_MS, context.signal);
    }
    throw new UnavailableError('stopped while waiting for the join token file');
  }
  throw new UsageError(
    `this ${role} has not joined a cluster yet: give it a join token (KV2_JOIN_TOKEN, or --join-token-file <file>; ` +
      `make one on a judicator with kv2 join-token create --role ${role}, or use the judicator's own data/pki/join-token) and --join <judicator host>[:4000]`,
  );
}

/**
 * Joins through the first judicator of `addresses` that answers, trying them all again with a growing
 * pause while none does (a judicator starting at the same time). A refusal or a judicator of another
 * cluster stops it (a ConfigError: a restart would not change the answer).
 */
async function joinWithRetry(
  options: { addresses: readonly string[]; token: string; role: Role; name: string; dir: string; hosts?: readonly string[] },
  context: IdentityContext,
): Promise<Awaited<ReturnType<typeof join>>> {
  let pause = JOIN_RETRY_FIRST_MS;
  let lastLog = 0;
  for (;;) {
    const failures: string[] = [];
    for (const text of options.addresses) {
      const { host, port } = parseJudicatorAddress(text);
      const address = formatAddress(host, port);
      try {
        return await join({ address, token: options.token, role: options.role, name: options.name, dir: options.dir, hosts: options.hosts });
      } catch (error) {
        if (error instanceof JoinRefusedError && error.status < 500) throw new ConfigError(`could not join the cluster through ${address}: ${error.message}`);
        if (error instanceof TrustError) throw new ConfigError(`could not join the cluster through ${address}: ${error.message}`);
        if (error instanceof InvalidInputError) throw new ConfigError(`the join token cannot be used: ${error.message}`);
        failures.push(`${address}: ${describeError(error)}`);
      }
    }
    if (Date.now() - lastLog > WAIT_LOG_EVERY_MS) {
      lastLog = Date.now();
      context.logger.warn({ failures }, `no judicator to join answers yet (${failures.join('; ')}); trying again`);
    }
    await sleep(pause, context.signal);
    if (context.signal.aborted) throw new UnavailableError('stopped while waiting for a judicator to join');
    pause = Math.min(pause * 2, JOIN_RETRY_MAX_MS);
  }
}
