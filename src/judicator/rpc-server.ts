// The judicator's RPC server (Fastify on HTTPS): `POST /rpc/<method>` with the original's methods and
// result codes (plus wait, and events for the gateway's task event streams), every input validated with a reason, and a judicator that lost its etcd quorum answering
// 503 so clients go to another one. Every call needs a certificate of the cluster CA that is not revoked,
// and its role must be allowed the method (METHOD_ROLES); an executor reports only under the name in its
// certificate. The port also takes joins (`POST /pki/join`, no certificate yet: the join token is the
// credential) and renewals (`POST /pki/renew`), so the TLS handshake asks for a client certificate but
// does not require one, and each route decides. `GET /ping` and `GET /health` answer anyone (liveness
// only, for load balancers and operators' curl); `GET /metrics` needs a cluster certificate.
import type { IncomingMessage } from 'node:http';
import type { Server as TlsServer, TLSSocket } from 'node:tls';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { InvalidInputError, TooLargeError, describeError } from '../common/errors';
import { idTime } from '../common/ids';
import type { Logger } from '../common/logging';
import { parseTime } from '../common/time';
import type { CertIdentity } from '../pki/identity';
import { JOIN_PATH, MAX_PKI_BODY_BYTES, RENEW_PATH, type JoinServer, type PkiAnswer } from '../pki/join-server';
import type { LiveIdentity } from '../pki/live-identity';
import { peerIdentity, whyNoIdentity } from '../pki/peer-identity';
import type { RevocationList } from '../pki/revocation';
import { METHOD_ROLES, RPC_PATH, UNKNOWN_METHOD, requestSchemas, type ExecutorReportInfo, type RpcMethod, type RpcResponses } from '../rpc/contract';
import { inputFromWire, liveFromWire, resultFromWire, taskToWire } from '../rpc/wire';
import type { TaskStore } from '../store/task-store';
import { CallbackAllowList } from '../task/callback-allow';
import { MAX_CLIENT_ID_SKEW_MS } from '../task/limits';
import { checkTaskInput } from '../task/schema';
import { ReturnCode, briefOf, type TaskStatus } from '../task/types';
import { Scheduler } from './scheduler';
import type { EventsRequest, TaskEventHub } from './task-events';
import { waitForTask } from './wait';

export interface RpcServerSettings {
  /** Largest request body, bytes (a task is at most the task size limit, plus base64). */
  bodyLimit: number;
  /** Most tasks one search returns when it asks for all (limit 0). */
  maxSearchResults: number;
  /** The cluster's task size limit (--task-max-size), bytes. */
  maxTaskSize: number;
  /** How far (ms) a client-chosen task id's time may be from this judicator's clock (default MAX_CLIENT_ID_SKEW_MS). */
  clientIdSkewMs?: number;
  /** Largest text field once inflated, bytes (default MAX_INFLATED_TEXT_BYTES). */
  maxInflatedBytes?: number;
  /** Hosts a task's callback_url may name (--task-callback-allow); none by default. */
  callbackAllow?: readonly string[];
  /** Milliseconds without a report after which `executors` shows an executor as gone (`--executor-ttl`). */
  executorTtlMs: number;
}

