// GET /api/openapi.json (issue 17): the gateway's API as an OpenAPI 3.1 document, built from the routes as
// they are registered. Every route carries its documentation in its options (`config.openapi`): its
// query as the zod schema the route checks it with (queries.ts), its body as the submission's fields
// (forms.ts) and its answers (answers.ts); the document is those schemas turned into JSON Schema by zod.
// A route registered without documentation is still listed, marked `x-undocumented` (the OpenAPI test
// fails on it), so the document never leaves a route out. GET routes answer HEAD as well (Fastify), which
// the document does not repeat.
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { Logger } from '../../common/logging';
import { VERSION } from '../../common/version';
import { ReturnCode } from '../../task/types';
import { errorAnswerSchema } from './answers';

/** One answer of a route: its description and, by content type, its schema (zod, or JSON Schema as is). */
export interface ResponseDoc {
  description: string;
  content?: Record<string, z.ZodType | Record<string, unknown>>;
}

/** What a route says of itself for the document. */
export interface RouteDoc {
  summary: string;
  description?: string;
  tag: 'Tasks' | 'Cluster' | 'Operations' | 'Web UI';
  /** Its query parameters, the schema the route checks them with. */
  query?: z.ZodObject;
  /** Request headers it reads. */
  headers?: { name: string; description: string }[];
  body?: { description: string; required: boolean; content: Record<string, z.ZodType> };
  responses: Record<string, ResponseDoc>;
  /** Answers every /api route may give besides its own: 401 without the API token, 503 without a judicator. */
  api?: boolean;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The route's documentation in GET /api/openapi.json. */
    openapi?: RouteDoc;
  }
}

interface Registered {
  method: string;
  url: string;
  doc: RouteDoc | undefined;
}

/** `/res/:file` as OpenAPI writes it: `/res/{file}`. */
function openApiPath(url: string): { path: string; params: string[] } {
  const params: string[] = [];
  const path = url.replace(/:([A-Za-z0-9_]+)/g, (_, name: string) => {
    params.push(name);
    return `{${name}}`;
  });
  return { path, params };
}

