// Times in kv2 are UTC, written as ISO-8601 with an explicit offset ("2026-11-26T05:20:08.539Z").

export function isoTime(ms: number = Date.now()): string {
  return new Date(ms).toISOString();
}

/**
 * Parses a time given by a user or a client: ISO-8601 with or without an offset (none means UTC), or a
 * date alone. Returns ms since the epoch, or undefined if it is not a time.
 */
export function parseTime(text: string): number | undefined {
  const trimmed = text.trim();
  if (!/^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?)?(Z|[+-]\d{2}(:?\d{2})?)?$/i.test(trimmed)) return undefined;
  const hasOffset = /(Z|[+-]\d{2}(:?\d{2})?)$/i.test(trimmed) && /[T ]/.test(trimmed);
  let normalised = trimmed.replace(' ', 'T');
  // JavaScript reads a date-time without an offset as local time; kv2 means UTC.
  if (!hasOffset) normalised += normalised.includes('T') ? 'Z' : 'T00:00:00Z';
  // Date parses at most milliseconds: drop extra fraction digits (microseconds from Python clients).
  normalised = normalised.replace(/(\.\d{3})\d+/, '$1');
  const ms = Date.parse(normalised);
  return Number.isNaN(ms) ? undefined : ms;
}
