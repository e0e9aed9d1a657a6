// The `accepted` verdict: output against the expected output, trailing whitespace ignored per line and
// at the end, null when there is nothing to judge.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { judge } from '../../src/executor/judge';

const b = (text: string) => Buffer.from(text, 'latin1');

test('trailing whitespace on lines and trailing empty lines do not matter', () => {
  assert.equal(judge(true, b('1 2 \n3\t\r\n\n\n'), b('1 2\n3')), true);
  assert.equal(judge(true, b('x'), b('x\n')), true);
  assert.equal(judge(true, b('a\r\nb\r\n'), b('a\nb\n')), true);
});

test('anything else does', () => {
  assert.equal(judge(true, b('1  2\n'), b('1 2\n')), false);
  assert.equal(judge(true, b(' 1\n'), b('1\n')), false);
  assert.equal(judge(true, b('1\n\n2\n'), b('1\n2\n')), false);
  assert.equal(judge(true, b(''), b('1\n')), false);
});

test('bytes are compared as bytes, and non-ASCII spaces are not trimmed', () => {
  assert.equal(judge(true, Buffer.from([0xff, 0x0a]), Buffer.from([0xff])), true);
  assert.equal(judge(true, Buffer.from([0x61, 0xa0]), Buffer.from([0x61])), false);
});

test('null without a standard or without a successful execute', () => {
  assert.equal(judge(true, b('x'), b('')), null);
  assert.equal(judge(false, b('x'), b('x')), null);
});
