// The web UI's routes: the original's page paths (/, /search, /add, /get, /executors, /judicators) all
// answer the one-page app, which reads the path itself; /res/<file> serves its script, styles and icon.
// A strict Content-Security-Policy: everything comes from the gateway, nothing runs inline.
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { RouteDoc } from './api/openapi';
import type { UiFiles } from './ui-files';

export const UI_PAGES = ['/', '/index', '/search', '/add', '/get', '/executors', '/judicators'] as const;

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.map': 'application/json',
};

const CSP = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

function send(reply: FastifyReply, name: string, bytes: Buffer): FastifyReply {
  const ext = name.slice(name.lastIndexOf('.'));
  return reply
    .type(TYPES[ext] ?? 'application/octet-stream')
    .header('cache-control', 'no-cache')
    .header('x-content-type-options', 'nosniff')
    .header('content-security-policy', CSP)
    .header('referrer-policy', 'same-origin')
    .send(bytes);
}

export function registerUiRoutes(app: FastifyInstance, ui: UiFiles): void {
  const page = async (_request: unknown, reply: FastifyReply) => {
    const html = await ui.get('index.html');
    if (!html) {
      return reply
        .code(503)
        .type('text/plain; charset=utf-8')
        .send('The web UI is not available in this build of kv2 (no ui/index.html); the API under /api/ works.\n');
    }
    return send(reply, 'index.html', html);
  };
  const html = { '200': { description: 'The web UI (one page app; it reads the path itself).', content: { 'text/html': { type: 'string' } } }, '503': { description: 'This build has no web UI.' } };
  for (const path of UI_PAGES) app.get(path, { config: { openapi: { summary: `The web UI: ${path === '/' ? 'home' : path.slice(1)}`, tag: 'Web UI', responses: html } } }, page);
  const file = (summary: string, types: string[]): RouteDoc => ({
    summary,
    tag: 'Web UI',
    responses: { '200': { description: summary, content: Object.fromEntries(types.map((type) => [type, { type: 'string' }])) }, '404': { description: 'No such file.' } },
  });
  app.get('/favicon.ico', { config: { openapi: file('The icon', ['image/svg+xml']) } }, async (_request, reply) => {
    const icon = await ui.get('icon.svg');
    return icon ? send(reply, 'icon.svg', icon) : reply.code(404).send();
  });
  app.get<{ Params: { file: string } }>('/res/:file', { config: { openapi: file("The UI's script, styles and icon", ['text/javascript', 'text/css', 'image/svg+xml']) } }, async (request, reply) => {
    const bytes = await ui.get(request.params.file);
    if (!bytes) return reply.code(404).type('text/plain; charset=utf-8').send(`Not found: ${request.url}\n`);
    return send(reply, request.params.file, bytes);
  });
}
