// Typed errors with messages a user can act on. The edges (CLI, HTTP, RPC) turn them into exit codes
// and result codes; everything below them just throws.

/** Base class: `message` is written for the person who has to fix the problem. */
export class Kv2Error extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Bad command-line usage: unknown command or flag, bad flag value. The CLI exits 2. */
export class UsageError extends Kv2Error {}

/** A configuration file that cannot be read or does not validate. The CLI (and a module) exits 2. */
export class ConfigError extends Kv2Error {}

/** Input from outside (API field, RPC argument, zip) that is not acceptable. */
export class InvalidInputError extends Kv2Error {}

/** One bad field of a submission, and why. */
export interface FieldError {
  field: string;
  message: string;
}

/** Several fields of one submission that are not acceptable, all of them (HTTP 400 at the gateway). */
export class InvalidFieldsError extends InvalidInputError {
  constructor(readonly errors: readonly FieldError[]) {
    super(errors.length === 1 ? errors[0]!.message : `${errors.length} fields are not acceptable: ${errors.map((e) => e.message).join('; ')}`);
  }
}

/** The thing asked for does not exist. */
export class NotFoundError extends Kv2Error {}

/** A task, a result or a request over a size limit. */
export class TooLargeError extends Kv2Error {}

/** A resource (pid-file lock, port, work dir) held by someone else. */
export class BusyError extends Kv2Error {}

/** A dependency (etcd, a judicator, the store) cannot be reached or does not answer in time. */
export class UnavailableError extends Kv2Error {}

/** Exit codes of the kv2 command, in one place so scripts can rely on them. */
export const ExitCode = {
  OK: 0,
  FAILURE: 1,
  USAGE: 2,
} as const;

export function exitCodeFor(error: unknown): number {
  if (error instanceof UsageError || error instanceof ConfigError || error instanceof InvalidInputError) {
    return ExitCode.USAGE;
  }
  return ExitCode.FAILURE;
}

/** The one-line text of any thrown value, for logs and CLI messages. */
export function describeError(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code && !error.message.includes(code) ? `${error.message} (${code})` : error.message;
  }
  return String(error);
}
