// The cluster routes: GET /api/test (the original's liveness text), /api/executors, /api/judicators
// (the original's shape, plus which judicator leads), /api/health (addition: 200 when a judicator
// answers ping, 503 with the reason otherwise) and /api/languages (addition: each language the live
// executors registered, with its version and how many executors can run it).
import type { FastifyInstance } from 'fastify';
import { describeError } from '../../common/errors';
import { ReturnCode, type ExecutorInfo } from '../../task/types';
import { z } from 'zod';
import { answerSchema, executorSchema, judicatorSchema, languageCountSchema } from './answers';
import type { ApiContext } from './context';
import type { RouteDoc } from './openapi';

export const TEST_TEXT = 'Khala gateway server is working.';

/** Milliseconds the health check gives the judicators to answer ping. */
export const HEALTH_TIMEOUT_MS = 3_000;

export function registerClusterRoutes(app: FastifyInstance, context: ApiContext): void {
  app.get(
    '/api/test',
    { config: { openapi: { summary: "The original's liveness text", tag: 'Cluster', api: true, responses: { '200': { description: TEST_TEXT, content: { 'text/plain': { type: 'string' } } } } } } },
    async (_request, reply) => reply.type('text/plain; charset=utf-8').send(TEST_TEXT),
  );

  app.get('/api/executors', listRoute('executors', executorSchema, 'List the executors', 'Every executor the judicators know: what it says of itself in its reports (host, slots, start), its free slots and last report.'), async () => {
    const answer = await context.calls.ok('executors', {});
    return { result: ReturnCode.OK, executors: answer.executors };
  });

  app.get('/api/languages', listRoute('languages', languageCountSchema, 'List the languages the live executors can run', 'Each toolchain the live executors found at start (C, C++, Python 3, Java, ...), with its version and how many executors have it; another version makes an entry of its own.'), async () => {
    const answer = await context.calls.ok('executors', {});
    return { result: ReturnCode.OK, languages: languagesOf(answer.executors) };
  });

  app.get('/api/judicators', listRoute('judicators', judicatorSchema, 'List the judicators', "The judicators registered, which one leads; `name` is the original's key path /judicator/service/<name>."), async () => {
    const judicators = await context.judicators();
    return {
      result: ReturnCode.OK,
      // The original's names were etcd v2 key paths; kept for its clients.
      judicators: judicators.map((j) => ({ name: `/judicator/service/${j.name}`, address: j.address, leader: j.leader })),
    };
  });

  const health = answerSchema.extend({ healthy: z.boolean(), latency_ms: z.number().optional(), reason: z.string().optional() });
  const healthDoc: RouteDoc = {
    summary: 'Whether a judicator answers',
    tag: 'Cluster',
    api: true,
    responses: {
      '200': { description: 'A judicator answered ping (how fast).', content: { 'application/json': health } },
      '503': { description: 'None did (why).', content: { 'application/json': health } },
    },
  };
  app.get('/api/health', { config: { openapi: healthDoc } }, async (_request, reply) => {
    const started = Date.now();
    try {
      // One round, no retries: health says how things are now.
      const answer = await context.calls.answer('ping', {}, { timeoutMs: HEALTH_TIMEOUT_MS, retryForMs: 0 });
      if (answer.result === ReturnCode.OK) {
        return { result: ReturnCode.OK, healthy: true, latency_ms: Date.now() - started };
      }
      return reply.code(503).send({ result: ReturnCode.ERROR, healthy: false, reason: `a judicator answered ping with result ${answer.result}: ${answer.message ?? ''}`.trim() });
    } catch (error) {
      return reply.code(503).send({ result: ReturnCode.ERROR, healthy: false, reason: describeError(error) });
    }
  });
}

/**
 * The options of a cluster route that answers a list under `key`: its OpenAPI document, and the answer a
 * failure carries (an empty list, as the original's clients expect).
 */
function listRoute(key: string, item: z.ZodType, summary: string, description: string): { config: { failure: Record<string, unknown>; openapi: RouteDoc } } {
  const openapi: RouteDoc = {
    summary,
    description,
    tag: 'Cluster',
    api: true,
    responses: { '200': { description: `The ${key}.`, content: { 'application/json': answerSchema.extend({ [key]: z.array(item) }) } } },
  };
  return { config: { failure: { [key]: [] }, openapi } };
}

export interface LanguageCount {
  name: string;
  version: string;
  /** How many live executors have this version of it. */
  executors: number;
}

/**
 * The languages of the live executors: one entry per name and version (executors with different
 * versions of a toolchain show as separate entries), by name, then the most executors first.
 */
export function languagesOf(executors: readonly ExecutorInfo[]): LanguageCount[] {
  const counts = new Map<string, LanguageCount>();
  for (const executor of executors) {
    if (executor.alive === false) continue;
    for (const { name, version } of executor.languages ?? []) {
      const key = JSON.stringify([name, version]);
      const entry = counts.get(key) ?? { name, version, executors: 0 };
      entry.executors++;
      counts.set(key, entry);
    }
  }
  return [...counts.values()].sort((a, b) => a.name.localeCompare(b.name) || b.executors - a.executors || a.version.localeCompare(b.version));
}
