// What a judicator does for the cluster's identity while it runs: keeps the revocation list current (and
// etcd's CRL with it, re-signed daily too), renews its own certificate from the CA key it holds, records
// its certificate for revocation, keeps a join token valid in data/pki/join-token for the nodes started on
// this machine (printing it once, on the start that founded the cluster), keeps a join token made outside
// the cluster valid for executors and gateways (--accept-join-token-file: swarm's and compose's), and
// makes tokens and revokes nodes for operators (the `join_token_create` and `revoke` RPC methods).
import fs from 'node:fs';
import { describeError, InvalidInputError } from '../common/errors';
import type { Logger } from '../common/logging';
import { sleep } from '../common/processes';
import { LEAF_LIFETIME_MS, type CertificateAuthority } from '../pki/certificate-authority';
import type { CertIdentity, Role } from '../pki/identity';
import { identityPaths, writeCrl, writeFileAtomically } from '../pki/identity-files';
import { hashSecret, parseJoinToken } from '../pki/join-token';
import { identityReloadInterval, type LiveIdentity } from '../pki/live-identity';
import { createJoinToken, revokeNode, type PkiStore } from '../pki/pki-store';
import { CertificateRenewer, renewalCheckInterval, renewWithCa } from '../pki/renewal';
import { RevocationFeed } from '../pki/revocation-feed';

/** How often etcd's CRL is signed again even when nothing changed, ms (it says it is good for 7 days). */
export const CRL_RESIGN_MS = 24 * 60 * 60 * 1000;
/** How often the local join token file is checked, ms. */
export const LOCAL_TOKEN_CHECK_MS = 60 * 60 * 1000;
/** Life of the local join token, ms; it is replaced once a third of that is left. */
export const LOCAL_TOKEN_TTL_MS = 24 * 60 * 60 * 1000;
/** Pause before trying a failed identity duty again, ms. */
const DUTY_RETRY_MS = 5_000;
/** The roles the local join token lets a node join as: everything a machine may run but an operator's CLI. */
export const LOCAL_TOKEN_ROLES: readonly Role[] = ['judicator', 'executor', 'gateway'];
/** The roles an accepted token (--accept-join-token-file) lets a node join as: the judicators have the CA already. */
export const ACCEPTED_TOKEN_ROLES: readonly Role[] = ['executor', 'gateway'];

export interface IdentityDutiesOptions {
  identity: LiveIdentity;
  ca: CertificateAuthority;
  store: PkiStore;
  /** Host names this judicator's certificate keeps (renewals). */
  hosts: readonly string[];
  /** Life of the certificates this judicator issues, ms. */
  lifetimeMs: number;
  /** The local join token file. */
  tokenFile: string;
  /** A join token made outside the cluster, kept accepted while this judicator runs (null: none). */
  acceptTokenFile: string | null;
  logger: Logger;
  /** Where the first join token is printed (the terminal of `kv2 judicator`). */
  print?: (text: string) => void;
}

export class IdentityDuties {
  readonly feed: RevocationFeed;
  private readonly renewer: CertificateRenewer;

  constructor(private readonly options: IdentityDutiesOptions) {
    this.feed = new RevocationFeed(options.store, options.logger);
    // A certificate this judicator's etcd module issued again (or a renewal) is recorded too.
    options.identity.onChange(() => {
      this.recordOwnCertificate().catch((error) => options.logger.warn({ err: describeError(error) }, "could not record this judicator's new certificate"));
    });
    // etcd reads the CRL file at every handshake: a revocation reaches it the moment the file is rewritten.
    this.feed.onChange((list) => this.writeCrl(list.crlEntries()));
    this.renewer = new CertificateRenewer({
      identity: options.identity,
      renew: renewWithCa(options.ca, { hosts: () => options.hosts, lifetimeMs: options.lifetimeMs, store: options.store }),
      logger: options.logger,
      checkEveryMs: renewalCheckInterval(options.identity.identity),
    });
  }

  private async writeCrl(entries: { serial: string; revokedAt: Date }[]): Promise<void> {
    writeCrl(this.options.identity.dir, await this.options.ca.signCrl(entries));
  }

  /** Runs every duty until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    await Promise.all([
      this.feed.run(signal),
      this.renewer.run(signal),
      this.options.identity.watch(signal, identityReloadInterval(this.options.identity.identity)),
      this.repeat('sign the CRL', CRL_RESIGN_MS, signal, async () => this.writeCrl((await this.feed.refresh()).crlEntries())),
      this.repeat('record this judicator\'s certificate', Infinity, signal, () => this.recordOwnCertificate()),
      this.repeat('keep the local join token', LOCAL_TOKEN_CHECK_MS, signal, () => this.keepLocalToken()),
      ...(this.options.acceptTokenFile ? [this.repeat('accept the join token file', LOCAL_TOKEN_CHECK_MS, signal, () => this.acceptToken(this.options.acceptTokenFile!))] : []),
    ]);
  }

  /** Runs `duty` now and every `everyMs` (once when Infinity); a failure is logged and tried again soon. */
  private async repeat(what: string, everyMs: number, signal: AbortSignal, duty: () => Promise<void>): Promise<void> {
    while (!signal.aborted) {
      try {
        await duty();
        if (everyMs === Infinity) return;
        await sleep(everyMs, signal);
      } catch (error) {
        this.options.logger.warn({ err: describeError(error), retryInMs: DUTY_RETRY_MS }, `could not ${what}; trying again`);
        await sleep(DUTY_RETRY_MS, signal);
      }
    }
  }

