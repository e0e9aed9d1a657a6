// Secrets typed on a command line are taken out of the process list: the redaction keeps every other
// argument where it was and never makes the command line longer (it must fit in the old one's memory).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { redactArgv } from '../../src/common/hide-argv';

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
