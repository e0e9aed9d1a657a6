// The judicator's RPC server (Fastify): `POST /rpc/<method>` with the original's methods and result
// codes (plus wait, and events for issue 17's event streams), every input validated with a reason, the
// cluster token checked, and a judicator that lost its etcd quorum answering 503 so clients go to
// another one. `GET /ping` and `GET /health` for operators.
import { timingSafeEqual } from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import { InvalidInputError, TooLargeError, describeError } from '../common/errors';
import { idTime } from '../common/ids';
import type { Logger } from '../common/logging';
import { parseTime } from '../common/time';
import type { ExecutorRegistration } from '../etcd/executor-registration';
import { RPC_PATH, UNKNOWN_METHOD, requestSchemas, type RpcMethod, type RpcResponses } from '../rpc/contract';
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
  /** Cluster token; when set, every RPC must carry it. */
  clusterToken: string | null;
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
}

export interface RpcDependencies {
  store: TaskStore;
  scheduler: Scheduler;
  /** The `events` method's task changes and live records. */
  events: TaskEventHub;
  /** Whether this judicator can serve (registered, etcd quorum reachable), and why not. */
  availability: () => { ok: true } | { ok: false; reason: string };
  /** Executors' registrations, to check that a report comes from the executor it names. */
  executorKey: (name: string) => Promise<string | undefined>;
  /** Every live executor's registration, by name: `executors` says which are alive and what they can run. */
  executorRegistrations?: () => Promise<Map<string, ExecutorRegistration>>;
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
  };
  return { result, message, ...empty[method] } as Answer<M>;
}

export function createRpcServer(settings: RpcServerSettings, deps: RpcDependencies, logger: Logger): FastifyInstance {
  const app = Fastify({ logger: false, bodyLimit: settings.bodyLimit, forceCloseConnections: true });
  const tokenBuffer = settings.clusterToken ? Buffer.from(`Bearer ${settings.clusterToken}`) : undefined;
  const callbacks = new CallbackAllowList(settings.callbackAllow ?? []);

  app.get('/ping', async () => ({ result: ReturnCode.OK }));
  app.get('/health', async (_request, reply) => {
    const state = deps.availability();
    return state.ok ? { healthy: true } : reply.code(503).send({ healthy: false, reason: state.reason });
  });
  deps.extraRoutes?.(app);

  // Bodies that are not JSON, or too large, get the method's refusal shape instead of Fastify's error.
  app.setErrorHandler((error: Error & { statusCode?: number; code?: string }, request, reply) => {
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
    if (tokenBuffer && !tokenMatches(request.headers.authorization, tokenBuffer)) {
      return reply.code(401).send(refusal(method, ReturnCode.UNAUTHORIZED, 'missing or wrong cluster token (--cluster-token)'));
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
      const answer = await handlers[method](parsed.data as never, request.raw, reply);
      const result = (answer as { result?: number }).result ?? ReturnCode.OK;
      deps.observe?.(method, result, Number(process.hrtime.bigint() - started) / 1e9, answer);
      return answer;
    } catch (error) {
      if (error instanceof TooLargeError) return refusal(method, ReturnCode.TOO_LARGE, error.message);
      logger.error({ method, err: describeError(error) }, `RPC ${method} failed: ${describeError(error)}`);
      // A store that cannot be reached is this judicator's problem, not the caller's: let them fail over.
      return reply.code(503).send(refusal(method, ReturnCode.ERROR, `${method} failed on this judicator: ${describeError(error)}`));
    }
  });

  const handlers: { [M in RpcMethod]: (body: never, raw: import('node:http').IncomingMessage, reply: FastifyReply) => Promise<Answer<M> | FastifyReply> } = {
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
        self?: { host: string; slots: number; started: string };
      },
      _raw,
      reply,
    ) => {
      const complete = body.complete.map((t) => ({ id: t.id, status: t.status as TaskStatus, result: resultFromWire(t.result) }));
      const executing = body.executing.map((t) => ({ id: t.id, status: t.status as TaskStatus }));
      const problem = Scheduler.checkStatuses({ complete, executing });
      if (problem) return refusal('report', ReturnCode.INVALID_INPUT, problem);
      const registeredKey = await deps.executorKey(body.executor);
      if (registeredKey !== undefined && body.key !== undefined && registeredKey !== body.key) {
        return refusal('report', ReturnCode.UNAUTHORIZED, `executor name ${body.executor} is registered by another executor process; names must be unique`);
      }
      if (settings.clusterToken && registeredKey === undefined) {
        return refusal('report', ReturnCode.UNAUTHORIZED, `executor ${body.executor} is not registered in etcd; it must register before it reports`);
      }
      if (settings.clusterToken && registeredKey !== body.key) {
        return refusal('report', ReturnCode.UNAUTHORIZED, `report for executor ${body.executor} does not carry that executor's key`);
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
          ...(body.self ? { self: body.self } : {}),
        },
        hungUp.signal,
      );
      return { result: ReturnCode.OK, cancel: answer.cancel, assign: answer.assign.map(taskToWire) };
    },

    executors: async () => {
      const [executors, registrations] = await Promise.all([deps.store.listExecutors(), deps.executorRegistrations?.()]);
      if (registrations) {
        for (const executor of executors) {
          const registration = registrations.get(executor.id);
          executor.alive = registration !== undefined;
          if (registration?.languages) executor.languages = registration.languages;
          if (registration?.sandbox) executor.sandbox = registration.sandbox;
        }
      }
      return { result: ReturnCode.OK, executors };
    },

    events: async (body: EventsRequest, _raw, reply) => {
      // The caller hanging up (its gateway's streams all closed) ends the wait.
      const hungUp = new AbortController();
      reply.raw.once('close', () => hungUp.abort());
      return deps.events.poll(body, hungUp.signal);
    },
  };

  return app;
}

function tokenMatches(header: string | undefined, expected: Buffer): boolean {
  if (!header) return false;
  const given = Buffer.from(header);
  return given.length === expected.length && timingSafeEqual(given, expected);
}
