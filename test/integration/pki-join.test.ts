// Joining a cluster over real TLS sockets on loopback (src/pki): a node with a good token gets a
// certificate a mutual-TLS server accepts with its role; a server whose CA is not the pinned one, or that
// is no judicator, gets nothing, not even a request; bad tokens are refused with clear messages; revoked
// certificates are refused; renewal swaps certificates without a restart.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import type { TLSSocket } from 'node:tls';
import { InvalidInputError } from '../../src/common/errors';
import { CertificateAuthority } from '../../src/pki/certificate-authority';
import { createKeyAndCsr } from '../../src/pki/csr';
import { JoinRefusedError, TrustError } from '../../src/pki/errors';
import { identityPaths, readNodeFiles } from '../../src/pki/identity-files';
import { initClusterIdentity, loadCertificateAuthority, LOOPBACK_HOSTS } from '../../src/pki/init-identity';
import { caFingerprint } from '../../src/pki/fingerprint';
import { join } from '../../src/pki/join-client';
import { JOIN_PATH, RENEW_PATH } from '../../src/pki/join-server';
import { formatJoinToken, newJoinToken, parseJoinToken } from '../../src/pki/join-token';
import { normaliseSerial } from '../../src/pki/identity';
import { LiveIdentity } from '../../src/pki/live-identity';
import { judicatorServerCheck, peerIdentity } from '../../src/pki/peer-identity';
import { createJoinToken, revokeNode } from '../../src/pki/pki-store';
import { CertificateRenewer, renewFromJudicators, renewWithCa } from '../../src/pki/renewal';
import { httpsJson, issueIdentity, logLines, startPkiServer, WHOAMI_PATH, type PkiServer } from '../helpers/pki';
import { makeTempDir } from '../helpers/temp';
import { x509 } from '../../src/pki/x509';
import { waitFor } from '../helpers/wait';

type Hooks = { after: (fn: () => unknown) => void };

const mode = (file: string) => fs.statSync(file).mode & 0o777;

async function tokenFor(pki: PkiServer, roles: ('judicator' | 'executor' | 'gateway' | 'admin')[], extra: { ttlMs?: number; now?: Date } = {}): Promise<string> {
  return (await createJoinToken(pki.store, { caFingerprint: pki.ca.fingerprint, roles, ...extra })).token;
}

function nodeDir(hooks: Hooks): string {
  return path.join(makeTempDir(hooks, 'kv2-joiner-'), 'pki');
}

