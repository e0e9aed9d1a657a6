// Join tokens: the printed form round-trips, every kind of damage gets its own clear message, and what the
// cluster stores of a token holds no secret.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InvalidInputError } from '../../src/common/errors';
import { formatJoinToken, hashSecret, newJoinToken, parseJoinToken, secretMatches } from '../../src/pki/join-token';
import { MemoryPkiStore } from '../../src/pki/memory-pki-store';
import { createJoinToken } from '../../src/pki/pki-store';

const CA = `sha256:${'ab'.repeat(32)}`;

function refusal(text: unknown): string {
  try {
    parseJoinToken(text);
  } catch (error) {
    assert.ok(error instanceof InvalidInputError, `expected InvalidInputError, got ${String(error)}`);
    return error.message;
  }
  assert.fail(`${String(text)} was accepted`);
}

test('a token prints as kv2j1.<id>.<secret>.<ca>.<check> and parses back, whatever the case and spaces around it', () => {
  const token = newJoinToken(CA);
  const text = formatJoinToken(token);
  assert.match(text, /^kv2j1\.[a-z2-7]{6}\.[a-z2-7]{26}\.[0-9a-f]{64}\.[a-z2-7]{6}$/);
  assert.deepEqual(parseJoinToken(text), token);
  assert.deepEqual(parseJoinToken(`  ${text.toUpperCase()}\n`), token);
  // Two tokens never share a secret.
  assert.notEqual(newJoinToken(CA).secret, token.secret);
});

test('damaged tokens are refused with a message that says what is wrong', () => {
  const text = formatJoinToken(newJoinToken(CA));
  assert.match(refusal(''), /no join token/);
  assert.match(refusal(undefined), /no join token/);
  assert.match(refusal('abcdef.0123456789abcdef'), /not a kv2 join token/);
  assert.match(refusal(text.replace(/^kv2j1/, 'kv2j2')), /format kv2j2 is not known/);
  assert.match(refusal(text.split('.').slice(0, 4).join('.')), /5 parts.*this one has 4/);
  assert.match(refusal(`${text}.extra`), /5 parts.*this one has 6/);
  assert.match(refusal(text.replace(/\.([a-z2-7]{26})\./, (_m, s: string) => `.${s.slice(1)}.`)), /wrong length or characters/);
  // One character changed in the secret: the shape is right, the check catches it.
  const parts = text.split('.');
  parts[2] = (parts[2]![0] === 'a' ? 'b' : 'a') + parts[2]!.slice(1);
  assert.match(refusal(parts.join('.')), /check characters do not match/);
  // Two neighbours swapped.
  const swapped = text.split('.');
  const s = swapped[1]!;
  if (s[0] !== s[1]) {
    swapped[1] = s[1]! + s[0]! + s.slice(2);
    assert.match(refusal(swapped.join('.')), /check characters do not match/);
  }
});

test('the stored record keeps a hash of the secret, never the secret', async () => {
  const store = new MemoryPkiStore();
  const now = new Date('2030-01-01T00:00:00Z');
  const { token, record } = await createJoinToken(store, { caFingerprint: CA, roles: ['executor', 'gateway'], ttlMs: 3_600_000, description: 'rack 4', now });
  const parsed = parseJoinToken(token);
  assert.equal(record.id, parsed.id);
  assert.equal(record.secretSha256, hashSecret(parsed.secret));
  assert.ok(!JSON.stringify(record).includes(parsed.secret));
  assert.equal(record.expiresAt, '2030-01-01T01:00:00.000Z');
  assert.deepEqual(record.roles, ['executor', 'gateway']);
  assert.ok(secretMatches(parsed.secret, record.secretSha256));
  assert.ok(!secretMatches(newJoinToken(CA).secret, record.secretSha256));
});

test('a token needs a role and a life between 0 and a year', async () => {
  const store = new MemoryPkiStore();
  await assert.rejects(createJoinToken(store, { caFingerprint: CA, roles: [] }), /at least one role/);
  await assert.rejects(createJoinToken(store, { caFingerprint: CA, roles: ['executor'], ttlMs: 0 }), /life must be more than 0/);
  await assert.rejects(createJoinToken(store, { caFingerprint: CA, roles: ['executor'], ttlMs: 400 * 86_400_000 }), /at most 365 days/);
  assert.equal((await store.tokens()).length, 0);
});
