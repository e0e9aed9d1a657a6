// The cluster CA: made once by the first judicator, then held by every judicator. It signs each node's
// certificate with the node's role and name in it (identity.ts), and the CRL etcd reads (revocation.ts).
// Policy lives here: only judicators get serverAuth and host names (they alone serve TLS to the cluster:
// RPC, etcd client and peer ports), so no other role's certificate can stand in for a server.
import { createPrivateKey, createPublicKey, randomBytes, X509Certificate as NodeX509 } from 'node:crypto';
import { InvalidInputError } from '../common/errors';
import { generateKeyPair, importSigningKey, SIGNING_ALGORITHM } from './csr';
import { LOOPBACK_HOSTS, splitHosts } from './hosts';
import { caFingerprint } from './fingerprint';
import { identityUris, readIdentity, type CertIdentity, type Role } from './identity';
import type { x509 } from './x509';

/** The X.509 library, loaded on first use only (x509.ts says why). */
const loadX509 = async () => (await import('./x509')).x509;

const DAY_MS = 24 * 60 * 60 * 1000;
/** Default life of the CA: long, because replacing it means every node joins again. */
export const CA_LIFETIME_MS = 10 * 365 * DAY_MS;
/** Default life of a node certificate; renewal (renewal.ts) replaces it well before the end. */
export const LEAF_LIFETIME_MS = 90 * DAY_MS;
/** A new certificate starts this long in the past, so a node whose clock is a little behind accepts it. */
export const ISSUE_BACKDATE_MS = 60_000;
/** How long a CRL says it is good for: etcd and Node read the file again long before. */
export const CRL_VALIDITY_MS = 7 * DAY_MS;

export interface IssueOptions {
  /** The node's public key: from a verified CSR (csr.ts readCsr) or a key made here. */
  publicKey: x509.PublicKey | CryptoKey;
  role: Role;
  name: string;
  /** IP addresses and DNS names the node serves on (judicators only; LOOPBACK_HOSTS are always added). */
  hosts?: readonly string[];
  lifetimeMs?: number;
  now?: Date;
}

export interface IssuedCertificate {
  pem: string;
  identity: CertIdentity;
}

/** A random positive 128-bit serial, its first byte non-zero so every tool prints it the same way. */
function newSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0]! & 0x7f) | 0x10;
  return bytes.toString('hex');
}

export class CertificateAuthority {
  private constructor(
    readonly certPem: string,
    readonly keyPem: string,
    private readonly cert: x509.X509Certificate,
    private readonly key: CryptoKey,
    /** `sha256:<hex>`, what join tokens pin (fingerprint.ts). */
    readonly fingerprint: string,
  ) {}

