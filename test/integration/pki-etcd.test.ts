// A real etcd 3.4 on mutual TLS with the cluster PKI (src/pki/etcd-tls.ts), the basis of issue 14's
// wiring: the project's etcd client connects with a judicator certificate of the cluster CA; etcdctl
// without a certificate, with one of another CA, or with an executor's or a gateway's certificate of the
// same CA, is refused (only judicators talk to etcd); a revoked certificate is refused through the CRL
// with no restart; only judicators reach the peer port; the PKI records live in etcd under leases; and a
// judicator that joined reaches etcd with the certificate it got (a gateway that joined does not).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { Etcd3 } from 'etcd3';
import { createEtcdClient } from '../../src/etcd/client';
import { InvalidInputError } from '../../src/common/errors';
import { createLogger } from '../../src/common/logging';
import { CertificateAuthority } from '../../src/pki/certificate-authority';
import { EtcdPkiStore } from '../../src/pki/etcd-pki-store';
import { RevocationFeed } from '../../src/pki/revocation-feed';
import { etcdClientTls } from '../../src/pki/etcd-tls';
import { identityPaths, readNodeFiles, writeCrl, type NodeFiles } from '../../src/pki/identity-files';
import { initClusterIdentity, loadCertificateAuthority } from '../../src/pki/init-identity';
import { join } from '../../src/pki/join-client';
import { parseJoinToken } from '../../src/pki/join-token';
import { createJoinToken, revokeNode } from '../../src/pki/pki-store';
import { EtcdServer, etcdBinary } from '../helpers/etcd';
import { issueIdentity, startPkiServer } from '../helpers/pki';
import { makeTempDir } from '../helpers/temp';
import { waitFor } from '../helpers/wait';

// One etcd for the whole file: what it and the shared clients need undone runs once, at the end.
const cleanups: (() => unknown)[] = [];
const hooks = { after: (fn: () => unknown) => void cleanups.push(fn) };
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});
const found = etcdBinary();
const etcdctl = process.env.KV2_ETCDCTL_BINARY || '/usr/bin/etcdctl';
const missing = 'missing' in found ? found.missing : !fs.existsSync(etcdctl) ? `no etcdctl at ${etcdctl} (install etcd-client or set KV2_ETCDCTL_BINARY)` : undefined;
if (missing) console.log(`# pki-etcd: skipped: ${missing}`);

let judicatorDir: string;
let ca: CertificateAuthority;
let etcd: EtcdServer;
let judicator: Etcd3;

before(async () => {
  if (missing) return;
  judicatorDir = path.join(makeTempDir(hooks, 'kv2-pki-etcd-'), 'pki');
  await initClusterIdentity(judicatorDir, { name: 'j1' });
  ca = (await loadCertificateAuthority(judicatorDir))!;
  // etcd refuses every connection while it cannot read its CRL: an empty one first.
  writeCrl(judicatorDir, await ca.signCrl([]));
  etcd = await EtcdServer.start(hooks, { tls: { dir: judicatorDir, crl: true } });
  judicator = client(readNodeFiles(judicatorDir)!);
});

/** An etcd client with a node's identity, closed when `owner` ends (a refused client keeps redialling until closed). */
function client(files: NodeFiles, owner: { after: (fn: () => unknown) => void } = hooks, endpoint = etcd.endpoint): Etcd3 {
  const made = createEtcdClient([endpoint], { tls: etcdClientTls(files), faultHandling: false, dialTimeoutMs: 2_000, callTimeoutMs: 4_000 });
  owner.after(() => made.close());
  return made;
}

