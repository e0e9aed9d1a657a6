// What an executor says of itself in its reports (the report's `info`): its sandbox state travels with its
// languages, and a sandbox description or a language list the judicators cannot take is dropped without
// losing the report.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { executorInfoSchema } from '../../src/rpc/contract';

const base = { hostname: 'h', slots: 2, started: '2026-01-01T00:00:00Z', languages: [{ name: 'C', version: '12' }] };

describe("an executor's report info", () => {
  it('carries the sandbox state next to the languages', () => {
    const sandbox = { kind: 'bwrap', how: 'bwrap as the task user', network: 'own loopback only', limits: { memory: "the step's memory cgroup" } };
    const parsed = executorInfoSchema.parse({ ...base, sandbox });
    assert.deepEqual(parsed.sandbox, sandbox);
    assert.deepEqual(parsed.languages, base.languages);
  });

  it('drops a sandbox state it cannot take, and keeps the rest', () => {
    for (const sandbox of [{ kind: 'chroot', how: '', network: '', limits: {} }, { kind: 'none', how: 'x'.repeat(5000), network: '', limits: {} }, 'bwrap']) {
      const parsed = executorInfoSchema.safeParse({ ...base, sandbox });
      assert.ok(parsed.success, JSON.stringify(sandbox).slice(0, 60));
      assert.equal(parsed.data.hostname, 'h');
      assert.equal(parsed.data.sandbox, undefined);
    }
  });

  it('drops a language list it cannot take, and keeps the rest; fields it does not know are not kept', () => {
    for (const languages of [Array.from({ length: 65 }, (_, i) => ({ name: `L${i}`, version: '1' })), [{ name: '', version: '1' }], [{ name: 'C', version: 'x'.repeat(65) }]]) {
      const parsed = executorInfoSchema.parse({ ...base, languages });
      assert.equal(parsed.languages, undefined);
      assert.equal(parsed.hostname, 'h');
    }
    assert.equal('extra' in executorInfoSchema.parse({ ...base, extra: 'x' }), false);
  });
});
