// The judicator's side of joining and renewing: `POST /pki/join` (a new node: join token + CSR) and
// `POST /pki/renew` (a member: its current certificate, over mutual TLS, + CSR), answered with the signed
// certificate and the CA certificate. Every issued certificate is recorded for revocation first; one that
// cannot be recorded is never handed out. JoinServer's methods take the parsed JSON body and answer
// `{ status, body }`, so the judicator's Fastify RPC server can mount them as routes; pkiRequestHandler
// mounts them on a plain node:https server.
//
// Why the secret travels (inside TLS) instead of an HMAC over the CSR: the client sends it only after
// the server proved, in the handshake, a judicator certificate chaining to the CA the token pins, so only
// a judicator ever sees it, and TLS itself makes a recorded request useless to replay. An HMAC would make
// the cluster keep a MAC key as good as the secret, where now it keeps only a hash (a leak of etcd's
// data gives no way to join). And a request replayed by someone who somehow had it would only get a
// certificate for the original CSR's key, which the replayer does not hold.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { z } from 'zod';
import { describeError, InvalidInputError } from '../common/errors';
import type { Logger } from '../common/logging';
import type { CertificateAuthority } from './certificate-authority';
import { readCsr } from './csr';
import { checkNodeName, ROLES, type CertIdentity, type Role } from './identity';
import { parseJoinToken, secretMatches } from './join-token';
import { peerIdentity, whyNoIdentity } from './peer-identity';
import type { IssuedRecord, PkiStore } from './pki-store';

export const JOIN_PATH = '/pki/join';
export const RENEW_PATH = '/pki/renew';
export const PKI_PROTOCOL_VERSION = 1;
/** Largest join or renew request body, bytes (a CSR is about 400 bytes). */
export const MAX_PKI_BODY_BYTES = 64 * 1024;
/** Longest a client may take to send its request body, ms. */
export const PKI_BODY_TIMEOUT_MS = 10_000;

const hostsSchema = z.array(z.string().max(253)).max(32).optional();
const joinRequestSchema = z
  .object({
    version: z.literal(PKI_PROTOCOL_VERSION),
    token: z.string().max(256),
    role: z.enum(ROLES),
    name: z.string().max(128),
    hosts: hostsSchema,
    csr: z.string().max(16 * 1024),
  })
  .strict();
const renewRequestSchema = z.object({ version: z.literal(PKI_PROTOCOL_VERSION), hosts: hostsSchema, csr: z.string().max(16 * 1024) }).strict();

export type JoinRequest = z.infer<typeof joinRequestSchema>;
export type RenewRequest = z.infer<typeof renewRequestSchema>;

export interface IssueResponse {
  version: typeof PKI_PROTOCOL_VERSION;
  /** The node certificate (PEM). */
  certificate: string;
  /** The cluster CA certificate (PEM). */
  ca: string;
  /** The CA key (PEM), only to a node joining as a judicator, so that every judicator can sign. */
  caKey?: string;
}

export interface PkiAnswer {
  status: number;
  body: IssueResponse | { error: string };
}

export interface JoinServerOptions {
  ca: CertificateAuthority;
  store: PkiStore;
  logger: Logger;
  /** Life of the certificates this judicator issues, ms (default LEAF_LIFETIME_MS). */
  leafLifetimeMs?: number;
  /**
   * Give the CA key to nodes joining as judicators (default true). A judicator token is then as powerful
   * as the CA key, which a judicator holds anyway: a node with a judicator certificate is root in etcd.
   */
  shareCaKeyWithJudicators?: boolean;
}

/** Where a request came from, for the log. */
export interface RequestContext {
  remote?: string;
}

const refuse = (status: number, error: string): PkiAnswer => ({ status, body: { error } });

function validationMessage(error: z.ZodError): string {
  return `bad request: ${error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ')}`;
}

export class JoinServer {
  constructor(private readonly options: JoinServerOptions) {}

