// The joining node's side. `join()` takes a token and the address of any judicator and leaves a
// complete identity in a directory. Order matters for safety:
//   1. a first TLS connection that sends nothing: the chain the server presents must contain the CA the
//      token pins (by fingerprint); otherwise the join stops with a TrustError, before any secret left;
//   2. a second TLS connection that trusts ONLY that CA and requires a judicator's certificate; the
//      token, the role, the name and a CSR (never the private key) travel on it;
//   3. the answer is checked (issued by that CA, for our key, role and name) and written, node.pem last.
// `requestRenewal()` is the same second step for a member, authenticated by its current certificate.
import { X509Certificate as NodeX509, createPublicKey } from 'node:crypto';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import { describeError, InvalidInputError, UnavailableError } from '../common/errors';
import { CertificateAuthority } from './certificate-authority';
import { createKeyAndCsr } from './csr';
import { JoinRefusedError, TrustError } from './errors';
import { caFingerprint } from './fingerprint';
import { checkNodeName, checkRole, readIdentity, type CertIdentity, type Role } from './identity';
import { checkNodeCertificate, prepareIdentityDir, writeCaCertificate, writeCaKey, writeNodePem, type NodeFiles } from './identity-files';
import { JOIN_PATH, PKI_PROTOCOL_VERSION, RENEW_PATH, type IssueResponse } from './join-server';
import { parseJoinToken } from './join-token';
import { MIN_TLS_VERSION } from './live-identity';
import { judicatorServerCheck } from './peer-identity';

/** Longest one join or renewal step (connect, handshake, answer) may take, ms. */
export const JOIN_TIMEOUT_MS = 15_000;
/** Largest answer read from a judicator, bytes. */
const MAX_ANSWER_BYTES = 256 * 1024;

export interface JoinOptions {
  /** Any judicator's RPC address: `host:port` or `https://host:port`. */
  address: string;
  token: string;
  role: Role;
  name: string;
  /** Where the identity goes (made 0700). */
  dir: string;
  /** Addresses and DNS names this node serves on (judicators only: etcd and the RPC). */
  hosts?: readonly string[];
  timeoutMs?: number;
}

export interface JoinResult {
  identity: CertIdentity;
  caFingerprint: string;
  /** True when the CA key came too (a judicator's join) and was written to ca.key. */
  receivedCaKey: boolean;
}

/** `host:port`, `https://host:port` or `[v6]:port`; anything else (http://, no port) is refused with the reason. */
export function parseAddress(address: string): { host: string; port: number } {
  const text = address.trim();
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(text) && !/^https:\/\//i.test(text)) {
    throw new InvalidInputError(`judicator address ${address}: joining goes over TLS, give host:port or https://host:port`);
  }
  let url: URL;
  try {
    url = new URL(/^https:\/\//i.test(text) ? text : `https://${text}`);
  } catch {
    throw new InvalidInputError(`judicator address ${JSON.stringify(address)} is not host:port`);
  }
  if (!url.port) throw new InvalidInputError(`judicator address ${address} has no port (the judicator's RPC port, e.g. 4000)`);
  return { host: url.hostname.replace(/^\[(.*)\]$/, '$1'), port: Number(url.port) };
}

/** SNI only for DNS names: RFC 6066 forbids IP addresses there (and Node warns). */
function serverName(host: string): string | undefined {
  return net.isIP(host) ? undefined : host;
}

/**
 * The CA certificate (PEM) the server at `address` presents in its chain, if its fingerprint is
 * `fingerprint`. Nothing is sent but the TLS handshake; the server is not trusted yet.
 */
export async function fetchPinnedCa(address: string, fingerprint: string, timeoutMs: number = JOIN_TIMEOUT_MS): Promise<string> {
  const { host, port } = parseAddress(address);
  const chain = await new Promise<tls.DetailedPeerCertificate[]>((resolve, reject) => {
    const socket = tls.connect({ host, port, servername: serverName(host), rejectUnauthorized: false, minVersion: MIN_TLS_VERSION, timeout: timeoutMs });
    socket.once('secureConnect', () => {
      const certs: tls.DetailedPeerCertificate[] = [];
      const seen = new Set<string>();
      for (let cert = socket.getPeerCertificate(true); cert?.raw && !seen.has(cert.fingerprint256); cert = cert.issuerCertificate) {
        seen.add(cert.fingerprint256);
        certs.push(cert);
      }
      // end(), not destroy(): the handshake's last message still reaches the server, which closes cleanly.
      socket.end();
      resolve(certs);
    });
    socket.once('timeout', () => {
      socket.destroy();
      reject(new UnavailableError(`no TLS answer from ${address} within ${timeoutMs} ms`));
    });
    socket.once('error', (error) => reject(new UnavailableError(`cannot reach the judicator at ${address}: ${describeError(error)}`)));
  });
  const presented: string[] = [];
  for (const cert of chain) {
    const print = caFingerprint(cert.raw);
    presented.push(print);
    if (print === fingerprint) {
      const ca = new NodeX509(cert.raw);
      if (!ca.ca) throw new TrustError(`the certificate of ${address} matching the token's fingerprint is not a CA certificate`);
      return ca.toString();
    }
  }
  throw new TrustError(
    `the server at ${address} is not part of the cluster this token belongs to: the token pins CA ${fingerprint}, the server presents ${presented.join(', ') || 'no certificate'}; nothing was sent to it`,
  );
}

