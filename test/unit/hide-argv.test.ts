// Secrets typed on a command line are taken out of the process list: the redaction keeps every other
// argument where it was and never makes the command line longer (it must fit in the old one's memory).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { redactArgv, withoutSecretFlags } from '../../src/common/hide-argv';

describe('redactArgv', () => {
  it('hides the values of the secret flags, in both spellings, and nothing else', () => {
    const argv = ['kv2', 'gateway', '--server-token', 'alpha-secret', '--server-port', '7000', '--server-token=beta-secret', '--work-dir', '/w'];
    assert.deepEqual(redactArgv(argv, ['server-token']), ['kv2', 'gateway', '--server-token', '***', '--server-port', '7000', '--server-token=***', '--work-dir', '/w']);
  });

  it('never makes an argument longer than it was', () => {
    const argv = ['kv2', '--token', 'a', '--token=bc', '--token'];
    const redacted = redactArgv(argv, ['--token']);
    assert.deepEqual(redacted, ['kv2', '--token', '*', '--token=**', '--token']);
    assert.ok(redacted.join(' ').length <= argv.join(' ').length);
  });
});

describe('withoutSecretFlags', () => {
  it('drops every spelling of a secret flag with its value, and nothing else', () => {
    const argv = ['executor', '--join-token', 'kv2j1.secret', '--join', 'h1', '--join-token=kv2j1.other', '--main-name', 'e1', '--join-token-file', '/t'];
    assert.deepEqual(withoutSecretFlags(argv, ['join-token', 'server-token']), ['executor', '--join', 'h1', '--main-name', 'e1', '--join-token-file', '/t']);
    assert.ok(!withoutSecretFlags(argv, ['join-token']).join(' ').includes('secret'));
  });
});