  /** A new node's join: checks the token (known, unexpired, right secret, role allowed), then signs. */
  async join(body: unknown, context: RequestContext = {}): Promise<PkiAnswer> {
    const parsed = joinRequestSchema.safeParse(body);
    if (!parsed.success) return refuse(400, validationMessage(parsed.error));
    const request = parsed.data;
    const log = this.options.logger.child({ remote: context.remote, role: request.role, node: request.name });
    try {
      checkNodeName(request.name);
      const token = parseJoinToken(request.token);
      if (token.caFingerprint !== this.options.ca.fingerprint) {
        return this.refused(log, 400, `the join token was made for another cluster (CA ${token.caFingerprint}; this cluster's is ${this.options.ca.fingerprint})`);
      }
      const record = await this.options.store.token(token.id);
      if (!record) return this.refused(log, 401, `join token ${token.id} is not known to this cluster (never made here, removed, or expired): make a new one with \`kv2 join-token create\``);
      if (Date.parse(record.expiresAt) <= Date.now()) {
        return this.refused(log, 401, `join token ${token.id} expired at ${record.expiresAt}: make a new one with \`kv2 join-token create\``);
      }
      if (!secretMatches(token.secret, record.secretSha256)) return this.refused(log, 401, `join token ${token.id}: the secret is wrong`);
      if (!record.roles.includes(request.role)) {
        return this.refused(log, 403, `join token ${token.id} lets a node join as ${record.roles.join(' or ')}, not as ${request.role}`);
      }
      const answer = await this.sign(request.role, request.name, request.csr, request.hosts ?? [], { via: 'join', tokenId: token.id }, log);
      if (request.role === 'judicator' && this.options.shareCaKeyWithJudicators !== false && answer.status === 200) {
        (answer.body as IssueResponse).caKey = this.options.ca.keyPem;
      }
      return answer;
    } catch (error) {
      return this.failed(log, error);
    }
  }

  /**
   * A member's renewal: `peer` is the identity of its current, verified certificate (peerIdentity());
   * the new certificate keeps its role and name. A revoked node gets nothing.
   */
  async renew(body: unknown, peer: CertIdentity | undefined, context: RequestContext & { whyNoPeer?: string } = {}): Promise<PkiAnswer> {
    if (!peer) return refuse(401, `renewal needs the current certificate of this cluster: ${context.whyNoPeer ?? 'none was presented'}; a node whose certificate expired joins again with a new token`);
    const parsed = renewRequestSchema.safeParse(body);
    if (!parsed.success) return refuse(400, validationMessage(parsed.error));
    const log = this.options.logger.child({ remote: context.remote, role: peer.role, node: peer.name, serial: peer.serial });
    try {
      const check = (await this.options.store.revocations()).check(peer);
      if (check.revoked) return this.refused(log, 403, check.reason);
      return await this.sign(peer.role, peer.name, parsed.data.csr, parsed.data.hosts ?? [], { via: 'renew' }, log);
    } catch (error) {
      return this.failed(log, error);
    }
  }

  private async sign(role: Role, name: string, csr: string, hosts: string[], how: Pick<IssuedRecord, 'via' | 'tokenId'>, log: Logger): Promise<PkiAnswer> {
    const publicKey = await readCsr(csr);
    const issued = await this.options.ca.issue({ publicKey, role, name, hosts, lifetimeMs: this.options.leafLifetimeMs });
    const { identity } = issued;
    await this.options.store.recordIssued({
      serial: identity.serial,
      name,
      role,
      notBefore: identity.notBefore.toISOString(),
      notAfter: identity.notAfter.toISOString(),
      ...how,
    });
    log.info({ serial: identity.serial, notAfter: identity.notAfter.toISOString(), via: how.via, tokenId: how.tokenId }, 'issued a certificate');
    return { status: 200, body: { version: PKI_PROTOCOL_VERSION, certificate: issued.pem, ca: this.options.ca.certPem } };
  }

