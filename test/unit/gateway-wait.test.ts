// GET /api/task's `wait` parameter (seconds, cut to the maximum, bad values refused with a message), and
// how the gateway tells a judicator older than the `wait` RPC from one refusing its input.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InvalidInputError } from '../../src/common/errors';
import { parseWait } from '../../src/gateway/forms';
import { isUnknownMethod } from '../../src/gateway/api/wait';
import { UNKNOWN_METHOD } from '../../src/rpc/contract';

test('wait: seconds as a decimal number, in ms; absent or empty is 0; more than the maximum is cut to it', () => {
  assert.equal(parseWait(undefined, 60), 0);
  assert.equal(parseWait('', 60), 0);
  assert.equal(parseWait('0', 60), 0);
  assert.equal(parseWait('30', 60), 30_000);
  assert.equal(parseWait(' 2.5 ', 60), 2_500);
  assert.equal(parseWait('.25', 60), 250);
  assert.equal(parseWait('+1', 60), 1_000);
  assert.equal(parseWait('0.0004', 60), 0);
  assert.equal(parseWait('61', 60), 60_000);
  assert.equal(parseWait('999999999', 60), 60_000);
  assert.equal(parseWait(7, 60), 7_000);
  for (const bad of ['abc', '-1', '1e3', 'NaN', 'Infinity', '0x10', '1,5', ' ', '1.2.3', -5, Number.NaN, true, {}]) {
    assert.throws(() => parseWait(bad, 60), (error: Error) => error instanceof InvalidInputError && /^wait must be a number of seconds from 0 to 60/.test(error.message), String(bad));
  }
});

test("a judicator that does not know wait is told apart from one refusing the call's input", () => {
  assert.ok(isUnknownMethod({ result: 4, message: 'no RPC method "wait"' }, 'wait'));
  assert.ok(isUnknownMethod({ result: 4, message: UNKNOWN_METHOD('wait') }, 'wait'));
  assert.ok(!isUnknownMethod({ result: 4, message: 'timeout_ms: Number must be less than or equal to 120000' }, 'wait'));
  assert.ok(!isUnknownMethod({ result: 2, message: 'task 0 does not exist' }, 'wait'));
  assert.ok(!isUnknownMethod({ result: 0 }, 'wait'));
});
