// Where mongod comes from (src/mongodb/binary.ts) and `kv2 fetch mongod` (src/cli/fetch.ts), with real
// files and a real download: mongodb-memory-server fetches a mongod archive over HTTP from a local server
// standing in for fastdl.mongodb.org (MONGOMS_DOWNLOAD_URL; the archive holds a small stand-in mongod
// script), checks its MD5, extracts it into the cache, and the judicator's lookup then finds it there.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { test } from 'node:test';
import { ConfigError } from '../../src/common/errors';
import { checkMongodVersion, downloadMongod, findInCache, findMongod, mongodAvailability, mongodDownloadDir, resolveMongod } from '../../src/mongodb/binary';
import { fetchProgram, versionArgument } from '../../src/cli/fetch';
import { makeTempDir } from '../helpers/temp';

type Hooks = { after: (fn: () => unknown) => void };

/** A stand-in mongod: answers --version, else sleeps. Padded past mongodb-memory-server's 1 MiB sanity size. */
function fakeMongod(file: string, version: string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const script = `#!/bin/sh\nif [ "$1" = "--version" ]; then echo "db version v${version}"; echo 'Build Info: {}'; exit 0; fi\nexec sleep 1000\n`;
  fs.writeFileSync(file, `${script}# ${'x'.repeat(1_100_000)}\n`, { mode: 0o755 });
}

/** Sets environment variables for one test and puts them back afterwards. */
function withEnv(t: Hooks, values: Record<string, string | undefined>): void {
  const saved = Object.fromEntries(Object.keys(values).map((k) => [k, process.env[k]]));
  for (const [k, v] of Object.entries(values)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  t.after(() => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });
}

/** The lookup must not see this machine's own mongod or proxies: an empty PATH (plus /usr/bin, which has none here). */
function isolatedLookup(t: Hooks, cache: string, extra: Record<string, string | undefined> = {}): void {
  withEnv(t, {
    KV2_CACHE_DIR: cache,
    KV2_MONGOD_BINARY: undefined,
    MONGOMS_DOWNLOAD_DIR: undefined,
    MONGOMS_SYSTEM_BINARY: undefined,
    MONGOMS_VERSION: undefined,
    PATH: '/nonexistent',
    http_proxy: undefined,
    https_proxy: undefined,
    HTTP_PROXY: undefined,
    HTTPS_PROXY: undefined,
    npm_config_proxy: undefined,
    'npm_config_https-proxy': undefined,
    ...extra,
  });
}

const systemMongod = ['/usr/bin/mongod', '/usr/local/bin/mongod'].find((f) => fs.existsSync(f));
const skip = systemMongod ? `this machine has ${systemMongod}, which the lookup would find first` : undefined;
if (skip) process.stdout.write(`# mongodb-binary lookup-order tests skipped: ${skip}\n`);

test('lookup order: --mongodb-exe, then KV2_MONGOD_BINARY, then the PATH, then the cache', { skip }, async (t) => {
  const dir = makeTempDir(t);
  const cache = path.join(dir, 'cache');
  isolatedLookup(t, cache);
  assert.equal(await findMongod({}), undefined);
  assert.equal(await mongodAvailability({ download: false }), 'none');
  assert.equal(await mongodAvailability({ download: true }), 'download');
  await assert.rejects(resolveMongod({ download: false }), (error: unknown) => error instanceof ConfigError && /kv2 fetch mongod/.test(error.message));

  const cached = path.join(mongodDownloadDir(), 'mongod-x64-debian-6.0.5');
  fakeMongod(cached, '6.0.5');
  fs.writeFileSync(`${cached}.md5`, 'abc *mongod-x64-debian-6.0.5\n');
  assert.deepEqual(await findMongod({}), { path: cached, source: 'cache' });
  assert.equal(await mongodAvailability({ download: false }), 'local');

  const binDir = path.join(dir, 'bin');
  fakeMongod(path.join(binDir, 'mongod'), '7.0.1');
  process.env.PATH = `${binDir}:/nonexistent`;
  assert.deepEqual(await findMongod({}), { path: path.join(binDir, 'mongod'), source: 'path' });

  const fromEnv = path.join(dir, 'env', 'mongod');
  fakeMongod(fromEnv, '7.0.2');
  process.env.KV2_MONGOD_BINARY = fromEnv;
  assert.deepEqual(await findMongod({}), { path: fromEnv, source: 'environment' });

  const fromFlag = path.join(dir, 'flag', 'mongod');
  fakeMongod(fromFlag, '7.0.3');
  assert.deepEqual(await findMongod({ exe: fromFlag }), { path: fromFlag, source: 'flag' });
  // A flag naming nothing is an error, not a silent fall back to another mongod.
  await assert.rejects(findMongod({ exe: path.join(dir, 'typo') }), (error: unknown) => error instanceof ConfigError && /--mongodb-exe/.test(error.message));
});

test('the cache holds fetched versions: the newest complete one is used when no version is asked for', { skip }, async (t) => {
  const cache = path.join(makeTempDir(t), 'cache');
  isolatedLookup(t, cache);
  const dir = mongodDownloadDir();
  for (const [version, complete] of [['6.0.5', true], ['7.0.14', true], ['8.0.1', false]] as const) {
    const file = path.join(dir, `mongod-x64-debian-${version}`);
    fakeMongod(file, version);
    if (complete) fs.writeFileSync(`${file}.md5`, 'abc\n');
  }
  assert.equal(await findInCache(), path.join(dir, 'mongod-x64-debian-7.0.14'), 'an extraction without its .md5 is unfinished');
  assert.equal(await findInCache('6.0.99'), undefined, 'a specific version asked for: no other will do');
});

