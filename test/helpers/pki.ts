// Cluster identities for tests: a first judicator's PKI directory with a real node:https server that
// answers joins and renewals (src/pki/join-server.ts) and one route that needs a client certificate,
// as the judicator RPC will; and ready-made node identities issued straight from a CA.
import fs from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { TLSSocket } from 'node:tls';
import { createLogger, type Logger } from '../../src/common/logging';
import type { CertificateAuthority } from '../../src/pki/certificate-authority';
import { createKeyAndCsr, readCsr } from '../../src/pki/csr';
import type { Role } from '../../src/pki/identity';
import { prepareIdentityDir, writeCaCertificate, writeNodePem } from '../../src/pki/identity-files';
import { initClusterIdentity, loadCertificateAuthority } from '../../src/pki/init-identity';
import { JoinServer, pkiRequestHandler } from '../../src/pki/join-server';
import { LiveIdentity } from '../../src/pki/live-identity';
import { MemoryPkiStore } from '../../src/pki/memory-pki-store';
import { peerIdentity, whyNoIdentity } from '../../src/pki/peer-identity';
import type { PkiStore } from '../../src/pki/pki-store';
import { makeTempDir } from './temp';

type Hooks = { after: (fn: () => unknown) => void };

/** The route of the test server that, like every RPC route, needs a cluster certificate not revoked. */
export const WHOAMI_PATH = '/whoami';

export interface PkiServer {
  dir: string;
  ca: CertificateAuthority;
  identity: LiveIdentity;
  store: PkiStore;
  server: https.Server;
  /** `127.0.0.1:<port>` */
  address: string;
  /** Every HTTP request that reached the server (method and path), in order. */
  requests: string[];
  /** TLS handshakes completed. */
  handshakes(): number;
  logFile: string;
  logger: Logger;
}

/** A first judicator (CA + own certificate in a temp dir) serving joins, renewals and WHOAMI_PATH on loopback. */
export async function startPkiServer(hooks: Hooks, options: { store?: PkiStore; name?: string; dir?: string } = {}): Promise<PkiServer> {
  // An existing judicator directory keeps its CA (initClusterIdentity never makes a second one).
  const dir = options.dir ?? path.join(makeTempDir(hooks, 'kv2-pki-'), 'pki');
  await initClusterIdentity(dir, { name: options.name ?? 'j1' });
  const ca = (await loadCertificateAuthority(dir))!;
  const logDir = path.join(makeTempDir(hooks, 'kv2-pki-logs-'), 'logs');
  const logger = createLogger('judicator', { dir: logDir, maxBytes: 1e7, keep: 1, printToStdout: false, level: 'info' });
  const identity = LiveIdentity.load(dir, logger);
  const store = options.store ?? new MemoryPkiStore();
  const pki = pkiRequestHandler(new JoinServer({ ca, store, logger }));
  const requests: string[] = [];
  let handshakes = 0;
  const server = https.createServer(identity.serverOptions({ requireClientCertificate: false }), (req, res) => {
    requests.push(`${req.method} ${req.url}`);
    if (pki(req, res)) return;
    if (req.url !== WHOAMI_PATH) {
      res.writeHead(404).end();
      return;
    }
    void (async () => {
      const socket = req.socket as TLSSocket;
      const peer = peerIdentity(socket);
      if (!peer) return res.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ error: whyNoIdentity(socket) }));
      const check = (await store.revocations()).check(peer);
      if (check.revoked) return res.writeHead(403, { 'content-type': 'application/json' }).end(JSON.stringify({ error: check.reason }));
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(peer));
    })();
  });
  server.on('secureConnection', () => handshakes++);
  identity.attachServer(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  hooks.after(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  const { port } = server.address() as AddressInfo;
  return { dir, ca, identity, store, server, address: `127.0.0.1:${port}`, requests, handshakes: () => handshakes, logFile: path.join(logDir, 'judicator.log'), logger };
}

/** A node identity in a new temp dir, issued straight from `ca` (no join): ca.crt and node.pem. */
export async function issueIdentity(hooks: Hooks, ca: CertificateAuthority, role: Role, name: string, hosts: string[] = []): Promise<string> {
  const dir = path.join(makeTempDir(hooks, 'kv2-node-'), 'pki');
  const { keyPem, csrPem } = await createKeyAndCsr(name);
  const issued = await ca.issue({ publicKey: await readCsr(csrPem), role, name, hosts });
  prepareIdentityDir(dir);
  writeCaCertificate(dir, ca.certPem);
  writeNodePem(dir, keyPem, issued.pem);
  return dir;
}

/** One HTTPS request with its own connection; the status and parsed JSON body (undefined if none). */
export function httpsJson(
  address: string,
  pathname: string,
  tls: https.RequestOptions,
  method = 'GET',
  body?: string,
): Promise<{ status: number; json: unknown; peerSerial: string | undefined }> {
  const [host, port] = address.split(':');
  return new Promise((resolve, reject) => {
    const req = https.request({ host, port: Number(port), path: pathname, method, agent: false, ...tls }, (res) => {
      const peerSerial = (res.socket as TLSSocket).getPeerCertificate?.()?.serialNumber;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        let json: unknown;
        try {
          json = text ? JSON.parse(text) : undefined;
        } catch {
          json = text;
        }
        resolve({ status: res.statusCode ?? 0, json, peerSerial });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** The log lines (parsed) of a test server's log file. */
export function logLines(file: string): Record<string, unknown>[] {
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}