  private refused(log: Logger, status: number, message: string): PkiAnswer {
    log.warn({ status }, `refused a certificate: ${message}`);
    return refuse(status, message);
  }

  /** Bad input is the client's (400); anything else (etcd unreachable) may pass, so 503: try another judicator. */
  private failed(log: Logger, error: unknown): PkiAnswer {
    if (error instanceof InvalidInputError) return this.refused(log, 400, error.message);
    log.error({ err: describeError(error) }, 'could not issue a certificate');
    return refuse(503, `this judicator cannot issue certificates now: ${describeError(error)}`);
  }
}

/** Reads a request body of at most `limit` bytes within `timeoutMs`; a status and reason otherwise. */
function readBody(req: IncomingMessage, limit: number, timeoutMs: number): Promise<{ text: string } | { status: number; error: string }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const timer = setTimeout(() => finish({ status: 408, error: `the request body did not arrive within ${timeoutMs} ms` }), timeoutMs);
    let done = false;
    function finish(result: { text: string } | { status: number; error: string }) {
      if (done) return;
      done = true;
      clearTimeout(timer);
      req.removeAllListeners('data');
      if (!('text' in result)) req.resume();
      resolve(result);
    }
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) finish({ status: 413, error: `the request body is larger than ${limit} bytes` });
      else chunks.push(chunk);
    });
    req.on('end', () => finish({ text: Buffer.concat(chunks).toString('utf8') }));
    req.on('error', (error) => finish({ status: 400, error: `the request body could not be read: ${describeError(error)}` }));
  });
}

function send(res: ServerResponse, answer: PkiAnswer, extraHeaders: Record<string, string> = {}): void {
  const text = JSON.stringify(answer.body);
  res.writeHead(answer.status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...extraHeaders });
  res.end(text);
}

/**
 * A node:http(s) request handler for the two PKI routes: it answers them and returns true, or returns
 * false for any other path (the caller answers those). Mount it on a server made with
 * LiveIdentity.serverOptions({ requireClientCertificate: false }), so nodes without a certificate can join.
 */
export function pkiRequestHandler(
  server: JoinServer,
  options: { maxBodyBytes?: number; bodyTimeoutMs?: number } = {},
): (req: IncomingMessage, res: ServerResponse) => boolean {
  const limit = options.maxBodyBytes ?? MAX_PKI_BODY_BYTES;
  const timeoutMs = options.bodyTimeoutMs ?? PKI_BODY_TIMEOUT_MS;
  return (req, res) => {
    let path: string;
    try {
      path = new URL(req.url ?? '/', 'https://judicator').pathname;
    } catch {
      return false;
    }
    if (path !== JOIN_PATH && path !== RENEW_PATH) return false;
    void (async () => {
      if (req.method !== 'POST') return send(res, refuse(405, `${path} takes POST only`), { allow: 'POST' });
      const body = await readBody(req, limit, timeoutMs);
      if (!('text' in body)) return send(res, refuse(body.status, body.error), { connection: 'close' });
      let json: unknown;
      try {
        json = JSON.parse(body.text);
      } catch {
        return send(res, refuse(400, 'the request body is not JSON'));
      }
      const context = { remote: req.socket.remoteAddress };
      const socket = req.socket as TLSSocket;
      const answer =
        path === JOIN_PATH
          ? await server.join(json, context)
          : await server.renew(json, 'authorized' in socket ? peerIdentity(socket) : undefined, {
              ...context,
              whyNoPeer: 'authorized' in socket ? whyNoIdentity(socket) : 'the connection is not TLS',
            });
      send(res, answer);
    })().catch((error: unknown) => {
      // Unreachable unless the response itself fails (client gone): nothing more can be sent.
      if (!res.headersSent) send(res, refuse(503, describeError(error)));
    });
    return true;
  };
}
