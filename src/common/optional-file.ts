// Reading a small text file that may well be missing or unreadable (a CA certificate not made yet, a
// cgroup file this kernel lacks): its text, or undefined when it cannot be read; never an error.
import fs from 'node:fs';

export function readOptionalText(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}
