// What an executor registers: its sandbox state travels with its languages, and a sandbox description
// the judicators cannot take is dropped without losing the registration (its key lets it report).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseExecutorRegistration } from '../../src/etcd/executor-registration';

const base = { hostname: 'h', slots: 2, started: '2026-01-01T00:00:00Z', key: 'k', languages: [{ name: 'C', version: '12' }] };

describe('executor registration', () => {
  it('carries the sandbox state next to the languages', () => {
    const sandbox = { kind: 'bwrap', how: 'bwrap as the task user', network: 'own loopback only', limits: { memory: "the step's memory cgroup" } };
    assert.deepEqual(parseExecutorRegistration(JSON.stringify({ ...base, sandbox }))?.sandbox, sandbox);
  });

  it('drops a sandbox state it cannot take, and keeps the rest', () => {
    for (const sandbox of [{ kind: 'chroot', how: '', network: '', limits: {} }, { kind: 'none', how: 'x'.repeat(5000), network: '', limits: {} }, 'bwrap']) {
      const parsed = parseExecutorRegistration(JSON.stringify({ ...base, sandbox }));
      assert.equal(parsed?.key, 'k', JSON.stringify(sandbox).slice(0, 60));
      assert.equal(parsed?.sandbox, undefined);
    }
  });
});
