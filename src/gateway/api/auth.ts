// API tokens (addition): who is calling. When the gateway has any token (`--server-token`,
// `--server-tokens-file`), every /api route needs `Authorization: Bearer <token>`; the web pages and
// /metrics stay open (the UI asks for the token and sends it). A token is an admin's (sees and does
// everything) or a user's (submits as that user id and sees only that user's tasks: api/ownership.ts).
// Tokens are compared by their SHA-256 in constant time.
import { createHash, timingSafeEqual } from 'node:crypto';
import fs from 'node:fs';
import { ConfigError } from '../../common/errors';
import { MAX_INT } from '../../task/limits';
import { UnauthorizedError } from './errors';

/** Who made a request: an admin (or anyone, on a gateway without tokens), or the owner of one user id. */
export type Caller = { admin: true; open: boolean } | { admin: false; user: number };

/** A gateway without tokens: everyone may do everything, as in the original. */
export const OPEN_CALLER: Caller = { admin: true, open: true };

/** One token and whom it stands for. */
export interface TokenEntry {
  token: string;
  /** A user id, or 'admin'. */
  owner: number | 'admin';
}

const digest = (token: string) => createHash('sha256').update(token, 'utf8').digest();

/**
 * The tokens of a tokens file's text: `<token>` (an admin token, as before users existed), `<token> admin`
 * or `<token> <user id>` a line; blank lines and `#` comments skipped. A line that is none of these, or a
 * token given twice with two owners, is a ConfigError naming the line (the token itself is never quoted).
 */
export function parseTokens(text: string, source: string): TokenEntry[] {
  const entries = new Map<string, TokenEntry>();
  text.split('\n').forEach((raw, index) => {
    const words = raw.replace(/#.*$/, '').trim().split(/\s+/).filter(Boolean);
    if (words.length === 0) return;
    const where = `${source} line ${index + 1}`;
    if (words.length > 2) throw new ConfigError(`${where}: expected "<token>", "<token> admin" or "<token> <user id>", found ${words.length} words`);
    const [token, who = 'admin'] = words as [string, string?];
    let owner: number | 'admin';
    if (who === 'admin') owner = 'admin';
    else if (/^\d{1,10}$/.test(who) && Number(who) <= MAX_INT) owner = Number(who);
    else throw new ConfigError(`${where}: the owner must be "admin" or a user id from 0 to ${MAX_INT}`);
    const known = entries.get(token);
    if (known && known.owner !== owner) throw new ConfigError(`${where}: this token is given twice, for two owners`);
    entries.set(token, { token, owner });
  });
  return [...entries.values()];
}

/** The tokens of a tokens file (see parseTokens). */
export function readTokensFile(file: string): TokenEntry[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError(`cannot read the API tokens file ${file}: ${(error as Error).message}`);
  }
  return parseTokens(text, file);
}

/** Tokens of `--server-token`: admin tokens. */
export function adminTokens(tokens: readonly string[]): TokenEntry[] {
  return tokens.map((token) => ({ token, owner: 'admin' }));
}

export class TokenCheck {
  private readonly known: { digest: Buffer; owner: number | 'admin' }[];

  /**
   * `required`: tokens are needed even when there is none (a tokens file that is empty for now: the API
   * is then closed, never silently open).
   */
  constructor(
    entries: readonly TokenEntry[],
    private readonly required = false,
  ) {
    const byToken = new Map<string, TokenEntry>();
    // An admin entry wins over a user entry of the same token (a flag and a file line, say).
    for (const entry of entries) if (byToken.get(entry.token)?.owner !== 'admin') byToken.set(entry.token, entry);
    this.known = [...byToken.values()].map((entry) => ({ digest: digest(entry.token), owner: entry.owner }));
  }

  get enabled(): boolean {
    return this.required || this.known.length > 0;
  }

  /** How many tokens, and how many of them are users'. */
  get counts(): { tokens: number; users: number } {
    return { tokens: this.known.length, users: this.known.filter((k) => k.owner !== 'admin').length };
  }

  /** Who the Authorization header says is calling; throws UnauthorizedError when it is no known token. */
  identify(authorization: string | undefined): Caller {
    if (!this.enabled) return OPEN_CALLER;
    const match = /^Bearer\s+(.+)$/i.exec(authorization?.trim() ?? '');
    if (!match) throw new UnauthorizedError('this gateway needs an API token: send the header "Authorization: Bearer <token>"');
    const given = digest(match[1]!.trim());
    // Every digest is compared, so the time taken says nothing about which one was close.
    let found: number | 'admin' | undefined;
    for (const known of this.known) if (timingSafeEqual(known.digest, given) && found === undefined) found = known.owner;
    if (found === undefined) throw new UnauthorizedError('the API token is not one this gateway accepts');
    return found === 'admin' ? { admin: true, open: false } : { admin: false, user: found };
  }

  /** Throws UnauthorizedError unless the Authorization header carries one of the tokens. */
  check(authorization: string | undefined): void {
    this.identify(authorization);
  }
}
