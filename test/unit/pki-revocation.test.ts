// Revocation and renewal timing: a certificate revoked by serial or by node name is refused by the check,
// one issued after a name's revocation is not, the store's records expire with what they describe, and
// renewal starts when a third of a certificate's life is left.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CertificateAuthority, ISSUE_BACKDATE_MS } from '../../src/pki/certificate-authority';
import { createKeyAndCsr, readCsr } from '../../src/pki/csr';
import { MemoryPkiStore } from '../../src/pki/memory-pki-store';
import { RECORD_GRACE_MS, revokeNode } from '../../src/pki/pki-store';
import { needsRenewal } from '../../src/pki/renewal';
import { RevocationList } from '../../src/pki/revocation';

const DAY = 86_400_000;

test('a certificate revoked by serial is refused; others of the same node are not', () => {
  const list = new RevocationList([{ serial: '00ABC', name: 'e1', role: 'executor', notAfter: '2099-01-01T00:00:00Z', revokedAt: '2030-01-01T00:00:00Z', reason: 'key lost' }]);
  const check = list.check({ serial: 'abc', name: 'e1', notBefore: new Date('2029-01-01T00:00:00Z') });
  assert.equal(check.revoked, true);
  assert.match((check as { reason: string }).reason, /certificate abc of e1 was revoked .*key lost/);
  assert.deepEqual(list.check({ serial: 'abd', name: 'e1', notBefore: new Date('2029-01-01T00:00:00Z') }), { revoked: false });
});

test('a node revoked by name loses every certificate issued until then, not those issued after', () => {
  const revokedAt = new Date('2030-06-01T00:00:00Z');
  const list = new RevocationList([], [{ name: 'e1', revokedAt: revokedAt.toISOString(), reason: 'left', expiresAt: '2030-09-01T00:00:00Z' }]);
  // Issued at the revocation instant or before (notBefore is backdated by the CA).
  const issuedAt = (ms: number) => ({ serial: '1', name: 'e1', notBefore: new Date(ms - ISSUE_BACKDATE_MS) });
  assert.equal(list.check(issuedAt(revokedAt.getTime() - DAY)).revoked, true);
  assert.equal(list.check(issuedAt(revokedAt.getTime())).revoked, true);
  assert.equal(list.check(issuedAt(revokedAt.getTime() + 1000)).revoked, false);
  assert.equal(list.check({ ...issuedAt(revokedAt.getTime() - DAY), name: 'e2' }).revoked, false);
  // Two revocations of one name: the later one holds.
  const twice = new RevocationList([], [
    { name: 'e1', revokedAt: '2030-06-01T00:00:00Z', reason: 'first', expiresAt: '2030-09-01T00:00:00Z' },
    { name: 'e1', revokedAt: '2030-07-01T00:00:00Z', reason: 'second', expiresAt: '2030-10-01T00:00:00Z' },
  ]);
  assert.equal(twice.names().length, 1);
  assert.equal(twice.names()[0]!.reason, 'second');
});

test('revoking a node revokes its name and each of its unexpired certificates, and the CRL lists them', async () => {
  const store = new MemoryPkiStore();
  const ca = await CertificateAuthority.create();
  const publicKey = await readCsr((await createKeyAndCsr('e1')).csrPem);
  const records = [];
  for (const name of ['e1', 'e1', 'e2']) {
    const { identity } = await ca.issue({ publicKey, role: 'executor', name });
    const record = { serial: identity.serial, name, role: identity.role, notBefore: identity.notBefore.toISOString(), notAfter: identity.notAfter.toISOString(), via: 'join' as const };
    await store.recordIssued(record);
    records.push(record);
  }
  const revoked = await revokeNode(store, { name: 'e1', reason: 'decommissioned' });
  assert.deepEqual(revoked.map((r) => r.serial).sort(), [records[0]!.serial, records[1]!.serial].sort());
  const list = await store.revocations();
  assert.equal(list.check({ serial: records[2]!.serial, name: 'e2', notBefore: new Date(records[2]!.notBefore) }).revoked, false);
  assert.equal(list.check({ serial: records[0]!.serial, name: 'e1', notBefore: new Date(records[0]!.notBefore) }).revoked, true);
  assert.deepEqual(list.crlEntries().map((e) => e.serial).sort(), revoked.map((r) => r.serial).sort());
});

test('records expire with what they describe (after the grace period)', async () => {
  let now = Date.parse('2030-01-01T00:00:00Z');
  const store = new MemoryPkiStore(() => now);
  const end = new Date(now + 1000).toISOString();
  await store.addToken({ id: 'abcdef', secretSha256: '0'.repeat(64), roles: ['executor'], createdAt: new Date(now).toISOString(), expiresAt: end, description: '' });
  await store.revokeCertificate({ serial: 'a1', name: 'e1', role: 'executor', notAfter: end, revokedAt: new Date(now).toISOString(), reason: 'r' });
  assert.equal(await store.addToken({ id: 'abcdef', secretSha256: '1'.repeat(64), roles: ['gateway'], createdAt: end, expiresAt: end, description: '' }), false);
  now += 2000;
  // Past its end: still there (so a late join hears "expired"), but no longer a revocation in force.
  assert.ok(await store.token('abcdef'));
  assert.equal((await store.revocations()).size, 0);
  now += RECORD_GRACE_MS;
  assert.equal(await store.token('abcdef'), undefined);
});

test('renewal is due once less than a third of the life is left', () => {
  const notBefore = new Date('2030-01-01T00:00:00Z');
  const cert = { notBefore, notAfter: new Date(notBefore.getTime() + 90 * DAY) };
  assert.equal(needsRenewal(cert, new Date(notBefore.getTime() + 59 * DAY)), false);
  assert.equal(needsRenewal(cert, new Date(notBefore.getTime() + 61 * DAY)), true);
  assert.equal(needsRenewal(cert, new Date(notBefore.getTime() + 100 * DAY)), true);
  assert.equal(needsRenewal(cert, new Date(notBefore.getTime() + 10 * DAY), 0.95), true);
});
