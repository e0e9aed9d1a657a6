// How the MongoDB store reads the driver's errors: a document over 16 MB, a duplicate key, and the
// connection trouble that becomes UnavailableError (so that the RPC answers 503 and clients fail over).
// Also the leader's fence, which MongoDB writes cannot be conditioned on.
import { MongoNetworkError, MongoServerError, MongoServerSelectionError, MongoWriteConcernError } from 'mongodb';
import { UnavailableError, describeError } from '../../common/errors';
import type { WriteFence } from '../task-store';

/** The server's (or the BSON encoder's) "this document is over 16 MB" in any of its spellings. */
export function isTooLargeError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  if (code === 10334 || code === 17419 || code === 17420) return true;
  if ((error as { codeName?: unknown }).codeName === 'BSONObjectTooLarge') return true;
  return /too large|larger than|exceeds the max/i.test(error.message);
}

export function isDuplicateKey(error: unknown): boolean {
  return error instanceof MongoServerError && error.code === 11000;
}

/** Connection trouble and unconfirmed majority writes become UnavailableError, with what to check. */
export function translate(error: unknown, what: string): unknown {
  if (error instanceof MongoNetworkError || error instanceof MongoServerSelectionError) {
    return new UnavailableError(`the MongoDB replica set does not answer (${what}): ${describeError(error)}; is a majority of the judicators' mongods up?`, { cause: error });
  }
  if (error instanceof MongoWriteConcernError) {
    return new UnavailableError(`a majority of the replica set did not confirm ${what} in time: ${describeError(error)}`, { cause: error });
  }
  return error;
}

/**
 * MongoDB writes cannot be conditioned on an etcd key: the leader's fence is checked right before its
 * duty writes instead (each of which is also conditioned on the task's own state, so a late one is harmless).
 */
export async function checkFence(fence: WriteFence | undefined): Promise<void> {
  if (fence && !(await fence.holds())) throw new UnavailableError('no longer the leader: its election key is gone; leader duties stop here');
}
