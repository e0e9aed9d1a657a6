// A node's identity on disk, in one directory (0700): `ca.crt` (every node), `ca.key` (judicators only,
// 0600) and `node.pem` (0600): the node's private key followed by its certificate, in ONE file so that a
// renewal swaps both with one rename (kubelet's `kubelet-client-current.pem` does the same). etcd takes
// the same file for `--cert-file` and `--key-file`; Node's tls gets the blocks split here. Judicators
// also keep `crl.pem`, the CRL etcd checks client and peer certificates against, and `join-token` (0600):
// a join token kept valid for the nodes started on the same machine.
import { X509Certificate as NodeX509, createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ConfigError, describeError } from '../common/errors';
import { readIdentity, type CertIdentity, type Role } from './identity';

export const IDENTITY_FILES = {
  caCert: 'ca.crt',
  caKey: 'ca.key',
  node: 'node.pem',
  crl: 'crl.pem',
  joinToken: 'join-token',
  /** Left by the start that made a new CA: the judicator prints its first join token once, then removes it. */
  announce: 'announce-join-token',
} as const;

export function identityPaths(dir: string): { dir: string } & Record<keyof typeof IDENTITY_FILES, string> {
  return {
    dir,
    caCert: path.join(dir, IDENTITY_FILES.caCert),
    caKey: path.join(dir, IDENTITY_FILES.caKey),
    node: path.join(dir, IDENTITY_FILES.node),
    crl: path.join(dir, IDENTITY_FILES.crl),
    joinToken: path.join(dir, IDENTITY_FILES.joinToken),
    announce: path.join(dir, IDENTITY_FILES.announce),
  };
}

/** The node's identity as read from its directory, checked to hang together. */
export interface NodeFiles {
  caPem: string;
  keyPem: string;
  /** The node certificate alone (no chain). */
  certPem: string;
  identity: CertIdentity;
}

/** Creates the directory if needed and makes it 0700: it holds private keys. */
export function prepareIdentityDir(dir: string): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  fs.chmodSync(dir, 0o700);
}

/**
 * Writes a file so that a reader sees the old content or the new, never a part (temp file in the same
 * directory, fsync, rename, fsync of the directory), with `mode` from the first byte on.
 */
export function writeFileAtomically(file: string, text: string, mode: number): void {
  const temp = `${file}.${process.pid}.tmp`;
  const fd = fs.openSync(temp, 'w', mode);
  try {
    fs.fchmodSync(fd, mode);
    fs.writeSync(fd, text);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  try {
    fs.renameSync(temp, file);
  } catch (error) {
    fs.rmSync(temp, { force: true });
    throw error;
  }
  const dirFd = fs.openSync(path.dirname(file), 'r');
  try {
    fs.fsyncSync(dirFd);
  } finally {
    fs.closeSync(dirFd);
  }
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n[A-Za-z0-9+/=\r\n]+?-----END \1-----/g;

/** The PEM blocks of a text, by kind. Text around the blocks is ignored, as OpenSSL and Go do. */
export function splitPem(text: string): { certificates: string[]; privateKeys: string[] } {
  const certificates: string[] = [];
  const privateKeys: string[] = [];
  for (const match of text.matchAll(PEM_BLOCK)) {
    if (match[1] === 'CERTIFICATE') certificates.push(`${match[0]}\n`);
    else if (match[1]!.endsWith('PRIVATE KEY')) privateKeys.push(`${match[0]}\n`);
  }
  return { certificates, privateKeys };
}

export function writeCaCertificate(dir: string, pem: string): void {
  writeFileAtomically(identityPaths(dir).caCert, pem, 0o644);
}

export function writeCaKey(dir: string, pem: string): void {
  writeFileAtomically(identityPaths(dir).caKey, pem, 0o600);
}

/** The CRL (judicators: etcd reads it at every handshake, so a new one takes effect at once). */
export function writeCrl(dir: string, pem: string): void {
  writeFileAtomically(identityPaths(dir).crl, pem, 0o644);
}

export function writeNodePem(dir: string, keyPem: string, certPem: string): void {
  writeFileAtomically(identityPaths(dir).node, `${keyPem.trimEnd()}\n${certPem.trimEnd()}\n`, 0o600);
}

function readText(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new ConfigError(`cannot read ${file}: ${describeError(error)}`);
  }
}

/**
 * The node identity in `dir`, or undefined when it has none yet (no ca.crt or no node.pem). A directory
 * whose files are there but do not hang together (key not the certificate's, certificate not from the
 * CA, no kv2 role) is a ConfigError naming the file: it needs an operator, not a retry.
 */
export function readNodeFiles(dir: string): NodeFiles | undefined {
  const paths = identityPaths(dir);
  const caPem = readText(paths.caCert);
  const nodePem = readText(paths.node);
  if (caPem === undefined || nodePem === undefined) return undefined;
  const { certificates, privateKeys } = splitPem(nodePem);
  if (certificates.length === 0 || privateKeys.length !== 1) {
    throw new ConfigError(`${paths.node} must hold one private key and the node certificate (found ${privateKeys.length} keys, ${certificates.length} certificates)`);
  }
  const keyPem = privateKeys[0]!;
  const certPem = certificates[0]!;
  try {
    const identity = checkNodeCertificate({ certPem, caPem, publicKey: createPublicKey(createPrivateKey(keyPem)) });
    return { caPem, keyPem, certPem, identity };
  } catch (error) {
    throw new ConfigError(`${paths.node} is not a usable kv2 identity: ${describeError(error)}`);
  }
}

/**
 * The identity of `certPem` after checking that `caPem` issued it, that it is for `publicKey`, and (when
 * given) that it carries `expected`'s role and name. Throws an Error saying which check failed.
 */
export function checkNodeCertificate(options: {
  certPem: string;
  caPem: string;
  publicKey: KeyObject | string;
  expected?: { role: Role; name: string };
}): CertIdentity {
  const ca = new NodeX509(options.caPem);
  const cert = new NodeX509(options.certPem);
  if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey)) throw new Error('the certificate was not issued by the cluster CA');
  const key = typeof options.publicKey === 'string' ? createPublicKey(options.publicKey) : options.publicKey;
  if (!key.export({ type: 'spki', format: 'der' }).equals(cert.publicKey.export({ type: 'spki', format: 'der' }))) {
    throw new Error("the certificate is not for this node's key");
  }
  const identity = readIdentity(options.certPem);
  const { expected } = options;
  if (expected && (identity.role !== expected.role || identity.name !== expected.name)) {
    throw new Error(`the certificate is for ${identity.role} ${identity.name}, not ${expected.role} ${expected.name}`);
  }
  return identity;
}