export interface RpcDependencies {
  store: TaskStore;
  scheduler: Scheduler;
  /** The `events` method's task changes and live records. */
  events: TaskEventHub;
  /** This judicator's certificate: the server's, renewed in place. */
  identity: LiveIdentity;
  /** The cluster's revocations as last read: every call's certificate is checked against them. */
  revocations: () => RevocationList;
  /** Signs the certificates of joining and renewing nodes. */
  joinServer: JoinServer;
  /** Whether this judicator can serve (registered, etcd quorum reachable), and why not. */
  availability: () => { ok: true } | { ok: false; reason: string };
  /**
   * The key of the executor process registered under a name (its record in the store), to check that a
   * report comes from the process it says; `reread` skips any cache.
   */
  executorKey: (name: string, options?: { reread?: boolean }) => Promise<string | undefined>;
  /** The `judicators` method. */
  judicators: () => Promise<RpcResponses['judicators']['judicators']>;
  /** The `join_token_create` method: a new token, or an InvalidInputError. */
  createJoinToken: (request: { roles: CertIdentity['role'][]; ttlMs: number; description?: string }, by: CertIdentity) => Promise<Omit<RpcResponses['join_token_create'], 'result' | 'message'>>;
  /** The `revoke` method: the serials revoked. */
  revoke: (request: { name: string; role?: CertIdentity['role']; reason?: string }, by: CertIdentity) => Promise<string[]>;
  /** Routes that need a cluster certificate (metrics). */
  extraRoutes?: (app: FastifyInstance) => void;
  /** Called after every RPC with its method, result code and duration. */
  observe?: (method: string, result: number, seconds: number, answer: unknown) => void;
}

type Answer<M extends RpcMethod> = RpcResponses[M];

/** The shape of a refusal for each method: the original's empty fields plus `message`. */
function refusal<M extends RpcMethod>(method: M, result: ReturnCode, message: string): Answer<M> {
  const empty: Record<RpcMethod, object> = {
    ping: {},
    add: { id: null },
    cancel: {},
    search: { pages: 0, tasks: [] },
    get: { task: null },
    wait: { task: null },
    report: { cancel: [], assign: [] },
    executors: { executors: [] },
    events: { cursor: '', reset: false, changes: [], live: [] },
    judicators: { judicators: [] },
    join_token_create: { token: null },
    revoke: { serials: [] },
  };
  return { result, message, ...empty[method] } as Answer<M>;
}

/** Routes anyone may ask (liveness, and the PKI routes, which check their own credentials). */
const OPEN_ROUTES = new Set(['/ping', '/health', JOIN_PATH, RENEW_PATH]);

/** Who is calling: the verified, unrevoked certificate of the connection, or why there is none (HTTP status and reason). */
type Caller = { peer: CertIdentity } | { status: 401 | 403; reason: string };

function callerOf(raw: IncomingMessage, revocations: () => RevocationList): Caller {
  const socket = raw.socket as TLSSocket;
  const peer = peerIdentity(socket);
  if (!peer) return { status: 401, reason: whyNoIdentity(socket) };
  const check = revocations().check(peer);
  if (check.revoked) return { status: 403, reason: `this certificate is revoked: ${check.reason}` };
  return { peer };
}

