// The errors of joining and renewing that common/errors.ts has no class for. Both extend Kv2Error, so
// the CLI and the supervisor print their message as it is; neither is worth retrying as it stands.
import { Kv2Error } from '../common/errors';

/** The server reached is not one this node may trust: its CA is not the pinned one, or it is no judicator. Nothing was sent to it. */
export class TrustError extends Kv2Error {}

/** A judicator answered and refused (bad, unknown or expired token, role not allowed, revoked): its reason is the message. */
export class JoinRefusedError extends Kv2Error {
  constructor(
    message: string,
    /** The HTTP status of the refusal (400, 401, 403, ...). */
    readonly status: number,
  ) {
    super(message);
  }
}
