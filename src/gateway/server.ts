// The gateway's HTTP server (Fastify), not yet listening: the original's API routes, the additions
// (batch, health, metrics, tokens), the web UI, and one error handler that answers every failure as
// JSON with a result code. Built from its dependencies so tests can run it in-process against real
// judicators.
import formbody from '@fastify/formbody';
import multipart from '@fastify/multipart';
import Fastify, { type FastifyInstance } from 'fastify';
import type { Logger } from '../common/logging';
import { CallbackAllowList } from '../task/callback-allow';
import { ReturnCode } from '../task/types';
import { TokenCheck, adminTokens } from './api/auth';
import { registerBatchRoute } from './api/batch';
import { registerClusterRoutes } from './api/cluster';
import type { ApiContext } from './api/context';
import { sendError } from './api/errors';
import { callerOf } from './api/ownership';
import { JudicatorCalls, type RpcCaller } from './api/judicator';
import { registerTaskRoutes } from './api/tasks';
import { registerEventRoutes } from './api/events';
import { whoamiAnswerSchema } from './api/answers';
import { OpenApiRoutes, registerOpenApiRoute, type RouteDoc } from './api/openapi';
import { DEFAULT_WAIT_MAX_HELD, TaskWaits } from './api/wait';
import { DEFAULT_EVENTS_LOG_CHANGES, TaskEventFollower } from './task-events';
import type { JudicatorListing } from './judicator-link';
import { GatewayMetrics, type ClusterSnapshot } from './metrics';
import type { GatewayConfig } from './config';
import { registerUiRoutes } from './ui-routes';
import type { UiFiles } from './ui-files';

export interface GatewayServerOptions {
  rpc: RpcCaller;
  /** For held `wait` calls: an RPC client with connections of its own (default: `rpc`). */
  waitRpc?: RpcCaller;
  judicators(): Promise<JudicatorListing[]>;
  logger: Logger;
  limits: GatewayConfig['limits'];
  /** API tokens as they are now (they may change while the server runs); none: the API is open. */
  tokens: { readonly current: TokenCheck } | readonly string[];
  ui: UiFiles;
  /** Milliseconds one judicator RPC may take (rpc.timeout_ms); a waiting call gets its wait on top. */
  rpcTimeoutMs?: number;
  /** Hosts a task's callback_url may name (--task-callback-allow); none by default. */
  callbackAllow?: readonly string[];
}

export interface GatewayServer {
  app: FastifyInstance;
  metrics: GatewayMetrics;
  /** The routes as registered, and the OpenAPI document made of them. */
  openapi: OpenApiRoutes;
}

