// The cluster CA's fingerprint, the value a join token pins: `sha256:<hex>` of the CA certificate's
// SubjectPublicKeyInfo (DER), exactly kubeadm's `--discovery-token-ca-cert-hash`. Hashing the public key
// rather than the whole certificate keeps every token and pin valid when the CA certificate is re-signed
// with the same key. An operator reproduces it with
//   openssl x509 -in ca.crt -pubkey -noout | openssl pkey -pubin -outform der | sha256sum
import { createHash, X509Certificate } from 'node:crypto';
import { InvalidInputError } from '../common/errors';

export const FINGERPRINT_PREFIX = 'sha256:';
const FINGERPRINT_PATTERN = /^(?:sha256:)?([0-9a-f]{64})$/;

/** The fingerprint of a CA certificate given as PEM text or DER bytes. */
export function caFingerprint(certificate: string | Buffer): string {
  const spki = new X509Certificate(certificate).publicKey.export({ type: 'spki', format: 'der' });
  return `${FINGERPRINT_PREFIX}${createHash('sha256').update(spki).digest('hex')}`;
}

/** `sha256:<64 hex>` or the bare hex, any case, in its one spelling; anything else is refused with a reason. */
export function parseFingerprint(text: string): string {
  const match = FINGERPRINT_PATTERN.exec(text.trim().toLowerCase());
  if (!match) throw new InvalidInputError(`bad CA fingerprint ${JSON.stringify(text)}: expected sha256: and 64 hex digits`);
  return `${FINGERPRINT_PREFIX}${match[1]}`;
}