/** A server that takes only connections with a certificate of the cluster (as etcd and the RPC will), answering with the client's identity. */
async function strictServer(hooks: Hooks, identity: LiveIdentity, extra: https.ServerOptions = {}): Promise<string> {
  const server = https.createServer({ ...identity.serverOptions({ requireClientCertificate: true }), ...extra }, (req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(peerIdentity(req.socket as TLSSocket) ?? null));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  hooks.after(() => new Promise<void>((resolve) => (server.closeAllConnections(), server.close(() => resolve()))));
  return `127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function refusedWith(promise: Promise<unknown>, kind: new (...args: never[]) => Error, pattern: RegExp): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof kind, `expected ${kind.name}, got ${String(error)}`);
    assert.match(error.message, pattern);
    return error;
  }
  assert.fail('the join was not refused');
}

test('a node joins with a good token and a mutual-TLS server accepts its certificate as an executor', async (t) => {
  const pki = await startPkiServer(t);
  const token = await tokenFor(pki, ['executor', 'gateway']);
  const dir = nodeDir(t);
  const result = await join({ address: pki.address, token, role: 'executor', name: 'e1', dir });
  assert.equal(result.identity.role, 'executor');
  assert.equal(result.caFingerprint, pki.ca.fingerprint);
  assert.equal(result.receivedCaKey, false);
  const paths = identityPaths(dir);
  assert.equal(mode(dir), 0o700);
  assert.equal(mode(paths.node), 0o600);
  assert.equal(fs.existsSync(paths.caKey), false);
  assert.equal(caFingerprint(fs.readFileSync(paths.caCert, 'utf8')), pki.ca.fingerprint);

  // The server side reads the role out of the verified certificate.
  const node = LiveIdentity.load(dir);
  const strict = await strictServer(t, pki.identity);
  const seen = await httpsJson(strict, '/', node.clientOptions());
  assert.equal(seen.status, 200);
  assert.deepEqual({ role: (seen.json as { role: string }).role, name: (seen.json as { name: string }).name }, { role: 'executor', name: 'e1' });
  const whoami = await httpsJson(pki.address, WHOAMI_PATH, node.clientOptions());
  assert.equal(whoami.status, 200);
  assert.equal((whoami.json as { serial: string }).serial, result.identity.serial);

  // Without a certificate: the strict server refuses the handshake, the join port's other routes answer 401.
  await assert.rejects(httpsJson(strict, '/', { ca: node.current.caPem, checkServerIdentity: judicatorServerCheck }));
  const anonymous = await httpsJson(pki.address, WHOAMI_PATH, { ca: node.current.caPem, checkServerIdentity: judicatorServerCheck });
  assert.equal(anonymous.status, 401);
  assert.match((anonymous.json as { error: string }).error, /no client certificate/);
  // A certificate of another CA gets no identity either.
  const stranger = LiveIdentity.load(await issueIdentity(t, await CertificateAuthority.create(), 'executor', 'x'));
  const foreign = await httpsJson(pki.address, WHOAMI_PATH, { ...stranger.clientOptions(), ca: node.current.caPem });
  assert.equal(foreign.status, 401);
  assert.match((foreign.json as { error: string }).error, /not from this cluster's CA/);

  // The judicator recorded what it issued, for revocation.
  const issued = await pki.store.issued();
  assert.deepEqual(issued.map((r) => [r.name, r.role, r.serial, r.via]), [['e1', 'executor', result.identity.serial, 'join']]);
  assert.ok(logLines(pki.logFile).some((l) => l.msg === 'issued a certificate' && l.node === 'e1' && l.serial === result.identity.serial));
});

test('a server whose CA is not the pinned one, or that is no judicator, is refused before any secret is sent', async (t) => {
  const pki = await startPkiServer(t);
  const good = parseJoinToken(await tokenFor(pki, ['executor']));
  const other = await CertificateAuthority.create();
  const dir = nodeDir(t);
  const wrongPin = formatJoinToken({ ...good, caFingerprint: other.fingerprint });
  await refusedWith(join({ address: pki.address, token: wrongPin, role: 'executor', name: 'e1', dir }), TrustError, /token pins CA sha256:[0-9a-f]{64}, the server presents sha256:.*nothing was sent/);
  await waitFor(() => pki.handshakes() >= 1, { what: 'the TLS handshake to be seen by the server', timeoutMs: 5_000 });
  assert.deepEqual(pki.requests, [], 'no HTTP request (so no token) reached the server');
  assert.equal(fs.existsSync(identityPaths(dir).node), false);

  // A server with a certificate of the right CA that is not a judicator's (an executor's, say) gets nothing either.
  const impostorIdentity = LiveIdentity.load(await issueIdentity(t, pki.ca, 'executor', 'evil'));
  const impostorRequests: string[] = [];
  const impostor = https.createServer(impostorIdentity.serverOptions({ requireClientCertificate: false }), (req, res) => {
    impostorRequests.push(req.url ?? '');
    res.writeHead(500).end();
  });
  await new Promise<void>((resolve) => impostor.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => (impostor.closeAllConnections(), impostor.close(() => resolve()))));
  const impostorAddress = `127.0.0.1:${(impostor.address() as AddressInfo).port}`;
  await refusedWith(join({ address: impostorAddress, token: formatJoinToken(good), role: 'executor', name: 'e1', dir }), TrustError, /is not a judicator of this cluster.*nothing was sent/);
  assert.deepEqual(impostorRequests, []);
});

test('expired, unknown and wrong-secret tokens, and roles a token does not allow, are refused with a clear message', async (t) => {
  const pki = await startPkiServer(t);
  const dir = nodeDir(t);
  const expired = await tokenFor(pki, ['executor'], { ttlMs: 1_000, now: new Date(Date.now() - 10_000) });
  const err = (await refusedWith(join({ address: pki.address, token: expired, role: 'executor', name: 'e1', dir }), JoinRefusedError, /join token [a-z2-7]{6} expired at .*kv2 join-token create/)) as JoinRefusedError;
  assert.equal(err.status, 401);
  const unknown = formatJoinToken(newJoinToken(pki.ca.fingerprint));
  await refusedWith(join({ address: pki.address, token: unknown, role: 'executor', name: 'e1', dir }), JoinRefusedError, /is not known to this cluster/);
  const good = parseJoinToken(await tokenFor(pki, ['executor']));
  const wrongSecret = formatJoinToken({ ...good, secret: newJoinToken(pki.ca.fingerprint).secret });
  await refusedWith(join({ address: pki.address, token: wrongSecret, role: 'executor', name: 'e1', dir }), JoinRefusedError, /the secret is wrong/);
  const roleErr = (await refusedWith(
    join({ address: pki.address, token: formatJoinToken(good), role: 'judicator', name: 'j9', dir }),
    JoinRefusedError,
    /lets a node join as executor, not as judicator/,
  )) as JoinRefusedError;
  assert.equal(roleErr.status, 403);
  // A mistyped token is refused before any connection.
  const before = pki.handshakes();
  await refusedWith(join({ address: pki.address, token: formatJoinToken(good).replace(/.$/, (c) => (c === 'a' ? 'b' : 'a')), role: 'executor', name: 'e1', dir }), InvalidInputError, /check characters/);
  assert.equal(pki.handshakes(), before);
  assert.equal(fs.existsSync(identityPaths(dir).node), false);
  assert.equal((await pki.store.issued()).length, 0);
  const refusals = logLines(pki.logFile).filter((l) => l.level === 'warn' && String(l.msg).startsWith('refused a certificate'));
  assert.equal(refusals.length, 4);
});

test('a judicator joins with the CA key, so it can sign, and keeps the cluster CA across restarts', async (t) => {
  const pki = await startPkiServer(t);
  const dir = nodeDir(t);
  const result = await join({ address: pki.address, token: await tokenFor(pki, ['judicator']), role: 'judicator', name: 'j2', dir, hosts: [...LOOPBACK_HOSTS, 'j2.example'] });
  assert.equal(result.receivedCaKey, true);
  assert.equal(mode(identityPaths(dir).caKey), 0o600);
  assert.equal((await loadCertificateAuthority(dir))!.fingerprint, pki.ca.fingerprint);
  const restarted = await initClusterIdentity(dir, { name: 'j2', hosts: ['j2.example'] });
  assert.equal(restarted.createdCa, false);
  assert.equal(restarted.issuedCertificate, false);
  assert.equal(restarted.ca.fingerprint, pki.ca.fingerprint);
});

test('a revoked certificate is refused by the check, by renewal, and by a TLS server given the CRL', async (t) => {
  const pki = await startPkiServer(t);
  const token = await tokenFor(pki, ['executor']);
  const e1 = nodeDir(t);
  const e2 = nodeDir(t);
  await join({ address: pki.address, token, role: 'executor', name: 'e1', dir: e1 });
  await join({ address: pki.address, token, role: 'executor', name: 'e2', dir: e2 });
  const one = LiveIdentity.load(e1);
  const two = LiveIdentity.load(e2);
  assert.equal((await httpsJson(pki.address, WHOAMI_PATH, one.clientOptions())).status, 200);

  const revoked = await revokeNode(pki.store, { name: 'e1', reason: 'decommissioned' });
  assert.equal(revoked.length, 1);
  const refused = await httpsJson(pki.address, WHOAMI_PATH, one.clientOptions());
  assert.equal(refused.status, 403);
  assert.match((refused.json as { error: string }).error, /e1 was revoked .*decommissioned/);
  assert.equal((await httpsJson(pki.address, WHOAMI_PATH, two.clientOptions())).status, 200);
  const renewer = new CertificateRenewer({ identity: one, renew: renewFromJudicators(async () => [pki.address]), logger: pki.logger });
  await refusedWith(renewer.renewNow(), JoinRefusedError, /revoked/);

  // The CA's CRL makes OpenSSL refuse the handshake itself (what etcd does with --client-crl-file).
  const crl = await pki.ca.signCrl((await pki.store.revocations()).crlEntries());
  const strict = await strictServer(t, pki.identity, { crl });
  await assert.rejects(httpsJson(strict, '/', one.clientOptions()));
  assert.equal((await httpsJson(strict, '/', two.clientOptions())).status, 200);
});

test('renewal swaps certificates without a restart: new connections use the new one', async (t) => {
  const pki = await startPkiServer(t);
  const dir = nodeDir(t);
  await join({ address: pki.address, token: await tokenFor(pki, ['gateway']), role: 'gateway', name: 'g1', dir });
  const client = LiveIdentity.load(dir, pki.logger);
  // Another module of the same node, watching the same files.
  const sibling = LiveIdentity.load(dir);
  const watching = new AbortController();
  t.after(() => watching.abort());
  void sibling.watch(watching.signal, 50);
  const changes: string[] = [];
  client.onChange((files) => changes.push(files.identity.serial));
  const first = client.identity.serial;

  const renewer = new CertificateRenewer({ identity: client, renew: renewFromJudicators(async () => [pki.address]), logger: pki.logger });
  assert.equal(await renewer.checkOnce(), false, 'a fresh certificate is not renewed');
  const later = new CertificateRenewer({
    identity: client,
    renew: renewFromJudicators(async () => [pki.address]),
    logger: pki.logger,
    now: () => new Date(Date.now() + 80 * 86_400_000),
  });
  assert.equal(await later.checkOnce(), true);
  const second = client.identity.serial;
  assert.notEqual(second, first);
  assert.deepEqual(changes, [second]);
  assert.equal(client.identity.role, 'gateway');
  assert.equal(mode(identityPaths(dir).node), 0o600);
  const whoami = await httpsJson(pki.address, WHOAMI_PATH, client.clientOptions());
  assert.equal((whoami.json as { serial: string }).serial, second);
  await waitFor(() => sibling.identity.serial === second, { what: 'the sibling module to reload the renewed certificate', timeoutMs: 5_000 });
  assert.ok((await pki.store.issued()).some((r) => r.serial === second && r.via === 'renew'));

  // The judicator's own certificate: renewed with its CA key; the server swaps its context in place.
  const before = await httpsJson(pki.address, WHOAMI_PATH, client.clientOptions());
  assert.equal(normaliseSerial(before.peerSerial!), pki.identity.identity.serial);
  const serverRenewer = new CertificateRenewer({ identity: pki.identity, renew: renewWithCa(pki.ca, { hosts: () => ['127.0.0.1', 'localhost', '::1'], store: pki.store }), logger: pki.logger });
  const renewed = await serverRenewer.renewNow();
  const after = await httpsJson(pki.address, WHOAMI_PATH, client.clientOptions());
  assert.equal(after.status, 200);
  assert.equal(normaliseSerial(after.peerSerial!), renewed.serial);
  assert.notEqual(renewed.serial, normaliseSerial(before.peerSerial!));
  assert.equal(readNodeFiles(pki.dir)!.identity.serial, renewed.serial);
  assert.ok((await pki.store.issued()).some((r) => r.serial === renewed.serial && r.via === 'local' && r.role === 'judicator'));
});

test('malformed join and renew requests get a 4xx with the reason, never a certificate', async (t) => {
  const pki = await startPkiServer(t);
  const tls = { ca: pki.ca.certPem, checkServerIdentity: judicatorServerCheck, headers: { 'content-type': 'application/json' } };
  const post = (pathname: string, body: string) => httpsJson(pki.address, pathname, tls, 'POST', body);
  const error = (answer: { json: unknown }) => (answer.json as { error: string }).error;

  let answer = await post(JOIN_PATH, 'not json');
  assert.deepEqual([answer.status, error(answer)], [400, 'the request body is not JSON']);
  answer = await post(JOIN_PATH, '{}');
  assert.equal(answer.status, 400);
  assert.match(error(answer), /bad request: version: .*token: .*role: .*name: .*csr/);
  answer = await post(JOIN_PATH, JSON.stringify({ junk: 'x'.repeat(70_000) }));
  assert.equal(answer.status, 413);
  answer = await httpsJson(pki.address, JOIN_PATH, tls);
  assert.equal(answer.status, 405);

  const token = await tokenFor(pki, ['executor']);
  const { csrPem } = await createKeyAndCsr('e1');
  const body = { version: 1, token, role: 'executor', name: 'e1', csr: csrPem };
  answer = await post(JOIN_PATH, JSON.stringify({ ...body, role: 'root' }));
  assert.equal(answer.status, 400);
  answer = await post(JOIN_PATH, JSON.stringify({ ...body, name: '../etc' }));
  assert.match(error(answer), /bad node name/);
  // The CSR's signature damaged: it no longer proves possession of its key.
  const der = Buffer.from(x509.PemConverter.decodeFirst(csrPem));
  der.writeUInt8(der.readUInt8(der.length - 1) ^ 0x01, der.length - 1);
  answer = await post(JOIN_PATH, JSON.stringify({ ...body, csr: x509.PemConverter.encode(der, 'CERTIFICATE REQUEST') }));
  assert.equal(answer.status, 400);
  assert.match(error(answer), /CSR/);
  answer = await post(JOIN_PATH, JSON.stringify({ ...body, hosts: ['10.0.0.1'] }));
  assert.deepEqual([answer.status, error(answer)], [400, 'executor certificates carry no host names: only judicators serve TLS to the cluster']);
  answer = await post(RENEW_PATH, JSON.stringify({ version: 1, csr: csrPem }));
  assert.equal(answer.status, 401);
  assert.match(error(answer), /renewal needs the current certificate of this cluster: no client certificate/);

  assert.equal((await pki.store.issued()).length, 0);
  // And a good request still works afterwards.
  answer = await post(JOIN_PATH, JSON.stringify(body));
  assert.equal(answer.status, 200);
});