/** POSTs JSON to a judicator that must chain to `caPem` and carry the judicator role; the answer's status and JSON. */
function postToJudicator(
  address: string,
  path: string,
  body: object,
  tlsOptions: { ca: string; key?: string; cert?: string },
  timeoutMs: number,
): Promise<{ status: number; json: unknown }> {
  const { host, port } = parseAddress(address);
  const text = JSON.stringify(body);
  // Set when the server's certificate chained to the CA but was not a judicator's.
  let notJudicator: Error | undefined;
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host,
        port,
        path,
        method: 'POST',
        servername: serverName(host),
        ...tlsOptions,
        minVersion: MIN_TLS_VERSION,
        rejectUnauthorized: true,
        checkServerIdentity: (hostname, cert) => (notJudicator = judicatorServerCheck(hostname, cert)),
        agent: false,
        timeout: timeoutMs,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_ANSWER_BYTES) req.destroy(new Error(`the answer is larger than ${MAX_ANSWER_BYTES} bytes`));
          else chunks.push(chunk);
        });
        res.on('end', () => {
          let json: unknown;
          try {
            json = JSON.parse(Buffer.concat(chunks).toString('utf8'));
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, json });
        });
        res.on('error', reject);
      },
    );
    req.once('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.once('error', (error) => {
      const message = describeError(error);
      // A failed chain check (an OpenSSL verify code) or role check happens in the handshake, before the body is sent.
      const code = String((error as NodeJS.ErrnoException).code ?? '');
      if (notJudicator || /CERT|SIGNATURE|ISSUER|SELF_SIGNED|PURPOSE|INVALID_CA|PATH_LENGTH|HOSTNAME/.test(code)) {
        reject(new TrustError(`${address} is not a judicator of this cluster: ${message}; nothing was sent to it`));
      } else {
        reject(new UnavailableError(`cannot reach the judicator at ${address}: ${message}`));
      }
    });
    req.end(text);
  });
}

/** The certificate of a judicator's 200 answer after checking it is the CA's, for `publicKeyPem`, role and name. */
function checkIssued(answer: { status: number; json: unknown }, caPem: string, publicKeyPem: string, role: Role, name: string): { certificate: string; caKey?: string } {
  const json = answer.json as Partial<IssueResponse> & { error?: unknown } | undefined;
  if (answer.status !== 200) {
    const reason = typeof json?.error === 'string' ? json.error : `HTTP ${answer.status} without a reason`;
    throw new JoinRefusedError(`the judicator refused: ${reason}`, answer.status);
  }
  if (!json || json.version !== PKI_PROTOCOL_VERSION || typeof json.certificate !== 'string' || typeof json.ca !== 'string') {
    throw new TrustError('the judicator answered something that is not a certificate');
  }
  if (caFingerprint(json.ca) !== caFingerprint(caPem)) throw new TrustError('the judicator answered with another CA than the one pinned');
  try {
    checkNodeCertificate({ certPem: json.certificate, caPem, publicKey: publicKeyPem, expected: { role, name } });
  } catch (error) {
    throw new TrustError(`the judicator's answer cannot be used: ${describeError(error)}`);
  }
  return { certificate: json.certificate, caKey: typeof json.caKey === 'string' ? json.caKey : undefined };
}

/** Joins the cluster the token belongs to and writes this node's identity to `options.dir`. */
export async function join(options: JoinOptions): Promise<JoinResult> {
  const token = parseJoinToken(options.token);
  const role = checkRole(options.role);
  const name = checkNodeName(options.name);
  const timeoutMs = options.timeoutMs ?? JOIN_TIMEOUT_MS;
  const caPem = await fetchPinnedCa(options.address, token.caFingerprint, timeoutMs);
  const { keyPem, csrPem } = await createKeyAndCsr(name);
  const answer = await postToJudicator(
    options.address,
    JOIN_PATH,
    { version: PKI_PROTOCOL_VERSION, token: options.token.trim(), role, name, hosts: [...(options.hosts ?? [])], csr: csrPem },
    { ca: caPem },
    timeoutMs,
  );
  const issued = checkIssued(answer, caPem, createPublicKey(keyPem).export({ type: 'spki', format: 'pem' }) as string, role, name);
  if (issued.caKey !== undefined) await CertificateAuthority.load(caPem, issued.caKey); // refuses a key that is not the CA's
  prepareIdentityDir(options.dir);
  writeCaCertificate(options.dir, caPem);
  if (issued.caKey !== undefined) writeCaKey(options.dir, issued.caKey);
  // Last: an identity counts as present only when node.pem is (identity-files.ts readNodeFiles).
  writeNodePem(options.dir, keyPem, issued.certificate);
  return { identity: readIdentity(issued.certificate), caFingerprint: token.caFingerprint, receivedCaKey: issued.caKey !== undefined };
}

/**
 * Asks the judicator at `address` to renew `current` for the key of `csrPem` (mutual TLS with the current
 * certificate); returns the new certificate, checked. Used by CertificateRenewer on non-judicators.
 */
export async function requestRenewal(options: {
  address: string;
  current: NodeFiles;
  csrPem: string;
  publicKeyPem: string;
  hosts?: readonly string[];
  timeoutMs?: number;
}): Promise<string> {
  const { current } = options;
  const answer = await postToJudicator(
    options.address,
    RENEW_PATH,
    { version: PKI_PROTOCOL_VERSION, hosts: [...(options.hosts ?? [])], csr: options.csrPem },
    { ca: current.caPem, key: current.keyPem, cert: current.certPem },
    options.timeoutMs ?? JOIN_TIMEOUT_MS,
  );
  return checkIssued(answer, current.caPem, options.publicKeyPem, current.identity.role, current.identity.name).certificate;
}
