// Certificates renew themselves before they expire, without a restart: a loop looks every
// RENEWAL_CHECK_MS whether a third of the certificate's life is left, and then makes a NEW key, has it
// signed (by the node's own CA key on a judicator, by any judicator over mutual TLS elsewhere), checks
// the answer, swaps node.pem in one rename and reloads the LiveIdentity, whose listeners swap their
// secure contexts. A failed attempt is logged and tried again after RENEWAL_RETRY_MS, long before the
// old certificate ends. etcd reads its certificate files at every handshake and needs nothing.
import { createPublicKey } from 'node:crypto';
import { describeError } from '../common/errors';
import type { Logger } from '../common/logging';
import { sleep } from '../common/processes';
import type { CertificateAuthority } from './certificate-authority';
import { createKeyAndCsr, readCsr } from './csr';
import { JoinRefusedError } from './errors';
import type { CertIdentity } from './identity';
import { checkNodeCertificate, writeNodePem, type NodeFiles } from './identity-files';
import { requestRenewal } from './join-client';
import type { LiveIdentity } from './live-identity';
import type { PkiStore } from './pki-store';

/** Renew once less than this share of a certificate's life is left (30 days of the default 90). */
export const RENEW_WHEN_REMAINING = 1 / 3;
/** How often the renewer looks at the certificate, ms. */
export const RENEWAL_CHECK_MS = 60 * 60 * 1000;
/** Pause after a failed renewal before the next attempt, ms. */
export const RENEWAL_RETRY_MS = 5 * 60 * 1000;

/**
 * How often a node looks at its certificate (renewal, and other modules reloading the files): every
 * RENEWAL_CHECK_MS, or more often for a certificate so short-lived (a test's) that an hour would miss its
 * renewal window: a twentieth of its life, at least a second.
 */
export function renewalCheckInterval(cert: Pick<CertIdentity, 'notBefore' | 'notAfter'>): number {
  const life = cert.notAfter.getTime() - cert.notBefore.getTime();
  return Math.max(1_000, Math.min(RENEWAL_CHECK_MS, Math.floor(life / 20)));
}

/** Whether `cert` should be renewed at `now`: less than `remaining` of its life is left (or it is over). */
export function needsRenewal(cert: Pick<CertIdentity, 'notBefore' | 'notAfter'>, now: Date, remaining: number = RENEW_WHEN_REMAINING): boolean {
  const start = cert.notBefore.getTime();
  const end = cert.notAfter.getTime();
  return end - now.getTime() < (end - start) * remaining;
}

/** Gets a CSR signed; returns the new certificate (PEM). */
export type RenewFunction = (request: { csrPem: string; publicKeyPem: string; current: NodeFiles }) => Promise<string>;

/**
 * A judicator signs its own renewal with the CA key it holds; `hosts` gives its addresses now. With a
 * store, the new certificate is recorded like any other (so revoking the judicator lists it in the CRL).
 */
export function renewWithCa(
  ca: CertificateAuthority,
  options: { hosts?: () => readonly string[]; lifetimeMs?: number; store?: Pick<PkiStore, 'recordIssued'> } = {},
): RenewFunction {
  return async ({ csrPem, current }) => {
    const publicKey = await readCsr(csrPem);
    const { role, name } = current.identity;
    const issued = await ca.issue({ publicKey, role, name, hosts: options.hosts?.() ?? [], lifetimeMs: options.lifetimeMs });
    const { identity } = issued;
    await options.store?.recordIssued({
      serial: identity.serial,
      name,
      role,
      notBefore: identity.notBefore.toISOString(),
      notAfter: identity.notAfter.toISOString(),
      via: 'local',
    });
    return issued.pem;
  };
}

/**
 * Other nodes ask the judicators, one after another until one signs. A refusal (revoked, say) is final:
 * asking another judicator would get the same answer.
 */
export function renewFromJudicators(addresses: () => Promise<readonly string[]>, options: { hosts?: () => readonly string[]; timeoutMs?: number } = {}): RenewFunction {
  return async ({ csrPem, publicKeyPem, current }) => {
    const failures: string[] = [];
    for (const address of await addresses()) {
      try {
        return await requestRenewal({ address, current, csrPem, publicKeyPem, hosts: options.hosts?.() ?? [], timeoutMs: options.timeoutMs });
      } catch (error) {
        if (error instanceof JoinRefusedError && error.status < 500) throw error;
        failures.push(`${address}: ${describeError(error)}`);
      }
    }
    throw new Error(`no judicator renewed the certificate (${failures.join('; ') || 'no judicator known'})`);
  };
}

export interface RenewerOptions {
  identity: LiveIdentity;
  renew: RenewFunction;
  logger: Logger;
  checkEveryMs?: number;
  retryMs?: number;
  remaining?: number;
  now?: () => Date;
}

export class CertificateRenewer {
  constructor(private readonly options: RenewerOptions) {}

  /** Renews now, whatever the certificate's age; returns the new identity. Throws when that fails. */
  async renewNow(): Promise<CertIdentity> {
    const { identity } = this.options;
    const current = identity.current;
    const { keyPem, csrPem } = await createKeyAndCsr(current.identity.name);
    const publicKeyPem = createPublicKey(keyPem).export({ type: 'spki', format: 'pem' }) as string;
    const certPem = await this.options.renew({ csrPem, publicKeyPem, current });
    // Checked before it replaces a certificate that still works.
    const renewed = checkNodeCertificate({ certPem, caPem: current.caPem, publicKey: publicKeyPem, expected: current.identity });
    writeNodePem(identity.dir, keyPem, certPem);
    identity.reload();
    return renewed;
  }

  /** Renews if the certificate needs it; true when it did. */
  async checkOnce(): Promise<boolean> {
    const now = this.options.now?.() ?? new Date();
    const current = this.options.identity.identity;
    if (!needsRenewal(current, now, this.options.remaining)) return false;
    this.options.logger.info({ serial: current.serial, notAfter: current.notAfter.toISOString() }, 'certificate due for renewal; renewing');
    const renewed = await this.renewNow();
    this.options.logger.info({ previousSerial: current.serial, serial: renewed.serial, notAfter: renewed.notAfter.toISOString() }, 'certificate renewed');
    return true;
  }

  /** Checks every checkEveryMs (retryMs after a failure) until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      let pause = this.options.checkEveryMs ?? RENEWAL_CHECK_MS;
      try {
        await this.checkOnce();
      } catch (error) {
        pause = Math.min(pause, this.options.retryMs ?? RENEWAL_RETRY_MS);
        const { notAfter } = this.options.identity.identity;
        this.options.logger.error({ err: describeError(error), notAfter: notAfter.toISOString(), retryInMs: pause }, 'certificate renewal failed; the current certificate stays in use until it expires');
      }
      await sleep(pause, signal);
    }
  }
}
