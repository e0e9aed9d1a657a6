// Where task callbacks may go (issue 17): the operator's allow list as the gateway and the judicator apply
// it, the addresses a callback may reach only when an IP or CIDR entry names them, the signature a
// receiver checks, and the backoff between attempts.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { test } from 'node:test';
import { CallbackAllowList, checkAllowEntry } from '../../src/task/callback-allow';
import { signature } from '../../src/judicator/callback-post';
import { retryDelay } from '../../src/judicator/callbacks';

const url = (text: string) => new URL(text);

test('nothing is allowed by default, and the refusal names the flag', () => {
  assert.match(new CallbackAllowList([]).refusal(url('https://example.com/'))!, /allows no callback host \(--task-callback-allow\)/);
});

test('host names exactly, *.domain below it, IPs and CIDR blocks, * for any name', () => {
  const list = new CallbackAllowList(['Hooks.Example.com', '*.corp.example', '10.0.0.0/8', '2001:db8::/32', '192.0.2.7']);
  assert.equal(list.refusal(url('https://hooks.example.com:8443/a?b')), undefined);
  assert.equal(list.refusal(url('https://HOOKS.example.com./a')), undefined, 'case and a trailing dot do not matter');
  assert.match(list.refusal(url('https://x.hooks.example.com/'))!, /does not allow/);
  assert.equal(list.refusal(url('https://ci.corp.example/')), undefined);
  assert.match(list.refusal(url('https://corp.example/'))!, /does not allow/, '*.domain is not the domain itself');
  assert.match(list.refusal(url('https://evilcorp.example/'))!, /does not allow/);
  assert.equal(list.refusal(url('http://10.1.2.3/')), undefined);
  assert.equal(list.refusal(url('http://[2001:db8::5]/')), undefined);
  assert.equal(list.refusal(url('http://192.0.2.7/')), undefined);
  assert.match(list.refusal(url('http://192.0.2.8/'))!, /does not allow/);
  const any = new CallbackAllowList(['*']);
  assert.equal(any.refusal(url('https://anything.example.org/')), undefined);
  assert.equal(any.refusal(url('http://203.0.113.9/')), undefined);
});

test('loopback, link-local, unspecified and multicast need an IP or CIDR entry, even under * or a listed name', () => {
  const any = new CallbackAllowList(['*', 'metadata.internal']);
  for (const host of ['127.0.0.1', '[::1]', '169.254.169.254', '0.0.0.0', '[fe80::1]', '224.0.0.1', '[::ffff:127.0.0.1]']) {
    assert.match(any.refusal(url(`http://${host}/`))!, /only when --task-callback-allow lists it/, host);
  }
  // A name is checked again by what it resolves to, at delivery.
  assert.equal(any.refusal(url('http://metadata.internal/')), undefined);
  assert.match(any.checkAddress('169.254.169.254')!, /resolves to 169\.254\.169\.254/);
  assert.match(any.checkAddress('::ffff:127.0.0.1')!, /resolves to 127\.0\.0\.1/);
  assert.equal(any.checkAddress('10.0.0.5'), undefined, 'private addresses are the operator\'s to allow by name');
  const local = new CallbackAllowList(['127.0.0.1']);
  assert.equal(local.refusal(url('http://127.0.0.1:8080/hook')), undefined);
  assert.equal(local.checkAddress('127.0.0.1'), undefined);
  assert.match(local.checkAddress('127.0.0.2')!, /lists it/);
});

test('entries that are none are refused with a reason (the flag checks them at start)', () => {
  for (const entry of ['10.0.0.0/33', 'exa mple.com', '*.', 'http://x.com', '1.2.3.4/x']) assert.ok(checkAllowEntry(entry), entry);
  for (const entry of ['*', 'a', '*.a.b', '::1', 'fd00::/8', 'host_name.local']) assert.equal(checkAllowEntry(entry), undefined, entry);
});

test('the signature is the hex HMAC-SHA256 of the body, and the backoff doubles up to its bound', () => {
  const body = Buffer.from('{"id":"x"}');
  assert.equal(signature(Buffer.from('secret'), body), `sha256=${createHmac('sha256', 'secret').update(body).digest('hex')}`);
  const settings = { retryInitialMs: 1000, retryMaxMs: 5000 };
  assert.deepEqual([1, 2, 3, 4, 5].map((n) => retryDelay(settings, n)), [1000, 2000, 4000, 5000, 5000]);
});
