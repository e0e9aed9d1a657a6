// The built-in checkers: a test's output against its expected output. `exact` is the original's
// comparison (trailing whitespace on each line and trailing empty lines ignored, as online judges do);
// `tokens` ignores whitespace altogether; `float` compares numbers with a tolerance, as testlib's
// doubleCompare does. Bytes are compared as bytes (latin1 keeps them one-to-one), so output need not be
// UTF-8. A checker program (testlib's convention) is checker-program.ts's.

/** Trailing ASCII whitespace only: Unicode spaces could be the tail of a UTF-8 character. */
const TRAILING = /[ \t\r\f\v]+$/;
/** What separates tokens: ASCII whitespace. */
const WHITESPACE = /[ \t\n\r\f\v]+/;
/** A number as judges print them (testlib's readDouble accepts these, and nan / inf). */
const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
/** Characters of a token or line quoted in a message. */
const QUOTE_CHARS = 40;
/** Added to the float tolerance, as testlib does, so that a tolerance written in decimal is met exactly. */
const FLOAT_SLACK = 1e-15;
/** Beyond this a number counts as infinite (testlib's __testlib_isInfinite). */
const INFINITE = 1e300;

export type BuiltinChecker = { kind: 'exact' } | { kind: 'tokens' } | { kind: 'float'; error: number };

export interface Comparison {
  verdict: 'accepted' | 'wrong_answer' | 'presentation_error';
  message: string;
}

function normalise(bytes: Buffer): string[] {
  const lines = bytes.toString('latin1').split('\n').map((line) => line.replace(TRAILING, ''));
  while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  return lines;
}

function tokens(bytes: Buffer): string[] {
  return bytes.toString('latin1').split(WHITESPACE).filter(Boolean);
}

/** A token or line in a message: quoted, cut, and back in UTF-8 where it was. */
function quote(text: string): string {
  const utf8 = Buffer.from(text, 'latin1').toString('utf8');
  return JSON.stringify(utf8.length > QUOTE_CHARS ? `${utf8.slice(0, QUOTE_CHARS)}...` : utf8);
}

const ACCEPTED: Comparison = { verdict: 'accepted', message: '' };

function compareLines(output: Buffer, expected: Buffer): Comparison {
  const got = normalise(output);
  const want = normalise(expected);
  const length = Math.max(got.length, want.length);
  for (let i = 0; i < length; i++) {
    if (got[i] === want[i]) continue;
    // The same tokens laid out differently: the judges' presentation error.
    if (compareTokens(output, expected).verdict === 'accepted') {
      return { verdict: 'presentation_error', message: `the right answer, laid out differently (from line ${i + 1})` };
    }
    if (i >= got.length) return { verdict: 'wrong_answer', message: `the output ends at line ${got.length}; ${want.length} lines expected` };
    if (i >= want.length) return { verdict: 'wrong_answer', message: `the output has ${got.length} lines; ${want.length} expected` };
    return { verdict: 'wrong_answer', message: `line ${i + 1} differs: expected ${quote(want[i]!)}, found ${quote(got[i]!)}` };
  }
  return ACCEPTED;
}

function compareTokens(output: Buffer, expected: Buffer, same: (found: string, wanted: string) => boolean = (a, b) => a === b): Comparison {
  const got = tokens(output);
  const want = tokens(expected);
  const length = Math.min(got.length, want.length);
  for (let i = 0; i < length; i++) {
    if (!same(got[i]!, want[i]!)) return { verdict: 'wrong_answer', message: `token ${i + 1} differs: expected ${quote(want[i]!)}, found ${quote(got[i]!)}` };
  }
  if (got.length !== want.length) return { verdict: 'wrong_answer', message: `${want.length} tokens expected, ${got.length} found` };
  return ACCEPTED;
}

function parseNumber(token: string): number | undefined {
  const lower = token.toLowerCase();
  if (lower === 'nan' || lower === '-nan') return NaN;
  if (lower === 'inf' || lower === '+inf' || lower === 'infinity') return Infinity;
  if (lower === '-inf' || lower === '-infinity') return -Infinity;
  return NUMBER.test(token) ? Number(token) : undefined;
}

/**
 * Whether `found` is `wanted` within `error`, absolute or relative to `wanted` (testlib's doubleCompare:
 * NaN only matches NaN, an infinite value only one of the same sign). Tokens that are not numbers must be
 * equal.
 */
export function floatsMatch(found: string, wanted: string, error: number): boolean {
  const b = parseNumber(wanted);
  const a = parseNumber(found);
  if (a === undefined || b === undefined) return found === wanted;
  if (Number.isNaN(b)) return Number.isNaN(a);
  if (Math.abs(b) > INFINITE) return Math.abs(a) > INFINITE && Math.sign(a) === Math.sign(b);
  if (Number.isNaN(a) || Math.abs(a) > INFINITE) return false;
  const difference = Math.abs(a - b);
  return difference <= error + FLOAT_SLACK || difference <= error * Math.abs(b) + FLOAT_SLACK;
}

/** A test's output against its expected output with a built-in checker. */
export function compareOutput(output: Buffer, expected: Buffer, checker: BuiltinChecker): Comparison {
  switch (checker.kind) {
    case 'exact':
      return compareLines(output, expected);
    case 'tokens':
      return compareTokens(output, expected);
    case 'float':
      return compareTokens(output, expected, (found, wanted) => floatsMatch(found, wanted, checker.error));
  }
}

/**
 * The original's `accepted`: true or false when the execute step succeeded and a non-empty standard was
 * given; null otherwise (no standard, or the task did not get as far as a successful execute).
 */
export function judge(executeSucceeded: boolean, output: Buffer, standard: Buffer): boolean | null {
  if (!executeSucceeded || standard.length === 0) return null;
  return compareLines(output, standard).verdict === 'accepted';
}
