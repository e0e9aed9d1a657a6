// Reading a JSON file that must match a schema (module config files, a backup's manifest): one clear
// message per problem, naming the file and, when the content does not fit, the field.
import fs from 'node:fs';
import type { z } from 'zod';

export interface JsonFileReading {
  /** How messages name the file (default: its path). */
  name?: string;
  /** The error thrown (default: Error). */
  error?: new (message: string) => Error;
  /** What a missing file means, said after "<name> is missing: " (default: the read error is reported). */
  whenMissing?: string;
}

export function readJsonFile<T>(file: string, schema: z.ZodType<T>, how: JsonFileReading = {}): T {
  const name = how.name ?? file;
  const Failure = how.error ?? Error;
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    if (how.whenMissing && (error as NodeJS.ErrnoException).code === 'ENOENT') throw new Failure(`${name} is missing: ${how.whenMissing}`);
    throw new Failure(`cannot read ${name}: ${(error as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new Failure(`${name} is not valid JSON: ${(error as Error).message}`);
  }
  const result = schema.safeParse(parsed);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const where = issue.path.length ? `field "${issue.path.join('.')}"` : 'the top level';
    throw new Failure(`${name}: ${where}: ${issue.message}`);
  }
  return result.data;
}
