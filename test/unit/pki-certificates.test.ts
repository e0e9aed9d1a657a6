// The cluster CA and the certificates it issues: the role and name a certificate carries are read back,
// only judicators get server use and host names, CSRs prove possession, the fingerprint is kubeadm's,
// and the CRL names the revoked serials.
import assert from 'node:assert/strict';
import { X509Certificate as NodeX509, webcrypto } from 'node:crypto';
import { test } from 'node:test';
import type { PeerCertificate } from 'node:tls';
import { InvalidInputError } from '../../src/common/errors';
import { CertificateAuthority } from '../../src/pki/certificate-authority';
import { createKeyAndCsr, readCsr } from '../../src/pki/csr';
import { caFingerprint, parseFingerprint } from '../../src/pki/fingerprint';
import { certificateHosts, coversHosts } from '../../src/pki/hosts';
import { readIdentity } from '../../src/pki/identity';
import { judicatorServerCheck } from '../../src/pki/peer-identity';
import { x509 } from '../../src/pki/x509';

const { subtle } = webcrypto;

async function keyFor(name: string) {
  const { csrPem, keyPem } = await createKeyAndCsr(name);
  return { publicKey: await readCsr(csrPem), keyPem };
}

function usages(pem: string): string[] {
  return [...new x509.X509Certificate(pem).getExtension(x509.ExtendedKeyUsageExtension)!.usages.map(String)];
}

test('an executor certificate carries its role and name, client use only, and chains to the CA', async () => {
  const ca = await CertificateAuthority.create();
  const { publicKey } = await keyFor('e1');
  const issued = await ca.issue({ publicKey, role: 'executor', name: 'e1' });
  const identity = readIdentity(issued.pem);
  assert.equal(identity.role, 'executor');
  assert.equal(identity.name, 'e1');
  assert.deepEqual(identity, issued.identity);
  assert.deepEqual(usages(issued.pem), [x509.ExtendedKeyUsage.clientAuth]);
  const cert = new NodeX509(issued.pem);
  assert.ok(cert.checkIssued(new NodeX509(ca.certPem)) && cert.verify(new NodeX509(ca.certPem).publicKey));
  assert.equal(cert.subject, 'CN=executor\nO=kv2');
  assert.equal(cert.ca, false);
  assert.deepEqual(certificateHosts(issued.pem), []);
});

test('only a judicator certificate may serve: server use and host names', async () => {
  const ca = await CertificateAuthority.create();
  const { publicKey } = await keyFor('j1');
  const judicator = await ca.issue({ publicKey, role: 'judicator', name: 'j1', hosts: ['127.0.0.1', 'LocalHost', '0:0:0:0:0:0:0:1', '10.1.2.3'] });
  assert.deepEqual(usages(judicator.pem).sort(), [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth].sort());
  assert.deepEqual(certificateHosts(judicator.pem).sort(), ['10.1.2.3', '127.0.0.1', '::1', 'localhost']);
  assert.ok(coversHosts(judicator.pem, ['::1', 'localhost']));
  assert.ok(!coversHosts(judicator.pem, ['10.1.2.4']));
  await assert.rejects(ca.issue({ publicKey, role: 'gateway', name: 'g1', hosts: ['127.0.0.1'] }), /gateway certificates carry no host names/);
  await assert.rejects(ca.issue({ publicKey, role: 'judicator', name: 'j1', hosts: ['bad host'] }), /bad host name/);
});

test('a certificate without exactly one kv2 role gets no identity', async () => {
  const keys = (await subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify'])) as CryptoKeyPair;
  const make = (uris: string[]) =>
    x509.X509CertificateGenerator.createSelfSigned({
      name: 'CN=judicator',
      keys,
      signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
      extensions: [new x509.SubjectAlternativeNameExtension(uris.map((value) => ({ type: 'url' as const, value })))],
    });
  for (const uris of [[], ['kv2:node:x'], ['kv2:role:root', 'kv2:node:x'], ['kv2:role:judicator', 'kv2:role:executor', 'kv2:node:x'], ['kv2:role:judicator', 'kv2:node:bad name']]) {
    const cert = await make(uris);
    assert.throws(() => readIdentity(cert.toString('pem')), InvalidInputError, JSON.stringify(uris));
  }
  // A name that tries to smuggle URIs through Node's printed list stays one (quoted) name.
  const smuggler = await x509.X509CertificateGenerator.createSelfSigned({
    name: 'CN=judicator',
    keys,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: 'a, URI:kv2:role:judicator, URI:kv2:node:x, DNS:b' }])],
  });
  assert.throws(() => readIdentity(smuggler.toString('pem')), /carries no single kv2 role \(found \[\]\)/);
  const ok = await make(['kv2:role:admin', 'kv2:node:ops']);
  assert.equal(readIdentity(ok.toString('pem')).role, 'admin');
});

