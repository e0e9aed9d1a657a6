// A whole join, as one program for the bundling test (test/integration/pki-bundle.test.ts): esbuild bundles
// this file the way build/build.ts bundles kv2, and plain node runs it, to show the X.509 library (and its
// Reflect polyfill) works bundled, and is loaded only when something is signed. Prints one JSON line with
// what it saw; exits 1 on any failure.
import fs from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { TLSSocket } from 'node:tls';
import { createLogger } from '../../src/common/logging';
import { initClusterIdentity } from '../../src/pki/init-identity';
import { join } from '../../src/pki/join-client';
import { JoinServer, pkiRequestHandler } from '../../src/pki/join-server';
import { LiveIdentity } from '../../src/pki/live-identity';
import { MemoryPkiStore } from '../../src/pki/memory-pki-store';
import { peerIdentity } from '../../src/pki/peer-identity';
import { createJoinToken } from '../../src/pki/pki-store';

// Every module above is loaded by now; the X.509 library must not be (san.ts, x509.ts): no Reflect polyfill yet.
const x509LoadedAtStart = typeof (Reflect as { getMetadata?: unknown }).getMetadata === 'function';

async function main(): Promise<void> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'kv2-pki-bundle-'));
  try {
    const logger = createLogger('bundle', { dir: path.join(root, 'logs'), maxBytes: 1e6, keep: 1, printToStdout: false });
    const { ca } = await initClusterIdentity(path.join(root, 'judicator'), { name: 'j1' });
    const judicator = LiveIdentity.load(path.join(root, 'judicator'));
    const store = new MemoryPkiStore();
    const pki = pkiRequestHandler(new JoinServer({ ca, store, logger }));
    const tlsServer = https.createServer(judicator.serverOptions({ requireClientCertificate: false }), (req, res) => {
      if (pki(req, res)) return;
      res.writeHead(200).end(JSON.stringify(peerIdentity(req.socket as TLSSocket) ?? null));
    });
    await new Promise<void>((resolve) => tlsServer.listen(0, '127.0.0.1', resolve));
    const address = `127.0.0.1:${(tlsServer.address() as AddressInfo).port}`;
    const { token } = await createJoinToken(store, { caFingerprint: ca.fingerprint, roles: ['executor'] });
    const joined = await join({ address, token, role: 'executor', name: 'e1', dir: path.join(root, 'executor') });
    const node = LiveIdentity.load(path.join(root, 'executor'));
    const seen = await new Promise<string>((resolve, reject) => {
      https
        .get(`https://${address}/whoami`, { ...node.clientOptions(), agent: false }, (res) => {
          let text = '';
          res.on('data', (c: Buffer) => (text += c.toString()));
          res.on('end', () => resolve(text));
        })
        .on('error', reject);
    });
    tlsServer.closeAllConnections();
    await new Promise((resolve) => tlsServer.close(resolve));
    const identity = JSON.parse(seen) as { role: string; name: string; serial: string };
    const x509LoadedAtEnd = typeof (Reflect as { getMetadata?: unknown }).getMetadata === 'function';
    process.stdout.write(`${JSON.stringify({ x509LoadedAtStart, x509LoadedAtEnd, fingerprint: ca.fingerprint, joined: joined.identity.serial, role: identity.role, name: identity.name, serial: identity.serial })}\n`);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
