// API tokens (addition): when the gateway has any (`--server-token`, `--server-tokens-file`), every
// /api call must carry `Authorization: Bearer <token>`; the web pages and /metrics stay open (the UI
// asks for the token and sends it). Tokens are compared in constant time.
import { createHash, timingSafeEqual } from 'node:crypto';
import fs from 'node:fs';
import { ConfigError } from '../../common/errors';
import { UnauthorizedError } from './errors';

const digest = (token: string) => createHash('sha256').update(token, 'utf8').digest();

/** The tokens of a tokens file: one a line, blank lines and `#` comments skipped. */
export function readTokensFile(file: string): string[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError(`cannot read the API tokens file ${file}: ${(error as Error).message}`);
  }
  return text
    .split('\n')
    .map((line) => line.replace(/#.*$/, '').trim())
    .filter(Boolean);
}

export class TokenCheck {
  private readonly digests: Buffer[];

  constructor(tokens: readonly string[]) {
    this.digests = [...new Set(tokens)].map(digest);
  }

  get enabled(): boolean {
    return this.digests.length > 0;
  }

  /** Throws UnauthorizedError unless the Authorization header carries one of the tokens. */
  check(authorization: string | undefined): void {
    if (!this.enabled) return;
    const match = /^Bearer\s+(.+)$/i.exec(authorization?.trim() ?? '');
    if (!match) throw new UnauthorizedError('this gateway needs an API token: send the header "Authorization: Bearer <token>"');
    const given = digest(match[1]!.trim());
    // Every digest is compared, so the time taken says nothing about which one was close.
    let found = false;
    for (const known of this.digests) found = timingSafeEqual(known, given) || found;
    if (!found) throw new UnauthorizedError('the API token is not one this gateway accepts');
  }
}
