// The first judicator's identity on disk: made once with private files, found again on every start, a CA
// never made over an existing one, an interrupted creation finished, and broken files named.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { ConfigError } from '../../src/common/errors';
import { CertificateAuthority } from '../../src/pki/certificate-authority';
import { createKeyAndCsr, readCsr } from '../../src/pki/csr';
import { coversHosts } from '../../src/pki/hosts';
import { identityPaths, readNodeFiles, writeNodePem } from '../../src/pki/identity-files';
import { initClusterIdentity, loadCertificateAuthority } from '../../src/pki/init-identity';
import { makeTempDir } from '../helpers/temp';

const mode = (file: string) => fs.statSync(file).mode & 0o777;

test('the first start makes the CA and the judicator certificate with private files; later starts keep them', async (t) => {
  const dir = path.join(makeTempDir(t), 'pki');
  const first = await initClusterIdentity(dir, { name: 'j1', hosts: ['10.0.0.5'] });
  assert.equal(first.createdCa, true);
  assert.equal(first.issuedCertificate, true);
  const paths = identityPaths(dir);
  assert.equal(mode(dir), 0o700);
  assert.equal(mode(paths.caKey), 0o600);
  assert.equal(mode(paths.node), 0o600);
  assert.equal(fs.existsSync(path.join(dir, '.ca-init')), false);
  const files = readNodeFiles(dir)!;
  assert.equal(files.identity.role, 'judicator');
  assert.equal(files.identity.name, 'j1');
  assert.ok(coversHosts(files.certPem, ['10.0.0.5', '127.0.0.1', 'localhost', '::1']));

  const second = await initClusterIdentity(dir, { name: 'j1', hosts: ['10.0.0.5'] });
  assert.equal(second.createdCa, false);
  assert.equal(second.issuedCertificate, false);
  assert.equal(second.ca.fingerprint, first.ca.fingerprint);
  assert.equal(readNodeFiles(dir)!.certPem, files.certPem);

  // A new address: a new certificate from the same CA.
  const moved = await initClusterIdentity(dir, { name: 'j1', hosts: ['10.0.0.6'] });
  assert.equal(moved.issuedCertificate, true);
  assert.equal(moved.ca.fingerprint, first.ca.fingerprint);
  assert.ok(coversHosts(readNodeFiles(dir)!.certPem, ['10.0.0.6']));
});

test('a CA certificate without its key is never replaced by a new CA', async (t) => {
  const dir = makeTempDir(t);
  await initClusterIdentity(dir, { name: 'j1' });
  const before = fs.readFileSync(identityPaths(dir).caCert, 'utf8');
  fs.rmSync(identityPaths(dir).caKey);
  await assert.rejects(initClusterIdentity(dir, { name: 'j1' }), (error: unknown) => error instanceof ConfigError && /never makes a new CA/.test(error.message));
  assert.equal(fs.readFileSync(identityPaths(dir).caCert, 'utf8'), before);
  assert.equal(await loadCertificateAuthority(dir), undefined);
});

test('a CA creation interrupted between its two renames is finished, not started over', async (t) => {
  const dir = makeTempDir(t);
  // What a crash leaves: the key in place, the certificate still in the staging directory.
  const ca = await CertificateAuthority.create();
  fs.mkdirSync(path.join(dir, '.ca-init'), { recursive: true });
  fs.writeFileSync(identityPaths(dir).caKey, ca.keyPem, { mode: 0o600 });
  fs.writeFileSync(path.join(dir, '.ca-init', 'ca.crt'), ca.certPem);
  const result = await initClusterIdentity(dir, { name: 'j1' });
  assert.equal(result.createdCa, false);
  assert.equal(result.ca.fingerprint, ca.fingerprint);
  assert.equal(fs.existsSync(path.join(dir, '.ca-init')), false);

  // A key alone with nothing staged: an operator must look.
  const other = makeTempDir(t);
  fs.writeFileSync(identityPaths(other).caKey, ca.keyPem, { mode: 0o600 });
  await assert.rejects(initClusterIdentity(other, { name: 'j1' }), /exists without .*ca\.crt/);
});

test('identity files that do not hang together are refused with the file named', async (t) => {
  const dir = makeTempDir(t);
  assert.equal(readNodeFiles(dir), undefined);
  const { ca } = await initClusterIdentity(dir, { name: 'j1' });
  const files = readNodeFiles(dir)!;
  // The key of another node with this certificate.
  const stranger = await createKeyAndCsr('x');
  writeNodePem(dir, stranger.keyPem, files.certPem);
  assert.throws(() => readNodeFiles(dir), (error: unknown) => error instanceof ConfigError && /node\.pem.*not for this node's key/.test(error.message));
  // A certificate of another CA.
  const otherCa = await CertificateAuthority.create();
  const foreign = await otherCa.issue({ publicKey: await readCsr(stranger.csrPem), role: 'executor', name: 'x' });
  writeNodePem(dir, stranger.keyPem, foreign.pem);
  assert.throws(() => readNodeFiles(dir), /not issued by the cluster CA/);
  fs.writeFileSync(identityPaths(dir).node, 'garbage');
  assert.throws(() => readNodeFiles(dir), /must hold one private key/);
  // initClusterIdentity repairs its own certificate from the CA it has.
  const repaired = await initClusterIdentity(dir, { name: 'j1' });
  assert.equal(repaired.issuedCertificate, true);
  assert.equal(repaired.ca.fingerprint, ca.fingerprint);
  assert.equal(readNodeFiles(dir)!.identity.name, 'j1');
});
