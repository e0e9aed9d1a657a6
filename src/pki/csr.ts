// Keys and certificate signing requests. A node makes its own key pair and sends only a CSR (its public
// key, signed with the private key to prove it holds it); the private key never leaves the node. The
// signing side reads a CSR here and takes nothing from it but the verified public key: role, name and
// host names come from what the token or the current certificate allows, never from the request.
import { createPrivateKey, KeyObject, webcrypto } from 'node:crypto';
import { InvalidInputError } from '../common/errors';
import type { x509 } from './x509';

/** The only key and signature algorithm kv2 makes: ECDSA on P-256 with SHA-256 (fast, and etcd and Node both take it). */
export const KEY_ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256' } as const;
export const SIGNING_ALGORITHM = { name: 'ECDSA', hash: 'SHA-256' } as const;

const { subtle } = webcrypto;
/** The X.509 library, loaded on first use only (x509.ts says why). */
const loadX509 = async () => (await import('./x509')).x509;

/** A CSR larger than this is not one kv2 made (ours are about 400 bytes). */
export const MAX_CSR_BYTES = 16 * 1024;

export interface KeyPair {
  keys: CryptoKeyPair;
  /** PKCS#8 PEM ("PRIVATE KEY"): what Node's tls and etcd both read. */
  keyPem: string;
}

export async function generateKeyPair(): Promise<KeyPair> {
  const keys = (await subtle.generateKey(KEY_ALGORITHM, true, ['sign', 'verify'])) as CryptoKeyPair;
  const keyPem = KeyObject.from(keys.privateKey).export({ type: 'pkcs8', format: 'pem' }) as string;
  return { keys, keyPem };
}

/** The private key of a PKCS#8 PEM, for signing (a CA key, a node key). */
export async function importSigningKey(keyPem: string): Promise<CryptoKey> {
  try {
    const der = createPrivateKey(keyPem).export({ type: 'pkcs8', format: 'der' });
    return await subtle.importKey('pkcs8', der, KEY_ALGORITHM, false, ['sign']);
  } catch (error) {
    throw new InvalidInputError(`not an ECDSA P-256 private key in PKCS#8 PEM: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/** A new key pair and a CSR for it. The CSR's subject is informative only (the signer ignores it). */
export async function createKeyAndCsr(subjectName: string): Promise<KeyPair & { csrPem: string }> {
  const [pair, x509] = await Promise.all([generateKeyPair(), loadX509()]);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: [{ CN: [subjectName] }],
    keys: pair.keys,
    signingAlgorithm: SIGNING_ALGORITHM,
  });
  return { ...pair, csrPem: csr.toString('pem') };
}

/**
 * The public key of a CSR, after checking that the CSR is one PEM block, parses, uses kv2's key
 * algorithm, and is signed by the key it carries. Every failure is an InvalidInputError with the reason.
 */
export async function readCsr(pem: unknown): Promise<x509.PublicKey> {
  if (typeof pem !== 'string' || pem.length === 0) throw new InvalidInputError('no CSR given (expected PEM text)');
  if (Buffer.byteLength(pem) > MAX_CSR_BYTES) throw new InvalidInputError(`the CSR is larger than ${MAX_CSR_BYTES} bytes`);
  const x509 = await loadX509();
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(pem);
  } catch (error) {
    throw new InvalidInputError(`the CSR does not parse: ${error instanceof Error ? error.message : String(error)}`);
  }
  const algorithm = csr.publicKey.algorithm as EcKeyAlgorithm;
  if (algorithm.name !== KEY_ALGORITHM.name || algorithm.namedCurve !== KEY_ALGORITHM.namedCurve) {
    throw new InvalidInputError(`the CSR's key is ${algorithm.name} ${algorithm.namedCurve ?? ''}; kv2 signs ECDSA P-256 keys only`.replace(' ;', ';'));
  }
  let signed = false;
  try {
    signed = await csr.verify();
  } catch {
    signed = false;
  }
  if (!signed) throw new InvalidInputError('the CSR is not signed by the key it carries (proof of possession failed)');
  return csr.publicKey;
}
