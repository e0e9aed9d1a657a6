// The `accepted` verdict: a successful execute output against the task's expected output
// (`execute_standard`), ignoring trailing whitespace on each line and trailing empty lines, as online
// judges do. Bytes are compared as bytes (latin1 keeps them one-to-one), so output need not be UTF-8.

/** Trailing ASCII whitespace only: Unicode spaces could be the tail of a UTF-8 character. */
const TRAILING = /[ \t\r\f\v]+$/;

function normalise(bytes: Buffer): string {
  const lines = bytes.toString('latin1').split('\n').map((line) => line.replace(TRAILING, ''));
  while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  return lines.join('\n');
}

/**
 * true or false when the execute step succeeded and a non-empty standard was given; null otherwise
 * (no standard, or the task did not get as far as a successful execute).
 */
export function judge(executeSucceeded: boolean, output: Buffer, standard: Buffer): boolean | null {
  if (!executeSucceeded || standard.length === 0) return null;
  return normalise(output) === normalise(standard);
}