  /** A new CA, in memory (identity-files.ts writes it). */
  static async create(options: { now?: Date; lifetimeMs?: number } = {}): Promise<CertificateAuthority> {
    const now = options.now ?? new Date();
    const [pair, x509] = await Promise.all([generateKeyPair(), loadX509()]);
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: newSerial(),
      // A random tag in the name tells one cluster's CA from another's in any tool's output.
      name: [{ CN: [`kv2 cluster CA ${randomBytes(4).toString('hex')}`] }, { O: ['kv2'] }],
      notBefore: new Date(now.getTime() - ISSUE_BACKDATE_MS),
      notAfter: new Date(now.getTime() + (options.lifetimeMs ?? CA_LIFETIME_MS)),
      keys: pair.keys,
      signingAlgorithm: SIGNING_ALGORITHM,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(pair.keys.publicKey),
      ],
    });
    return CertificateAuthority.load(cert.toString('pem'), pair.keyPem);
  }

  /** A CA from its files' text; refuses a certificate that is not a CA or a key that is not its own. */
  static async load(certPem: string, keyPem: string): Promise<CertificateAuthority> {
    let nodeCert: NodeX509;
    try {
      nodeCert = new NodeX509(certPem);
    } catch (error) {
      throw new InvalidInputError(`the CA certificate does not parse: ${error instanceof Error ? error.message : String(error)}`);
    }
    if (!nodeCert.ca) throw new InvalidInputError(`${nodeCert.subject} is not a CA certificate`);
    let matches = false;
    try {
      const fromKey = createPublicKey(createPrivateKey(keyPem)).export({ type: 'spki', format: 'der' });
      matches = fromKey.equals(nodeCert.publicKey.export({ type: 'spki', format: 'der' }));
    } catch (error) {
      throw new InvalidInputError(`the CA key does not parse: ${error instanceof Error ? error.message : String(error)}`);
    }
    if (!matches) throw new InvalidInputError('the CA key is not the key of the CA certificate');
    const [key, x509] = await Promise.all([importSigningKey(keyPem), loadX509()]);
    return new CertificateAuthority(certPem, keyPem, new x509.X509Certificate(certPem), key, caFingerprint(certPem));
  }

  get notAfter(): Date {
    return this.cert.notAfter;
  }

  /** Signs a node certificate carrying `role` and `name` (and, for a judicator, its host names). */
  async issue(options: IssueOptions): Promise<IssuedCertificate> {
    const now = options.now ?? new Date();
    const x509 = await loadX509();
    const serves = options.role === 'judicator';
    if (!serves && (options.hosts ?? []).length > 0) {
      throw new InvalidInputError(`${options.role} certificates carry no host names: only judicators serve TLS to the cluster`);
    }
    const hosts = splitHosts(serves ? [...LOOPBACK_HOSTS, ...(options.hosts ?? [])] : []);
    const lifetimeMs = options.lifetimeMs ?? LEAF_LIFETIME_MS;
    if (!(lifetimeMs > 0)) throw new InvalidInputError('a certificate lifetime must be positive');
    // Never past the CA's own end: a chain with an expired CA fails anyway, and later than a clear message.
    const notAfter = new Date(Math.min(now.getTime() + lifetimeMs, this.cert.notAfter.getTime()));
    const names: x509.JsonGeneralNames = [
      ...identityUris(options.role, options.name).map((value) => ({ type: 'url' as const, value })),
      ...hosts.dns.map((value) => ({ type: 'dns' as const, value })),
      ...hosts.ips.map((value) => ({ type: 'ip' as const, value })),
    ];
    const usages = serves ? [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth] : [x509.ExtendedKeyUsage.clientAuth];
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: newSerial(),
      subject: [{ CN: [options.role] }, { O: ['kv2'] }],
      issuer: this.cert.subjectName,
      notBefore: new Date(now.getTime() - ISSUE_BACKDATE_MS),
      notAfter,
      publicKey: options.publicKey,
      signingKey: this.key,
      signingAlgorithm: SIGNING_ALGORITHM,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension(usages),
        new x509.SubjectAlternativeNameExtension(names),
        await x509.AuthorityKeyIdentifierExtension.create(this.cert.publicKey),
        await x509.SubjectKeyIdentifierExtension.create(options.publicKey),
      ],
    });
    const pem = cert.toString('pem');
    return { pem, identity: readIdentity(pem) };
  }

  /**
   * A CRL of these serials, signed by this CA: what etcd reads from `--client-crl-file` and
   * `--peer-crl-file`, and Node's tls from its `crl` option.
   */
  async signCrl(entries: readonly { serial: string; revokedAt: Date }[], options: { now?: Date; validForMs?: number } = {}): Promise<string> {
    const now = options.now ?? new Date();
    const x509 = await loadX509();
    const crl = await x509.X509CrlGenerator.create({
      issuer: this.cert.subjectName,
      thisUpdate: new Date(now.getTime() - ISSUE_BACKDATE_MS),
      nextUpdate: new Date(now.getTime() + (options.validForMs ?? CRL_VALIDITY_MS)),
      entries: entries.map((e) => ({ serialNumber: e.serial.length % 2 ? `0${e.serial}` : e.serial, revocationDate: e.revokedAt })),
      signingKey: this.key,
      signingAlgorithm: SIGNING_ALGORITHM,
      extensions: [await x509.AuthorityKeyIdentifierExtension.create(this.cert.publicKey)],
    });
    // The library labels it "CRL"; OpenSSL, Node and Go (etcd) read only "X509 CRL".
    return x509.PemConverter.encode(crl.rawData, 'X509 CRL');
  }
}