/** `#/$defs/<id>` (where zod puts a named schema) as `#/components/schemas/<id>` (where OpenAPI keeps it). */
function refsToComponents(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(refsToComponents);
  if (!value || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value).map(([key, inner]) => [key, key === '$ref' && typeof inner === 'string' ? inner.replace(/^#\/\$defs\//, '#/components/schemas/') : refsToComponents(inner)]),
  );
}

/**
 * A zod schema as JSON Schema (2020-12, which OpenAPI 3.1 uses); the schemas named with `.meta({ id })`
 * (Task, TaskBrief...) go to `components` once and are referred to from where they are used.
 */
function jsonSchema(schema: z.ZodType | Record<string, unknown>, io: 'input' | 'output', components: Record<string, unknown>): Record<string, unknown> {
  if (!(schema instanceof z.ZodType)) return schema;
  const converted = refsToComponents(z.toJSONSchema(schema, { target: 'draft-2020-12', io, unrepresentable: 'any', reused: 'inline' })) as Record<string, unknown>;
  delete converted.$schema;
  const defs = converted.$defs as Record<string, unknown> | undefined;
  delete converted.$defs;
  // A schema named by its id is the same whatever uses it (answers are output, bodies input: never both).
  for (const [id, definition] of Object.entries(defs ?? {})) components[id] ??= definition;
  return converted;
}

/** The answers any /api route may give besides its own. */
const API_FAILURES: Record<string, ResponseDoc> = {
  '401': { description: 'The gateway needs an API token (Authorization: Bearer <token>), or not this one.', content: { 'application/json': errorAnswerSchema } },
  '503': { description: 'No judicator can answer (or the gateway is stopping); ask again.', content: { 'application/json': errorAnswerSchema } },
};

/** Collects the routes as they are registered; install before any route. */
export class OpenApiRoutes {
  private readonly routes: Registered[] = [];

  constructor(app: FastifyInstance) {
    app.addHook('onRoute', (route) => {
      for (const method of [route.method].flat()) {
        if (method === 'HEAD') continue;
        this.routes.push({ method: method.toLowerCase(), url: route.url, doc: route.config?.openapi });
      }
    });
  }

  /** Method and path of every route registered (HEAD left out), as the document writes them. */
  registered(): { method: string; path: string }[] {
    return this.routes.map((route) => ({ method: route.method, path: openApiPath(route.url).path }));
  }

  /** The OpenAPI 3.1 document of every route registered. */
  document(): Record<string, unknown> {
    const paths: Record<string, Record<string, unknown>> = {};
    const schemas: Record<string, unknown> = {};
    const convert = (schema: z.ZodType | Record<string, unknown>, io: 'input' | 'output') => jsonSchema(schema, io, schemas);
    for (const route of this.routes) {
      const { path, params } = openApiPath(route.url);
      const doc: RouteDoc = route.doc ?? UNDOCUMENTED;
      const parameters: Record<string, unknown>[] = params.map((name) => ({ name, in: 'path', required: true, schema: { type: 'string' } }));
      if (doc.query) {
        for (const [name, schema] of Object.entries(doc.query.shape as Record<string, z.ZodType>)) {
          const converted = convert(schema, 'input');
          const description = converted.description;
          delete converted.description;
          parameters.push({ name, in: 'query', required: !schema.safeParse(undefined).success, schema: converted, ...(description ? { description } : {}) });
        }
      }
      for (const header of doc.headers ?? []) parameters.push({ name: header.name, in: 'header', required: false, description: header.description, schema: { type: 'string' } });
      const responses = Object.fromEntries(
        Object.entries({ ...doc.responses, ...(doc.api ? API_FAILURES : {}) }).map(([status, answer]) => [
          status,
          {
            description: answer.description,
            ...(answer.content ? { content: Object.fromEntries(Object.entries(answer.content).map(([type, schema]) => [type, { schema: convert(schema, 'output') }])) } : {}),
          },
        ]),
      );
      const operation: Record<string, unknown> = {
        operationId: `${route.method}${path.replace(/[^A-Za-z0-9]+(.)?/g, (_, c: string | undefined) => (c ? c.toUpperCase() : ''))}`,
        summary: doc.summary,
        ...(doc.description ? { description: doc.description } : {}),
        tags: [doc.tag],
        ...(parameters.length ? { parameters } : {}),
        ...(doc.body
          ? {
              requestBody: {
                description: doc.body.description,
                required: doc.body.required,
                content: Object.fromEntries(Object.entries(doc.body.content).map(([type, schema]) => [type, { schema: convert(schema, 'input') }])),
              },
            }
          : {}),
        responses,
        ...(doc.api ? { security: [{}, { apiToken: [] }] } : {}),
        ...(route.doc ? {} : { 'x-undocumented': true }),
      };
      (paths[path] ??= {})[route.method] = operation;
    }
    return {
      openapi: '3.1.0',
      info: {
        title: 'kv2 gateway API',
        version: VERSION,
        description:
          "The HTTP API of a kv2 gateway: the original KV2 (Khala) routes and JSON shapes, and kv2's additions. Answers carry `result` " +
          `(${Object.entries(ReturnCode).map(([name, code]) => `${code} ${name}`).join(', ')}) and, when it is not OK, \`message\`. ` +
          'Examples for every route: docs/api.md.',
        license: { name: 'MIT', identifier: 'MIT' },
      },
      servers: [{ url: '/', description: 'this gateway' }],
      tags: [
        { name: 'Tasks', description: 'Submit, read, follow, list and cancel tasks.' },
        { name: 'Cluster', description: 'The judicators and executors, and whether they answer.' },
        { name: 'Operations', description: 'Metrics and this document.' },
        { name: 'Web UI', description: 'The pages of the web UI (HTML, script, styles), served from the binary.' },
      ],
      components: {
        schemas,
        securitySchemes: {
          apiToken: { type: 'http', scheme: 'bearer', description: 'Needed when the gateway has API tokens (--server-token, --server-tokens-file).' },
        },
      },
      paths,
    };
  }
}

export function registerOpenApiRoute(app: FastifyInstance, routes: OpenApiRoutes, logger: Logger): void {
  let built: Record<string, unknown> | undefined;
  app.get(
    '/api/openapi.json',
    {
      config: {
        openapi: {
          summary: 'This document',
          description: 'The gateway API as an OpenAPI 3.1 document, made from the schemas the routes check their input with.',
          tag: 'Operations',
          api: true,
          responses: { '200': { description: 'The OpenAPI document.', content: { 'application/json': { type: 'object' } } } },
        },
      },
    },
    async (_request, reply) => {
      built ??= routes.document();
      return reply.header('cache-control', 'no-cache').send(built);
    },
  );
  // Built once every route is in, and said once when one has no documentation.
  app.addHook('onReady', async () => {
    built = routes.document();
    const missing = Object.entries(built.paths as Record<string, Record<string, Record<string, unknown>>>).flatMap(([path, item]) =>
      Object.entries(item)
        .filter(([, operation]) => operation['x-undocumented'])
        .map(([method]) => `${method.toUpperCase()} ${path}`),
    );
    if (missing.length) logger.warn({ routes: missing }, 'routes without OpenAPI documentation (config.openapi): /api/openapi.json lists them as undocumented');
  });
}

/** What the document says of a route registered without documentation. */
const UNDOCUMENTED: RouteDoc = {
  summary: 'Not documented',
  tag: 'Operations',
  responses: { default: { description: 'Not documented: the route was registered without config.openapi.' } },
};
