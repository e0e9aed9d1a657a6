// GET /api/openapi.json (issue 17) against the built kv2 (a judicator, an executor, a gateway): the
// document validates as OpenAPI 3.1 (@apidevtools/swagger-parser); it names every route the gateway
// registers and no other (Fastify's own route table, read from an in-process gateway); and what the
// routes answer matches the schemas it gives them (ajv, JSON Schema 2020-12), for tasks that run, fail
// and are refused.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import SwaggerParser from '@apidevtools/swagger-parser';
import Ajv2020 from 'ajv/dist/2020';
import { createLogger } from '../../src/common/logging';
import { createGatewayServer } from '../../src/gateway/server';
import { JudicatorRpcClient } from '../../src/rpc/client';
import { startJudicators } from '../helpers/cluster';
import { fileHooks } from '../helpers/file-hooks';
import { startExecutor, startGateway, waitForExecutors, type GatewayNode } from '../helpers/system';

const hooks = fileHooks();

/** The routes of Fastify's printRoutes() tree ("└── api/task (POST, GET, HEAD)"), as method + OpenAPI path. */
function routesOfTree(tree: string): string[] {
  const found: string[] = [];
  const stack: { depth: number; path: string }[] = [];
  for (const line of tree.split('\n')) {
    const match = /^([│ ├└─]*)── (\S+)(?: \(([A-Z, ]+)\))?/.exec(line);
    if (!match) continue;
    const depth = match[1]!.length;
    while (stack.length && stack[stack.length - 1]!.depth >= depth) stack.pop();
    const parent = stack[stack.length - 1]?.path ?? '';
    const path = parent + match[2];
    stack.push({ depth, path });
    for (const method of (match[3] ?? '').split(', ').filter(Boolean)) {
      if (method !== 'HEAD') found.push(`${method.toLowerCase()} ${path.replace(/:([A-Za-z0-9_]+)/g, '{$1}')}`);
    }
  }
  return found.sort();
}

describe('the OpenAPI document', () => {
  let gateway: GatewayNode;
  let doc: any;

  before(async () => {
    const judicator = (await startJudicators(hooks, 1))[0]!;
    const executor = startExecutor(hooks, 'e1', judicator, ['--main-task-sandbox', 'none']);
    gateway = await startGateway(hooks, judicator);
    await waitForExecutors(gateway.url, [executor]);
    const response = await fetch(`${gateway.url}/api/openapi.json`, { signal: AbortSignal.timeout(10_000) });
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /application\/json/);
    doc = await response.json();
  });

  it('validates as OpenAPI 3.1', async () => {
    assert.equal(doc.openapi, '3.1.0');
    // The validator dereferences in place: give it a copy.
    await SwaggerParser.validate(structuredClone(doc));
    const operations = Object.values(doc.paths).flatMap((item: any) => Object.values(item)) as any[];
    assert.ok(operations.every((op) => op.summary && op.responses && op.operationId), 'every operation has a summary, answers and an id');
    const undocumented = Object.entries(doc.paths).flatMap(([path, item]: [string, any]) => Object.entries(item).filter(([, op]: [string, any]) => op['x-undocumented']).map(([method]) => `${method} ${path}`));
    assert.deepEqual(undocumented, [], 'every route documents itself (config.openapi)');
    assert.equal(new Set(operations.map((op) => op.operationId)).size, operations.length, 'operation ids are unique');
  });

  it('names every route the gateway registers, and no other', async () => {
    const logger = createLogger('openapi-test', { maxBytes: 1 << 20, keep: 0, printToStdout: false, level: 'warn' });
    // A gateway with no judicator to call: its routes are what matter here, and none is called.
    const rpc = new JudicatorRpcClient({ source: { addresses: async () => [] }, identity: { current: undefined as never, onChange: () => () => undefined } });
    const { app } = await createGatewayServer({
      rpc,
      judicators: async () => [],
      logger,
      limits: { body_bytes: 1 << 20, task_max_size: 16_252_928, batch_max: 10, batch_concurrency: 2 },
      tokens: [],
      ui: { get: async () => undefined },
    });
    hooks.after(async () => {
      await app.close();
      rpc.close();
    });
    await app.ready();
    const registered = routesOfTree(app.printRoutes({ commonPrefix: false }));
    const documented = Object.entries(doc.paths)
      .flatMap(([path, item]) => Object.keys(item as object).map((method) => `${method} ${path}`))
      .sort();
    assert.ok(registered.length >= 15, `read the route table: ${registered.join(', ')}`);
    assert.deepEqual(documented, registered);
    for (const route of ['post /api/task', 'get /api/task/events', 'get /api/openapi.json', 'get /res/{file}']) assert.ok(documented.includes(route), route);
  });

  it('what the routes answer matches the schemas the document gives them', async () => {
    const ajv = new Ajv2020({ strict: false, allErrors: true });
    // The answers' schemas with the components they refer to put in place.
    const resolved = (await SwaggerParser.dereference(structuredClone(doc))) as any;
    const check = async (method: string, path: string, init: RequestInit = {}, query = ''): Promise<any> => {
      const response = await fetch(`${gateway.url}${path}${query}`, { method: method.toUpperCase(), ...init, signal: AbortSignal.timeout(60_000) });
      const body = await response.json();
      const schema = resolved.paths[path]?.[method]?.responses?.[String(response.status)]?.content?.['application/json']?.schema;
      assert.ok(schema, `${method} ${path} answered HTTP ${response.status}, which the document does not give`);
      const validate = ajv.compile(schema);
      assert.ok(validate(body), `${method} ${path}${query} (HTTP ${response.status}): ${ajv.errorsText(validate.errors)}\n${JSON.stringify(body).slice(0, 500)}`);
      return body;
    };
    const json = (body: unknown): RequestInit => ({ headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const ok = await check('post', '/api/task', json({ user: 3, compile_timeout: 0, execute_timeout: 5, execute_command: 'echo hi', execute_standard: 'hi' }));
    const tests = [1, 2].map((i) => ({ name: `t${i}`, input: `${i}\n`, output: `${i}\n` }));
    const judged = await check('post', '/api/task', json({ user: 3, compile_timeout: 0, execute_timeout: 5, execute_command: 'cat', tests, checker: 'tokens' }));
    await check('post', '/api/task', json({ user: -1, compile_timeout: 'x', execute_timeout: 0 }));
    await check('post', '/api/task/batch', json([{ user: 3, compile_timeout: 0, execute_timeout: 5, execute_command: 'exit 3' }, { user: -1 }]));
    for (const id of [ok.id, judged.id]) {
      const done = await check('get', '/api/task', {}, `?id=${id}&wait=30`);
      assert.equal(done.task.done, true);
    }
    const task = await check('get', '/api/task', {}, `?id=${judged.id}`);
    assert.equal(task.task.result.tests.length, 2);
    await check('get', '/api/task', {}, '?id=nope');
    await check('get', '/api/task/list', {}, '?user=3&limit=5');
    await check('get', '/api/task/list', {}, '?user=-1');
    await check('delete', '/api/task', {}, `?id=${ok.id}`);
    await check('get', '/api/executors');
    await check('get', '/api/judicators');
    await check('get', '/api/health');
  });
});
