// One delivery of a task's callback (issue 17): a POST of its JSON to the task's callback_url, signed,
// only to an allowed host, and only to an address the allow list lets callbacks reach. The host is
// resolved here and the connection made to the very address that was checked (no second lookup that DNS
// could answer differently); redirects are not followed; the whole exchange has a deadline.
import { createHmac } from 'node:crypto';
import dns from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { LookupAddress } from 'node:dns';
import { describeError } from '../common/errors';
import { VERSION } from '../common/version';
import type { CallbackAllowList } from '../task/callback-allow';

/** Bytes of a receiver's answer read (and thrown away) before the connection is closed. */
const RESPONSE_KEEP_BYTES = 64 * 1024;

/** The header carrying the body's HMAC-SHA256 with the operator's secret: `sha256=<hex>`. */
export const SIGNATURE_HEADER = 'x-kv2-signature';

/** How a delivery went: delivered, or failed (worth another attempt, or not). */
export type PostOutcome = { delivered: true; status: number } | { delivered: false; retry: boolean; reason: string };

/** `sha256=<hex>` of `body` with `secret`, as the signature header carries it. */
export function signature(secret: Buffer, body: Buffer): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

/** A lookup that answers only with addresses the allow list lets callbacks reach. */
function guardedLookup(allow: CallbackAllowList): net.LookupFunction {
  return (hostname, options, callback) => {
    dns.lookup(hostname, { all: true }, (error, addresses) => {
      if (error) return callback(error, '', 0);
      const list = addresses as LookupAddress[];
      const allowed = list.filter((entry) => allow.checkAddress(entry.address) === undefined);
      if (allowed.length === 0) {
        const why = list.length > 0 ? allow.checkAddress(list[0]!.address) : 'it resolves to no address';
        return callback(Object.assign(new Error(`callback to ${hostname} refused: ${why}`), { code: 'KV2_CALLBACK_REFUSED' }), '', 0);
      }
      if ((options as { all?: boolean }).all) return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, allowed);
      callback(null, allowed[0]!.address, allowed[0]!.family);
    });
  };
}

export interface CallbackPost {
  url: string;
  body: Buffer;
  /** The task's id: the idempotency key a receiver can tell repeated deliveries by. */
  id: string;
  /** Deliveries tried before this one. */
  attempt: number;
  secret: Buffer | undefined;
  allow: CallbackAllowList;
  timeoutMs: number;
}

/** POSTs one callback; never throws. */
export function postCallback(post: CallbackPost): Promise<PostOutcome> {
  let url: URL;
  try {
    url = new URL(post.url);
  } catch {
    return Promise.resolve({ delivered: false, retry: false, reason: 'the callback URL is not a URL' });
  }
  // The allow list may have changed since the task was submitted: it is checked again, as it is now.
  const refusal = post.allow.refusal(url);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const addressRefusal = net.isIP(host) ? post.allow.checkAddress(host) : undefined;
  if (refusal || addressRefusal) return Promise.resolve({ delivered: false, retry: false, reason: refusal ?? `callback to ${host} refused: ${addressRefusal}` });
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'content-length': String(post.body.length),
    'user-agent': `kv2/${VERSION}`,
    'idempotency-key': post.id,
    'x-kv2-task': post.id,
    'x-kv2-delivery-attempt': String(post.attempt + 1),
  };
  if (post.secret) headers[SIGNATURE_HEADER] = signature(post.secret, post.body);
  const client = url.protocol === 'https:' ? https : http;
  return new Promise<PostOutcome>((resolve) => {
    let settled = false;
    const finish = (outcome: PostOutcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(outcome);
    };
    const request = client.request(url, { method: 'POST', headers, lookup: guardedLookup(post.allow), agent: false }, (response) => {
      const status = response.statusCode ?? 0;
      let seen = 0;
      response.on('data', (chunk: Buffer) => {
        seen += chunk.length;
        if (seen > RESPONSE_KEEP_BYTES) response.destroy();
      });
      response.on('error', () => undefined);
      response.resume();
      if (status >= 200 && status < 300) finish({ delivered: true, status });
      else if (status >= 300 && status < 400) finish({ delivered: false, retry: false, reason: `the receiver answered HTTP ${status} (a redirect: callbacks do not follow redirects)` });
      else if (status === 408 || status === 429 || status >= 500) finish({ delivered: false, retry: true, reason: `the receiver answered HTTP ${status}` });
      else finish({ delivered: false, retry: false, reason: `the receiver answered HTTP ${status}` });
    });
    const timer = setTimeout(() => {
      request.destroy(new Error(`no answer within ${post.timeoutMs} ms`));
    }, post.timeoutMs);
    request.on('error', (error: NodeJS.ErrnoException) => {
      finish({ delivered: false, retry: error.code !== 'KV2_CALLBACK_REFUSED', reason: describeError(error) });
    });
    request.end(post.body);
  });
}
