// The cluster PKI bundled as kv2 is (esbuild, one CommonJS file, minified, ASCII) and run by plain node: the
// X.509 library loads (its Reflect polyfill first), only once something is signed, and a whole join
// works. src/pki is not reachable from src/main.ts yet, so ./kv2's own build does not show this.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import * as esbuild from 'esbuild';
import { REPO_ROOT } from '../helpers/kv2';
import { makeTempDir } from '../helpers/temp';

test('a join works from an esbuild bundle run by plain node', async (t) => {
  const outfile = path.join(makeTempDir(t), 'pki.cjs');
  // The options of build/build.ts that change what the code does.
  await esbuild.build({
    entryPoints: [path.join(REPO_ROOT, 'test/helpers/pki-bundle-entry.ts')],
    outfile,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    minifySyntax: true,
    minifyWhitespace: true,
    charset: 'ascii',
    legalComments: 'none',
    logLevel: 'warning',
    define: { 'import.meta.url': '"file:///kv2"' },
  });
  const run = spawnSync(process.execPath, [outfile], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(run.status, 0, run.stderr);
  const seen = JSON.parse(run.stdout.trim()) as {
    x509LoadedAtStart: boolean;
    x509LoadedAtEnd: boolean;
    fingerprint: string;
    joined: string;
    role: string;
    name: string;
    serial: string;
  };
  // Loading every PKI module does not load the X.509 library (15 MB of RSS); signing does.
  assert.deepEqual([seen.x509LoadedAtStart, seen.x509LoadedAtEnd], [false, true]);
  assert.match(seen.fingerprint, /^sha256:[0-9a-f]{64}$/);
  assert.deepEqual([seen.role, seen.name, seen.serial], ['executor', 'e1', seen.joined]);
});