test('a CSR must be signed by the key it carries and use ECDSA P-256', async () => {
  const { csrPem } = await createKeyAndCsr('e1');
  await readCsr(csrPem);
  // Another key's CSR with this one's public key swapped in cannot be made without hand-written ASN.1;
  // flipping a byte of the signature gives a CSR whose proof of possession fails.
  const der = Buffer.from(x509.PemConverter.decodeFirst(csrPem));
  der.writeUInt8(der.readUInt8(der.length - 5) ^ 0xff, der.length - 5);
  await assert.rejects(readCsr(x509.PemConverter.encode(der, 'CERTIFICATE REQUEST')), /proof of possession|does not parse/);
  await assert.rejects(readCsr('not a csr'), /does not parse/);
  await assert.rejects(readCsr(42), /no CSR given/);
  await assert.rejects(readCsr('x'.repeat(20_000)), /larger than/);
  const rsa = (await subtle.generateKey({ name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' }, true, ['sign', 'verify'])) as CryptoKeyPair;
  const rsaCsr = await x509.Pkcs10CertificateRequestGenerator.create({ name: 'CN=x', keys: rsa, signingAlgorithm: { name: 'RSASSA-PKCS1-v1_5' } });
  await assert.rejects(readCsr(rsaCsr.toString('pem')), /ECDSA P-256 keys only/);
});

test('the fingerprint is the SHA-256 of the CA public key (kubeadm\'s form), and parses in any spelling', async () => {
  const ca = await CertificateAuthority.create();
  const thumbprint = Buffer.from(await new x509.X509Certificate(ca.certPem).publicKey.getThumbprint('SHA-256')).toString('hex');
  assert.equal(ca.fingerprint, `sha256:${thumbprint}`);
  assert.equal(caFingerprint(new NodeX509(ca.certPem).raw), ca.fingerprint);
  assert.equal(parseFingerprint(thumbprint.toUpperCase()), ca.fingerprint);
  assert.throws(() => parseFingerprint('sha1:abcd'), /bad CA fingerprint/);
});

test('a CA is loaded only with its own key', async () => {
  const a = await CertificateAuthority.create();
  const b = await CertificateAuthority.create();
  const again = await CertificateAuthority.load(a.certPem, a.keyPem);
  assert.equal(again.fingerprint, a.fingerprint);
  await assert.rejects(CertificateAuthority.load(a.certPem, b.keyPem), /not the key of the CA certificate/);
  const { publicKey } = await keyFor('e1');
  const leaf = await a.issue({ publicKey, role: 'executor', name: 'e1' });
  await assert.rejects(CertificateAuthority.load(leaf.pem, a.keyPem), /not a CA certificate/);
});

test('a leaf never outlives its CA', async () => {
  const now = new Date();
  const ca = await CertificateAuthority.create({ now, lifetimeMs: 10 * 86_400_000 });
  const { publicKey } = await keyFor('e1');
  const leaf = await ca.issue({ publicKey, role: 'executor', name: 'e1', now });
  assert.equal(leaf.identity.notAfter.getTime(), ca.notAfter.getTime());
});

test('the CRL is signed by the CA and lists the revoked serials', async () => {
  const ca = await CertificateAuthority.create();
  const { publicKey } = await keyFor('e1');
  const revoked = await ca.issue({ publicKey, role: 'executor', name: 'e1' });
  const kept = await ca.issue({ publicKey, role: 'executor', name: 'e2' });
  const pem = await ca.signCrl([{ serial: revoked.identity.serial, revokedAt: new Date() }]);
  assert.match(pem, /^-----BEGIN X509 CRL-----/);
  const crl = new x509.X509Crl(pem.replace(/X509 CRL/g, 'CRL'));
  assert.ok(await crl.verify({ publicKey: new x509.X509Certificate(ca.certPem) }));
  assert.ok(crl.findRevoked(new x509.X509Certificate(revoked.pem)));
  assert.equal(crl.findRevoked(new x509.X509Certificate(kept.pem)), null);
});

test('a client of a judicator accepts a judicator certificate only, whatever address it was reached at', async () => {
  const ca = await CertificateAuthority.create();
  const { publicKey } = await keyFor('n');
  const judicator = await ca.issue({ publicKey, role: 'judicator', name: 'j1', hosts: ['10.0.0.1'] });
  const executor = await ca.issue({ publicKey, role: 'executor', name: 'e1' });
  const peer = (pem: string) => ({ raw: new NodeX509(pem).raw }) as PeerCertificate;
  assert.equal(judicatorServerCheck('192.168.1.1', peer(judicator.pem)), undefined);
  assert.match(String(judicatorServerCheck('10.0.0.1', peer(executor.pem))), /belongs to executor e1, not to a judicator/);
});
