// Copying a record's optional fields: only those that hold a value, so a field that is missing stays
// missing in what is written (a BSON document would keep an undefined as null; JSON drops it anyway).

/** The fields `keys` of `source` that are not undefined, as a new object (in the order of `keys`). */
export function definedFields<T extends object, K extends keyof T>(source: T, keys: readonly K[]): Partial<Pick<T, K>> {
  const out: Partial<Pick<T, K>> = {};
  for (const key of keys) {
    if (source[key] !== undefined) out[key] = source[key];
  }
  return out;
}
