// GET /api/task's `wait` parameter (seconds, cut to the maximum, bad values refused with a message), and
// how the gateway tells a judicator older than the `wait` RPC from one refusing its input.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InvalidInputError } from '../../src/common/errors';
import { parseQuery, taskQuery } from '../../src/gateway/api/queries';
import { isUnknownMethod } from '../../src/gateway/api/wait';
import { UNKNOWN_METHOD } from '../../src/rpc/contract';

/** The `wait` of GET /api/task?id=...&wait=, as its query schema reads it (seconds; undefined: none). */
const wait = (value: string | undefined) => parseQuery(taskQuery(60), { id: '0123456789abcdef01234567', ...(value === undefined ? {} : { wait: value }) }).wait;

test('wait: seconds as a decimal number; absent or empty is none', () => {
  assert.equal(wait(undefined), undefined);
  assert.equal(wait(''), undefined);
  assert.equal(wait('0'), 0);
  assert.equal(wait('30'), 30);
  assert.equal(wait(' 2.5 '), 2.5);
  assert.equal(wait('.25'), 0.25);
  assert.equal(wait('+1'), 1);
  assert.equal(wait('61'), 60, 'cut to the longest wait');
  assert.equal(wait('999999999'), 60);
  for (const bad of ['abc', '-1', '1e3', 'NaN', 'Infinity', '0x10', '1,5', ' ', '1.2.3']) {
    assert.throws(() => wait(bad), (error: Error) => error instanceof InvalidInputError && /^wait must be a number of seconds from 0 to 60/.test(error.message), bad);
  }
});

test("a judicator that does not know wait is told apart from one refusing the call's input", () => {
  assert.ok(isUnknownMethod({ result: 4, message: 'no RPC method "wait"' }, 'wait'));
  assert.ok(isUnknownMethod({ result: 4, message: UNKNOWN_METHOD('wait') }, 'wait'));
  assert.ok(!isUnknownMethod({ result: 4, message: 'timeout_ms: Number must be less than or equal to 120000' }, 'wait'));
  assert.ok(!isUnknownMethod({ result: 2, message: 'task 0 does not exist' }, 'wait'));
  assert.ok(!isUnknownMethod({ result: 0 }, 'wait'));
});
