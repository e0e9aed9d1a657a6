// The X.509 library (@peculiar/x509), loaded the one way that works everywhere kv2 runs: its tsyringe
// dependency throws at import time unless a Reflect metadata polyfill is already installed, so the
// polyfill is imported first (ES module imports run in order, in tsx and in the esbuild bundle alike),
// and every signature goes through Node's own webcrypto. Every file of src/pki imports X.509 from here.
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

export { x509 };

/** The only key and signature algorithm kv2 makes: ECDSA on P-256 with SHA-256 (fast, and etcd and Node both take it). */
export const KEY_ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256' } as const;
export const SIGNING_ALGORITHM = { name: 'ECDSA', hash: 'SHA-256' } as const;

export const subtle = webcrypto.subtle;

/** A certificate from PEM text, DER bytes (a Node Buffer is copied: the library wants a plain ArrayBuffer view) or as it is. */
export function parseCertificate(input: string | Buffer | x509.X509Certificate): x509.X509Certificate {
  if (input instanceof x509.X509Certificate) return input;
  return new x509.X509Certificate(typeof input === 'string' ? input : new Uint8Array(input));
}