export function createRpcServer(settings: RpcServerSettings, deps: RpcDependencies, logger: Logger): FastifyInstance {
  const app = Fastify({
    logger: false,
    bodyLimit: settings.bodyLimit,
    forceCloseConnections: true,
    https: deps.identity.serverOptions({ requireClientCertificate: false }),
  });
  // Renewals swap the server's certificate for new handshakes; open connections keep theirs.
  deps.identity.attachServer(app.server as unknown as TlsServer);
  const callbacks = new CallbackAllowList(settings.callbackAllow ?? []);
  const callers = new WeakMap<FastifyRequest, CertIdentity>();

  // Every route but the open ones needs a cluster certificate, not revoked.
  app.addHook('onRequest', async (request, reply) => {
    const path = request.url.split('?')[0]!;
    if (OPEN_ROUTES.has(path)) return;
    const caller = callerOf(request.raw, deps.revocations);
    if ('peer' in caller) {
      callers.set(request, caller.peer);
      return;
    }
    const method = path.startsWith(`${RPC_PATH}/`) ? path.slice(RPC_PATH.length + 1) : undefined;
    const known = method && method in requestSchemas ? (method as RpcMethod) : 'ping';
    logger.warn({ remote: request.socket.remoteAddress, path, status: caller.status }, `refused a call without a usable cluster certificate: ${caller.reason}`);
    return reply.code(caller.status).send(refusal(known, ReturnCode.UNAUTHORIZED, caller.reason));
  });

  app.get('/ping', async () => ({ result: ReturnCode.OK }));
  app.get('/health', async (_request, reply) => {
    const state = deps.availability();
    return state.ok ? { healthy: true } : reply.code(503).send({ healthy: false, reason: state.reason });
  });
  deps.extraRoutes?.(app);

  // Joins and renewals: the join server's answers as they are ({ error } when refused).
  const sendPki = (reply: FastifyReply, answer: PkiAnswer) => reply.code(answer.status).send(answer.body);
  app.post(JOIN_PATH, { bodyLimit: MAX_PKI_BODY_BYTES }, async (request, reply) =>
    sendPki(reply, await deps.joinServer.join(request.body, { remote: request.socket.remoteAddress })),
  );
  app.post(RENEW_PATH, { bodyLimit: MAX_PKI_BODY_BYTES }, async (request, reply) => {
    const caller = callerOf(request.raw, deps.revocations);
    return sendPki(
      reply,
      await deps.joinServer.renew(request.body, 'peer' in caller ? caller.peer : undefined, {
        remote: request.socket.remoteAddress,
        whyNoPeer: 'peer' in caller ? undefined : caller.reason,
      }),
    );
  });

  // Bodies that are not JSON, or too large, get the method's refusal shape instead of Fastify's error.
  app.setErrorHandler((error: Error & { statusCode?: number; code?: string }, request, reply) => {
    if (request.url.startsWith('/pki/')) {
      const status = error.code === 'FST_ERR_CTP_BODY_TOO_LARGE' ? 413 : (error.statusCode ?? 500) < 500 ? 400 : 500;
      return reply.code(status).send({ error: `bad request: ${error.message}` });
    }
    const method = (request.params as { method?: string }).method as RpcMethod | undefined;
    const known = method && Object.hasOwn(requestSchemas, method) ? method : 'ping';
    if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      return reply.code(413).send(refusal(known, ReturnCode.TOO_LARGE, `request larger than ${settings.bodyLimit} bytes`));
    }
    if ((error.statusCode ?? 500) < 500) {
      return reply.code(400).send(refusal(known, ReturnCode.INVALID_INPUT, `bad request: ${error.message}`));
    }
    logger.error({ err: describeError(error), method }, 'RPC failed');
    return reply.code(500).send(refusal(known, ReturnCode.ERROR, `internal error: ${error.message}`));
  });

  app.post<{ Params: { method: string } }>(`${RPC_PATH}/:method`, async (request, reply) => {
    const method = request.params.method as RpcMethod;
    // Own keys only: `constructor` or `__proto__` is no method (it was a 500 from the prototype's).
    if (!Object.hasOwn(requestSchemas, method)) {
      return reply.code(404).send({ result: ReturnCode.INVALID_INPUT, message: UNKNOWN_METHOD(request.params.method) });
    }
    const peer = callers.get(request)!;
    if (!METHOD_ROLES[method].includes(peer.role)) {
      logger.warn({ remote: request.socket.remoteAddress, method, role: peer.role, node: peer.name }, `refused ${method} to ${peer.role} ${peer.name}: not its role's`);
      return reply.code(403).send(refusal(method, ReturnCode.UNAUTHORIZED, `${peer.role === 'executor' || peer.role === 'admin' ? 'an' : 'a'} ${peer.role} certificate may not call ${method} (it is for ${METHOD_ROLES[method].join(', ')})`));
    }
    const state = deps.availability();
    if (!state.ok && method !== 'ping') {
      return reply.code(503).send(refusal(method, ReturnCode.ERROR, `this judicator cannot serve: ${state.reason}; try another judicator`));
    }
    const parsed = requestSchemas[method].safeParse(request.body ?? {});
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      return refusal(method, ReturnCode.INVALID_INPUT, `${issue.path.join('.') || 'request'}: ${issue.message}`);
    }
    const started = process.hrtime.bigint();
    try {
      const answer = await handlers[method](parsed.data as never, peer, reply);
      const result = (answer as { result?: number }).result ?? ReturnCode.OK;
      deps.observe?.(method, result, Number(process.hrtime.bigint() - started) / 1e9, answer);
      return answer;
    } catch (error) {
      if (error instanceof TooLargeError) return refusal(method, ReturnCode.TOO_LARGE, error.message);
      if (error instanceof InvalidInputError) return refusal(method, ReturnCode.INVALID_INPUT, error.message);
      logger.error({ method, err: describeError(error) }, `RPC ${method} failed: ${describeError(error)}`);
      // A store that cannot be reached is this judicator's problem, not the caller's: let them fail over.
      return reply.code(503).send(refusal(method, ReturnCode.ERROR, `${method} failed on this judicator: ${describeError(error)}`));
    }
  });

  const handlers: { [M in RpcMethod]: (body: never, peer: CertIdentity, reply: FastifyReply) => Promise<Answer<M> | FastifyReply> } = {
    ping: async () => ({ result: ReturnCode.OK }),

    add: async (body: { task: Parameters<typeof inputFromWire>[0]; id?: string }) => {
      const input = inputFromWire(body.task);
      try {
        checkTaskInput(input, { maxTaskSize: settings.maxTaskSize, maxInflatedBytes: settings.maxInflatedBytes });
        // The gateway refused it already; a client of the RPC itself meets the same rule here.
        const refusal = input.callback_url !== undefined ? callbacks.refusal(new URL(input.callback_url)) : undefined;
        if (refusal) throw new InvalidInputError(refusal);
      } catch (error) {
        if (error instanceof InvalidInputError) return refusal('add', ReturnCode.INVALID_INPUT, error.message);
        throw error;
      }
      if (body.id !== undefined && Math.abs(idTime(body.id) - Date.now()) > (settings.clientIdSkewMs ?? MAX_CLIENT_ID_SKEW_MS)) {
        return refusal('add', ReturnCode.INVALID_INPUT, `id ${body.id} was not made just now (its time is ${new Date(idTime(body.id)).toISOString()})`);
      }
      const id = await deps.store.add(input, body.id);
      return { result: ReturnCode.OK, id };
    },

    cancel: async (body: { id: string }) => {
      const outcome = await deps.store.cancel(body.id);
      return outcome.found
        ? { result: ReturnCode.OK }
        : { result: ReturnCode.NOT_EXIST, message: `task ${body.id} does not exist or is already done` };
    },

    search: async (body: { id?: string | null; user?: number | null; start_time?: string | null; end_time?: string | null; old_to_new?: boolean | null; limit?: number | null; page?: number | null }) => {
      const startMs = body.start_time ? parseTime(body.start_time) : undefined;
      if (body.start_time && startMs === undefined) return refusal('search', ReturnCode.INVALID_INPUT, `start_time "${body.start_time}" is not an ISO-8601 time`);
      const endMs = body.end_time ? parseTime(body.end_time) : undefined;
      if (body.end_time && endMs === undefined) return refusal('search', ReturnCode.INVALID_INPUT, `end_time "${body.end_time}" is not an ISO-8601 time`);
      const limit = body.limit ?? 0;
      const result = await deps.store.search({
        id: body.id || undefined,
        user: body.user ?? undefined,
        startMs,
        endMs,
        oldToNew: body.old_to_new ?? false,
        limit: limit === 0 ? settings.maxSearchResults : limit,
        page: limit === 0 ? 0 : body.page ?? 0,
      });
      const pages = limit === 0 ? (result.total > 0 ? 1 : 0) : result.pages;
      return { result: ReturnCode.OK, pages, tasks: result.tasks.map(briefOf) };
    },

    get: async (body: { id: string }) => {
      const task = await deps.store.get(body.id);
      return task ? { result: ReturnCode.OK, task: taskToWire(task) } : { result: ReturnCode.NOT_EXIST, task: null, message: `task ${body.id} does not exist` };
    },

    wait: async (body: { id: string; timeout_ms: number }, _raw, reply) => {
      // The caller hanging up (the gateway's client left) ends the wait: the response's socket closing says so.
      const hungUp = new AbortController();
      reply.raw.once('close', () => hungUp.abort());
      const task = await waitForTask(deps.store, body.id, body.timeout_ms, hungUp.signal);
      return task ? { result: ReturnCode.OK, task: taskToWire(task) } : { result: ReturnCode.NOT_EXIST, task: null, message: `task ${body.id} does not exist` };
    },

    report: async (
      body: {
        executor: string;
        complete: { id: string; status: number; result: Parameters<typeof resultFromWire>[0] }[];
        executing: { id: string; status: number }[];
        vacant: number;
        release?: string[];
        wait_ms?: number;
        key?: string;
        fresh?: boolean;
        live?: Parameters<typeof liveFromWire>[0][];
        info?: ExecutorReportInfo;
      },
      peer,
      reply,
    ) => {
      if (peer.role === 'executor' && body.executor !== peer.name) {
        return reply
          .code(403)
          .send(refusal('report', ReturnCode.UNAUTHORIZED, `this certificate is executor ${peer.name}'s: it may report only as ${peer.name}, not as ${body.executor}`));
      }
      const complete = body.complete.map((t) => ({ id: t.id, status: t.status as TaskStatus, result: resultFromWire(t.result) }));
      const executing = body.executing.map((t) => ({ id: t.id, status: t.status as TaskStatus }));
      const problem = Scheduler.checkStatuses({ complete, executing });
      if (problem) return refusal('report', ReturnCode.INVALID_INPUT, problem);
      // The newest process of a name (its first report is `fresh`) takes the name over; any other report
      // must carry the key on record. A mismatch against a cached key is read again before it is refused.
      if (!body.fresh) {
        let registered = await deps.executorKey(body.executor);
        if (registered !== undefined && registered !== body.key) registered = await deps.executorKey(body.executor, { reread: true });
        if (registered !== undefined && registered !== body.key) {
          return refusal('report', ReturnCode.UNAUTHORIZED, `executor name ${body.executor} is registered by another executor process; names must be unique`);
        }
      }
      // The executor hanging up (it has news, or it stopped) ends a held report at once. The response's
      // 'close' says so (the request's fires as soon as its body has been read).
      const hungUp = new AbortController();
      reply.raw.once('close', () => hungUp.abort());
      const answer = await deps.scheduler.report(
        {
          executor: body.executor,
          complete,
          executing,
          vacant: body.vacant,
          release: body.release ?? [],
          waitMs: body.wait_ms ?? 0,
          fresh: body.fresh ?? false,
          live: (body.live ?? []).map(liveFromWire),
          key: body.key,
          info: body.info,
        },
        hungUp.signal,
      );
      return { result: ReturnCode.OK, cancel: answer.cancel, assign: answer.assign.map(taskToWire) };
    },

    executors: async () => {
      const aliveSince = Date.now() - settings.executorTtlMs;
      const executors = (await deps.store.listExecutors()).map((e) => ({ ...e, alive: Date.parse(e.report_time) >= aliveSince }));
      return { result: ReturnCode.OK, executors };
    },

    events: async (body: EventsRequest, _raw, reply) => {
      // The caller hanging up (its gateway's streams all closed) ends the wait.
      const hungUp = new AbortController();
      reply.raw.once('close', () => hungUp.abort());
      return deps.events.poll(body, hungUp.signal);
    },

    judicators: async () => ({ result: ReturnCode.OK, judicators: await deps.judicators() }),

    join_token_create: async (body: { roles: CertIdentity['role'][]; ttl_ms: number; description?: string }, peer) => ({
      result: ReturnCode.OK,
      ...(await deps.createJoinToken({ roles: body.roles, ttlMs: body.ttl_ms, description: body.description }, peer)),
    }),

    revoke: async (body: { name: string; role?: CertIdentity['role']; reason?: string }, peer) => ({
      result: ReturnCode.OK,
      serials: await deps.revoke(body, peer),
    }),
  };

  return app;
}