/** etcdctl get against the TLS etcd with the given flags: exit status, and stdout + stderr. */
function etcdctlGet(key: string, flags: string[]): { status: number | null; output: string } {
  const result = spawnSync(etcdctl, ['--endpoints', etcd.endpoint, '--dial-timeout', '2s', '--command-timeout', '4s', ...flags, 'get', key, '--print-value-only'], {
    encoding: 'utf8',
    env: { ...process.env, ETCDCTL_API: '3' },
    timeout: 20_000,
  });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

/** Waits for etcd to log why it refused a connection (its log arrives through a pipe, a moment later). */
function etcdLogged(pattern: RegExp): Promise<true> {
  return waitFor(() => pattern.test(etcd.log), { what: `etcd to log ${pattern}`, timeoutMs: 5_000 });
}

/** etcdctl's certificate flags for a node's identity directory (node.pem is both the cert and the key). */
function certFlags(dir: string): string[] {
  const paths = identityPaths(dir);
  return ['--cacert', paths.caCert, '--cert', paths.node, '--key', paths.node];
}

function peerMembers(dir: string): Promise<number> {
  const files = readNodeFiles(dir)!;
  return new Promise((resolve, reject) => {
    const req = https.get(`https://127.0.0.1:${etcd.peerPort}/members`, { ca: files.caPem, cert: files.certPem, key: files.keyPem, agent: false, timeout: 4_000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

test('the project etcd client connects with a judicator certificate of the cluster CA; etcdctl needs one too', { skip: missing }, async (t) => {
  const otherJudicator = await issueIdentity(t, ca, 'judicator', 'j2');
  const judicator2 = client(readNodeFiles(otherJudicator)!, t);
  await judicator2.put('kv2/probe').value('hello');
  assert.equal(await judicator2.get('kv2/probe').string(), 'hello');
  // An endpoint written without a scheme is https when the client has TLS.
  const bare = client(readNodeFiles(otherJudicator)!, t, `127.0.0.1:${etcd.clientPort}`);
  assert.equal(await bare.get('kv2/probe').string(), 'hello');

  // etcdctl with the same certificate reads it; without one it is refused.
  const withCert = etcdctlGet('kv2/probe', certFlags(otherJudicator));
  assert.equal(withCert.status, 0, withCert.output);
  assert.equal(withCert.output.trim(), 'hello');
  const noCert = etcdctlGet('kv2/probe', ['--cacert', identityPaths(otherJudicator).caCert]);
  assert.notEqual(noCert.status, 0);
  assert.doesNotMatch(noCert.output, /hello/);
  await etcdLogged(/rejected connection.*client didn't provide a certificate/);
  // Plain HTTP to the client port gets nothing either.
  await assert.rejects(fetch(`http://127.0.0.1:${etcd.clientPort}/v3/kv/range`, { method: 'POST', body: '{"key":"a3YyL3Byb2Jl"}', signal: AbortSignal.timeout(4_000) }));
});

test("an executor's, a gateway's or an operator's certificate of the same CA is refused: only judicators talk to etcd", { skip: missing }, async (t) => {
  for (const role of ['executor', 'gateway', 'admin'] as const) {
    const dir = await issueIdentity(t, ca, role, `${role}-1`);
    const refused = etcdctlGet('kv2/probe', certFlags(dir));
    assert.notEqual(refused.status, 0, `etcdctl with a ${role} certificate: ${refused.output}`);
    assert.doesNotMatch(refused.output, /hello/);
    await assert.rejects(client(readNodeFiles(dir)!, t).put(`kv2/from-${role}`).value('x').exec(), `the etcd client with a ${role} certificate`);
  }
  assert.equal(await judicator.get('kv2/from-executor').string(), null, 'nothing was written');
});

test('a client certificate of another CA is refused, by etcdctl and by the etcd client', { skip: missing }, async (t) => {
  const otherCa = await CertificateAuthority.create();
  const strangerDir = await issueIdentity(t, otherCa, 'executor', 'e1');
  // It trusts our CA for the server, so only its own certificate is wrong.
  const flags = ['--cacert', identityPaths(judicatorDir).caCert, '--cert', identityPaths(strangerDir).node, '--key', identityPaths(strangerDir).node];
  const refused = etcdctlGet('kv2/probe', flags);
  assert.notEqual(refused.status, 0);

  const stranger = readNodeFiles(strangerDir)!;
  const foreign = client({ ...stranger, caPem: ca.certPem }, t);
  await assert.rejects(foreign.get('kv2/probe').string());
  await etcdLogged(/rejected connection.*failed to verify client certificate: x509: certificate signed by unknown authority/);
});

test('a revoked certificate is refused by etcd as soon as the CRL is rewritten, without a restart', { skip: missing }, async (t) => {
  const e2 = await issueIdentity(t, ca, 'judicator', 'j-e2');
  const e3 = await issueIdentity(t, ca, 'judicator', 'j-e3');
  assert.equal(etcdctlGet('kv2/probe', certFlags(e2)).status, 0);
  const pid = etcd.pid;
  writeCrl(judicatorDir, await ca.signCrl([{ serial: readNodeFiles(e2)!.identity.serial, revokedAt: new Date() }]));
  const revoked = etcdctlGet('kv2/probe', certFlags(e2));
  assert.notEqual(revoked.status, 0);
  await etcdLogged(new RegExp(`rejected connection.*certificate serial ${readNodeFiles(e2)!.identity.serial} revoked`));
  assert.equal(etcdctlGet('kv2/probe', certFlags(e3)).status, 0);
  assert.equal(etcd.pid, pid, 'etcd was not restarted');
  await assert.rejects(client(readNodeFiles(e2)!, t).get('kv2/probe').string());
  writeCrl(judicatorDir, await ca.signCrl([]));
  assert.equal(etcdctlGet('kv2/probe', certFlags(e2)).status, 0);
});

test('only a judicator certificate reaches the peer port', { skip: missing }, async (t) => {
  assert.equal(await peerMembers(judicatorDir), 200);
  const executorDir = await issueIdentity(t, ca, 'executor', 'e4');
  // Refused by --peer-cert-allowed-cn judicator (without that flag etcd answers 200 to this certificate).
  await assert.rejects(peerMembers(executorDir), /bad certificate/);
});

test('the PKI records live in etcd, each under a lease that ends with it', { skip: missing }, async () => {
  const logger = createLogger('test', { dir: makeTempDir(hooks), maxBytes: 1e6, keep: 1, printToStdout: false, level: 'warn' });
  const store = new EtcdPkiStore(() => judicator, 'test/', logger);
  const { token, record } = await createJoinToken(store, { caFingerprint: ca.fingerprint, roles: ['executor'], ttlMs: 3_600_000, description: 'rack 4' });
  const key = `test/pki/join-token/${record.id}`;
  const stored = await judicator.get(key).exec();
  const text = stored.kvs[0]!.value.toString();
  assert.ok(!text.includes(parseJoinToken(token).secret), 'the secret is not stored');
  const { TTL } = await judicator.leaseClient.leaseTimeToLive({ ID: stored.kvs[0]!.lease });
  assert.ok(Number(TTL) > 3_600 && Number(TTL) <= 3_660, `lease TTL ${TTL}`);
  assert.deepEqual(await store.token(record.id), record);
  assert.equal(await store.addToken({ ...record, description: 'a second one with the same id' }), false);
  assert.equal((await store.token(record.id))!.description, 'rack 4');

  // A damaged record is refused when asked for, and left out of lists.
  await judicator.put('test/pki/join-token/zzzzzz').value('not json');
  await assert.rejects(store.token('zzzzzz'), InvalidInputError);
  assert.deepEqual((await store.tokens()).map((r) => r.id), [record.id]);
  assert.equal(await store.removeToken(record.id), true);
  assert.equal(await store.removeToken(record.id), false);

  const notAfter = new Date(Date.now() + 86_400_000).toISOString();
  await store.recordIssued({ serial: 'abc1', name: 'e7', role: 'executor', notBefore: new Date().toISOString(), notAfter, via: 'join', tokenId: record.id });
  await store.recordIssued({ serial: 'abc2', name: 'e8', role: 'executor', notBefore: new Date().toISOString(), notAfter, via: 'join' });
  const revoked = await revokeNode(store, { name: 'e7', reason: 'left' });
  assert.deepEqual(revoked.map((r) => r.serial), ['abc1']);
  const list = await store.revocations();
  assert.equal(list.check({ serial: 'abc1', name: 'e7', notBefore: new Date(Date.now() - 3_600_000) }).revoked, true);
  assert.equal(list.check({ serial: 'abc2', name: 'e8', notBefore: new Date(Date.now() - 3_600_000) }).revoked, false);
});

test('a revocation made on one judicator reaches etcd through the revocation feed and the CRL it writes', { skip: missing }, async (t) => {
  const store = new EtcdPkiStore(() => judicator, 'feed-test/');
  const logger = createLogger('test', { dir: makeTempDir(t), maxBytes: 1e6, keep: 1, printToStdout: false, level: 'warn' });
  const feed = new RevocationFeed(store, logger, 100);
  // What every judicator does with the list: sign it into the CRL etcd reads.
  feed.onChange(async (list) => writeCrl(judicatorDir, await ca.signCrl(list.crlEntries())));
  const stop = new AbortController();
  t.after(() => stop.abort());
  void feed.run(stop.signal);
  t.after(async () => writeCrl(judicatorDir, await ca.signCrl([])));

  const e5 = await issueIdentity(t, ca, 'judicator', 'j5');
  const { identity } = readNodeFiles(e5)!;
  await store.recordIssued({ serial: identity.serial, name: 'j5', role: 'judicator', notBefore: identity.notBefore.toISOString(), notAfter: identity.notAfter.toISOString(), via: 'join' });
  assert.equal(etcdctlGet('kv2/probe', certFlags(e5)).status, 0);
  await revokeNode(store, { name: 'j5', role: 'judicator', reason: 'gone' });
  await waitFor(() => feed.current().check(identity).revoked, { what: 'the feed to see the revocation', timeoutMs: 5_000 });
  await waitFor(() => etcdctlGet('kv2/probe', certFlags(e5)).status !== 0, { what: 'etcd to refuse the revoked certificate', timeoutMs: 10_000 });
});

test('a judicator joins through one that keeps its records in etcd, then reaches etcd with what it got; a gateway that joined does not', { skip: missing }, async (t) => {
  const store = new EtcdPkiStore(() => judicator, 'join-test/');
  const pki = await startPkiServer(t, { dir: judicatorDir, store });
  assert.equal(pki.ca.fingerprint, ca.fingerprint);
  const { token } = await createJoinToken(store, { caFingerprint: ca.fingerprint, roles: ['judicator', 'gateway'] });
  const dir = path.join(makeTempDir(t), 'pki');
  const { identity } = await join({ address: pki.address, token, role: 'judicator', name: 'j9', dir, hosts: ['127.0.0.1'] });
  assert.deepEqual((await store.issued()).map((r) => [r.serial, r.name]), [[identity.serial, 'j9']]);
  const joined = client(readNodeFiles(dir)!, t);
  await joined.put('kv2/from-joined').value('joined');
  assert.equal(await judicator.get('kv2/from-joined').string(), 'joined');

  const gatewayDir = path.join(makeTempDir(t), 'pki');
  await join({ address: pki.address, token, role: 'gateway', name: 'g1', dir: gatewayDir });
  await assert.rejects(client(readNodeFiles(gatewayDir)!, t).put('kv2/from-gateway').value('joined').exec());
  assert.equal(await judicator.get('kv2/from-gateway').string(), null);
});