export async function createGatewayServer(options: GatewayServerOptions): Promise<GatewayServer> {
  const { logger, limits } = options;
  const app = Fastify({
    logger: false,
    bodyLimit: limits.body_bytes,
    // Task ids and file names are short; a 1 MiB URL is an attack or a mistake. (Router options go in
    // routerOptions: at the top level Fastify 5 warns FSTDEP022 at every start.)
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 1024 },
    // Timeouts: an RPC has its own; this only stops a client that sends a body forever.
    requestTimeout: 5 * 60_000,
  });
  // The scrape's cluster snapshot makes calls, and calls are timed into the metrics: the closure breaks the loop.
  const metrics: GatewayMetrics = new GatewayMetrics((): Promise<ClusterSnapshot> => clusterSnapshot(calls, options.judicators));
  const calls: JudicatorCalls = new JudicatorCalls(options.rpc, metrics);
  const waitCalls = options.waitRpc ? new JudicatorCalls(options.waitRpc, metrics) : calls;
  const waits = new TaskWaits({
    calls,
    waitCalls,
    rpcTimeoutMs: options.rpcTimeoutMs ?? 10_000,
    maxHeld: limits.wait_max_held ?? DEFAULT_WAIT_MAX_HELD,
    logger,
  });
  const callbacks = new CallbackAllowList(options.callbackAllow ?? []);
  // The events long poll is held like a wait: it goes through the waits' own connections.
  const events = new TaskEventFollower(waitCalls, logger, { rpcTimeoutMs: options.rpcTimeoutMs ?? 10_000, logChanges: DEFAULT_EVENTS_LOG_CHANGES });
  // Until tokens name users (issue 14), every token sees every task.
  const context: ApiContext = { calls, waits, events, scope: (request) => {
      const caller = callerOf(request);
      return caller.admin ? 'all' : caller.user;
    }, judicators: options.judicators, limits, metrics, logger, callbacks };
  // Closing waits for the requests under way: waiting ones are ended first, not left to run their minute.
  app.addHook('preClose', async () => {
    waits.close();
    events.close();
  });
  const tokens = 'current' in options.tokens ? options.tokens : { current: new TokenCheck(adminTokens(options.tokens)) };

  await app.register(formbody, { bodyLimit: limits.body_bytes });
  await app.register(multipart, { limits: { fileSize: limits.body_bytes, fieldSize: limits.body_bytes } });

  app.decorateRequest('metricsRoute', null);
  app.decorateRequest('caller', null);
  app.setErrorHandler((error, request, reply) => sendError(request, reply, error, logger));
  app.setNotFoundHandler((request, reply) => {
    if (request.url.startsWith('/api/') || request.url === '/api') {
      return reply.code(404).send({ result: ReturnCode.NOT_EXIST, message: `no API route ${request.method} ${request.url.split('?')[0]}` });
    }
    return reply.code(404).type('text/plain; charset=utf-8').send(`Not found: ${request.url.split('?')[0]}\n`);
  });

  app.addHook('onRequest', async (request) => {
    (request as unknown as { started: bigint }).started = process.hrtime.bigint();
    // The ROUTE decides, not the raw URL: /%61pi/task/list and an absolute-form request line
    // (GET http://host/api/task/list) reach the /api routes too. Runs before the body is read.
    const route = request.routeOptions.url;
    if (route !== undefined && isApiPath(route)) request.caller = tokens.current.identify(request.headers.authorization);
  });
  app.addHook('onResponse', async (request, reply) => {
    // A waiting GET /api/task takes as long as its task: counted apart, so the route's latency stays meaningful.
    const route = request.metricsRoute ?? request.routeOptions.url ?? 'unmatched';
    const started = (request as unknown as { started?: bigint }).started;
    metrics.httpRequests.inc({ method: request.method, route, code: String(reply.statusCode) });
    if (started) metrics.httpDuration.observe({ method: request.method, route }, Number(process.hrtime.bigint() - started) / 1e9);
  });

  // Installed before any route: the OpenAPI document is made of the routes as they are registered.
  const openapi = new OpenApiRoutes(app);
  registerOpenApiRoute(app, openapi, logger);
  registerTaskRoutes(app, context);
  registerEventRoutes(app, context);
  registerBatchRoute(app, context);
  registerClusterRoutes(app, context);
  // Whose token this is (the web UI shows it): an admin's, or a user id's.
  const whoamiDoc: RouteDoc = {
    summary: "Whose token this is",
    description: "An admin's (sees every task) or a user id's (sees only that user's tasks), and whether this gateway needs tokens at all.",
    tag: 'Cluster',
    api: true,
    responses: { '200': { description: 'The caller.', content: { 'application/json': whoamiAnswerSchema } } },
  };
  app.get('/api/whoami', { config: { failure: { admin: false, user: null }, openapi: whoamiDoc } }, async (request) => {
    const caller = callerOf(request);
    return { result: ReturnCode.OK, admin: caller.admin, user: caller.admin ? null : caller.user, tokens_required: !(caller.admin && caller.open) };
  });
  const metricsDoc: RouteDoc = {
    summary: 'Prometheus metrics',
    description: "The gateway's requests, judicator calls, event streams, the cluster's judicators, executors and slots, and the process (open, no token).",
    tag: 'Operations',
    responses: { '200': { description: 'Prometheus text format.', content: { 'text/plain': { type: 'string' } } } },
  };
  app.get('/metrics', { config: { openapi: metricsDoc } }, async (_request, reply) => {
    const { body, contentType } = await metrics.text();
    return reply.type(contentType).send(body);
  });
  registerUiRoutes(app, options.ui);
  return { app, metrics, openapi };
}

/** A route (or path) of the API: the token check's domain. */
function isApiPath(route: string): boolean {
  return route === '/api' || route.startsWith('/api/');
}

/** Judicators, executors and their slots, for the cluster gauges of /metrics. */
async function clusterSnapshot(calls: JudicatorCalls, judicators: () => Promise<JudicatorListing[]>): Promise<ClusterSnapshot> {
  const [listing, answer] = await Promise.all([judicators(), calls.ok('executors', {})]);
  const alive = answer.executors.filter((e) => e.alive !== false);
  return {
    judicators: listing.length,
    executors: alive.length,
    slots: alive.reduce((sum, e) => sum + (e.slots ?? 0), 0),
    freeSlots: alive.reduce((sum, e) => sum + (e.vacant ?? 0), 0),
  };
}