  /**
   * This judicator's certificate among the issued ones (one made at its start, from its own CA key, was
   * recorded nowhere yet): so that revoking it lists it in the CRL too.
   */
  private async recordOwnCertificate(): Promise<void> {
    const { identity } = this.options.identity;
    await this.options.store.recordIssued({
      serial: identity.serial,
      name: identity.name,
      role: identity.role,
      notBefore: identity.notBefore.toISOString(),
      notAfter: identity.notAfter.toISOString(),
      via: 'local',
    });
  }

  /**
   * The join token in the local file, made again when it is missing, unknown to the cluster, or has less
   * than a third of its life left. Printed once, on the start that made a new CA (the announce file).
   */
  async keepLocalToken(): Promise<void> {
    const { store, tokenFile, logger } = this.options;
    let token: string | undefined;
    try {
      token = fs.readFileSync(tokenFile, 'utf8').trim();
    } catch {
      token = undefined;
    }
    let valid = false;
    if (token) {
      try {
        const record = await store.token(parseJoinToken(token).id);
        valid = record !== undefined && Date.parse(record.expiresAt) - Date.now() > LOCAL_TOKEN_TTL_MS / 3;
      } catch (error) {
        if (!(error instanceof InvalidInputError)) throw error;
      }
    }
    if (!valid) {
      const made = await createJoinToken(store, {
        caFingerprint: this.options.ca.fingerprint,
        roles: LOCAL_TOKEN_ROLES,
        ttlMs: LOCAL_TOKEN_TTL_MS,
        description: `local join token file of judicator ${this.options.identity.identity.name}`,
      });
      token = made.token;
      writeFileAtomically(tokenFile, `${token}\n`, 0o600);
      logger.info({ file: tokenFile, id: made.record.id, expiresAt: made.record.expiresAt }, `wrote a new local join token (valid until ${made.record.expiresAt}) to ${tokenFile}`);
    }
    const announce = identityPaths(this.options.identity.dir).announce;
    if (fs.existsSync(announce)) {
      this.options.print?.(announcement(token!, tokenFile));
      fs.rmSync(announce, { force: true });
    }
  }

  /**
   * Makes the cluster accept the token in `file` (made with this cluster's CA, outside it) from executors
   * and gateways: its record is written again whenever less than a third of LOCAL_TOKEN_TTL_MS is left,
   * so it stays good while a judicator holding the file runs, and lapses a day after none does.
   */
  async acceptToken(file: string): Promise<void> {
    const token = parseJoinToken(fs.readFileSync(file, 'utf8'));
    if (token.caFingerprint !== this.options.ca.fingerprint) {
      throw new InvalidInputError(`the join token in ${file} was made for another cluster (CA ${token.caFingerprint}, this one's is ${this.options.ca.fingerprint})`);
    }
    const { store, logger } = this.options;
    const record = await store.token(token.id);
    if (record && record.secretSha256 !== hashSecret(token.secret)) throw new InvalidInputError(`join token id ${token.id} of ${file} is taken by another token of this cluster`);
    if (record && Date.parse(record.expiresAt) - Date.now() > LOCAL_TOKEN_TTL_MS / 3) return;
    if (record) await store.removeToken(token.id);
    const now = new Date();
    const expiresAt = new Date(now.getTime() + LOCAL_TOKEN_TTL_MS).toISOString();
    await store.addToken({ id: token.id, secretSha256: hashSecret(token.secret), roles: [...ACCEPTED_TOKEN_ROLES], createdAt: now.toISOString(), expiresAt, description: `accepted from ${file}` });
    logger.info({ id: token.id, file, expiresAt }, `the cluster accepts join token ${token.id} (from ${file}) for executors and gateways until ${expiresAt}`);
  }

  /** A new join token for an operator (RPC `join_token_create`). */
  async createToken(request: { roles: Role[]; ttlMs: number; description?: string }, by: CertIdentity): Promise<{ token: string; id: string; roles: Role[]; expires_at: string }> {
    const made = await createJoinToken(this.options.store, {
      caFingerprint: this.options.ca.fingerprint,
      roles: request.roles,
      ttlMs: request.ttlMs,
      description: request.description ?? `made by ${by.role} ${by.name}`,
    });
    this.options.logger.info({ id: made.record.id, roles: made.record.roles, expiresAt: made.record.expiresAt, by: `${by.role} ${by.name}` }, `made join token ${made.record.id}`);
    return { token: made.token, id: made.record.id, roles: made.record.roles, expires_at: made.record.expiresAt };
  }

  /** Revokes a node for an operator (RPC `revoke`); applied here at once, elsewhere within the feed's refresh. */
  async revoke(request: { name: string; role?: Role; reason?: string }, by: CertIdentity): Promise<string[]> {
    const reason = request.reason || `revoked by ${by.role} ${by.name}`;
    // A name's entry must outlive every certificate it covers, the default-lived ones too.
    const longestLifetimeMs = Math.max(LEAF_LIFETIME_MS, this.options.lifetimeMs);
    const revoked = await revokeNode(this.options.store, { name: request.name, role: request.role, reason, longestLifetimeMs });
    await this.feed.refresh();
    this.options.logger.warn({ name: request.name, role: request.role ?? 'every role', serials: revoked.map((r) => r.serial), by: `${by.role} ${by.name}` }, `revoked ${request.role ?? 'node'} ${request.name}: ${reason}`);
    return revoked.map((r) => r.serial);
  }
}

function announcement(token: string, file: string): string {
  return [
    '',
    'kv2: this judicator founded a new cluster. Its join token (valid 24 h; other judicators, executors and gateways join with it):',
    '',
    `    ${token}`,
    '',
    `It is kept valid in ${file} (readable by this user only): nodes started on this machine can use --join-token-file ${file}.`,
    'Make more, narrower ones with: kv2 join-token create --role executor,gateway --ttl 24h',
    '',
  ].join('\n');
}