test('mongod older than 4.4, or not a mongod, is refused with the reason', async (t) => {
  const dir = makeTempDir(t);
  fakeMongod(path.join(dir, 'old', 'mongod'), '4.2.24');
  assert.throws(() => checkMongodVersion(path.join(dir, 'old', 'mongod')), /mongod 4\.2\.24; kv2 needs mongod 4\.4\.0 or newer/);
  fakeMongod(path.join(dir, 'new', 'mongod'), '7.0.14');
  assert.equal(checkMongodVersion(path.join(dir, 'new', 'mongod')), '7.0.14');
  fs.writeFileSync(path.join(dir, 'true'), '#!/bin/sh\necho hello\n', { mode: 0o755 });
  assert.throws(() => checkMongodVersion(path.join(dir, 'true')), /did not print a mongod version/);
});

test('`kv2 fetch mongod --version x` and its spellings', () => {
  assert.equal(versionArgument(['fetch', 'mongod', '--version', '7.0.14']), '7.0.14');
  assert.equal(versionArgument(['fetch', 'mongod', '--version=6.0.1']), '6.0.1');
  assert.equal(versionArgument(['fetch', 'mongod', '--version']), true);
  assert.equal(versionArgument(['fetch', 'mongod']), undefined);
});

test('fetch downloads through mongodb-memory-server into the cache, with progress, and the lookup finds it', { skip }, async (t) => {
  const dir = makeTempDir(t);
  const version = '7.0.14';
  const archiveName = `mongodb-linux-x86_64-debian12-${version}`;
  fakeMongod(path.join(dir, 'archive', archiveName, 'bin', 'mongod'), version);
  fs.writeFileSync(path.join(dir, 'archive', archiveName, 'LICENSE'), 'not extracted\n');
  const archive = path.join(dir, `${archiveName}.tgz`);
  execFileSync('tar', ['czf', archive, '-C', path.join(dir, 'archive'), archiveName]);
  const bytes = fs.readFileSync(archive);
  const md5 = `${createHash('md5').update(bytes).digest('hex')}  ${archiveName}.tgz\n`;
  const requests: string[] = [];
  const server = http.createServer((request, response) => {
    requests.push(request.url ?? '');
    const body = request.url === `/${archiveName}.tgz` ? bytes : request.url === `/${archiveName}.tgz.md5` ? Buffer.from(md5) : undefined;
    if (!body) {
      response.writeHead(404).end();
      return;
    }
    response.writeHead(200, { 'content-length': body.length, 'content-type': 'application/octet-stream' });
    // Two chunks, so that progress is seen before the end.
    response.write(body.subarray(0, body.length >> 1));
    setTimeout(() => response.end(body.subarray(body.length >> 1)), 20);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const port = (server.address() as { port: number }).port;
  const cache = path.join(dir, 'cache');
  isolatedLookup(t, cache, { MONGOMS_DOWNLOAD_URL: `http://127.0.0.1:${port}/${archiveName}.tgz`, MONGOMS_USE_HTTP: 'true' });

  const progress: { received: number; total: number }[] = [];
  const file = await downloadMongod({ version, onProgress: (p) => progress.push(p) });
  assert.equal(path.dirname(file), mongodDownloadDir());
  assert.ok(path.basename(file).startsWith('mongod-') && path.basename(file).endsWith(`-${version}`), path.basename(file));
  assert.ok(fs.existsSync(`${file}.md5`), 'a finished extraction leaves its checksum file');
  assert.equal(fs.readdirSync(mongodDownloadDir()).filter((f) => !f.startsWith('mongod-')).length, 0, 'no archive or lock left behind');
  assert.ok(progress.length >= 2);
  assert.equal(progress.at(-1)!.received, bytes.length);
  assert.ok(progress.every((p) => p.total === bytes.length));
  assert.deepEqual(requests, [`/${archiveName}.tgz`, `/${archiveName}.tgz.md5`]);

  // The judicator's lookup (no --mongodb-download) now finds it in the cache, and it runs.
  const found = await findMongod({});
  assert.deepEqual(found, { path: file, source: 'cache' });
  assert.equal(checkMongodVersion(file), version);
  // Fetching again downloads nothing.
  assert.equal(await fetchProgram('mongod', { version }), 0);
  assert.equal(requests.length, 2);
  await assert.rejects(fetchProgram('mongos', {}), /kv2 fetch knows mongod/);
  await assert.rejects(fetchProgram('mongod', { version: true }), /--version must be a mongod version/);
});

test('a failed download says what failed and leaves no partial binary', { skip }, async (t) => {
  const dir = makeTempDir(t);
  const server = http.createServer((_request, response) => response.writeHead(403).end());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const port = (server.address() as { port: number }).port;
  isolatedLookup(t, path.join(dir, 'cache'), {
    MONGOMS_DOWNLOAD_URL: `http://127.0.0.1:${port}/mongodb-linux-x86_64-debian12-9.9.9.tgz`,
    MONGOMS_USE_HTTP: 'true',
  });
  await assert.rejects(resolveMongod({ download: true, version: '9.9.9' }), /could not download mongod 9\.9\.9: .*403/s);
  assert.equal(await findInCache(), undefined);
});
