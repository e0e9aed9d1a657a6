// `kv2 health` (the image's HEALTHCHECK) against a real `kv2 standalone`: every module running and the
// judicator's and gateway's health routes answering exit 0; no role, or a stopped one, exit 1 and say why.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { judicatorPortFlags, judicatorPorts, runKv2, startNode } from '../helpers/kv2';
import { freePort } from '../helpers/ports';
import { makeTempDir } from '../helpers/temp';
import { waitFor } from '../helpers/wait';

test('kv2 health: exit 1 in a work dir where no role runs', (t) => {
  const empty = makeTempDir(t, 'kv2-health-empty-');
  const result = runKv2(['health', '--work-dir', empty]);
  assert.equal(result.status, 1, result.stdout + result.stderr);
  assert.match(result.stdout, /PROBLEM: no kv2 role runs in /);
});

test('kv2 health: a running standalone is all well, every module listed; stopped, it is a problem', async (t) => {
  const work = makeTempDir(t, 'kv2-health-');
  const ports = await judicatorPorts();
  const gatewayPort = await freePort();
  const node = startNode(t, work, ['standalone', ...judicatorPortFlags(ports), '--server-port', String(gatewayPort), '--server-host', '127.0.0.1']);
  let last = '';
  const healthy = await waitFor(
    () => {
      if (node.exited) throw new Error(`standalone exited:\n${node.tail()}`);
      const result = runKv2(['health'], { cwd: work, timeoutMs: 30_000 });
      last = result.stdout + result.stderr;
      return result.status === 0 && result;
    },
    { what: () => `kv2 health to exit 0 (last answer:\n${last})`, timeoutMs: 60_000, intervalMs: 500 },
  );
  for (const module of ['judicator/etcd', 'judicator/main', 'executor/main', 'gateway/server']) {
    assert.match(healthy.stdout, new RegExp(`^ok: ${module}: running \\(pid \\d+\\)`, 'm'), healthy.stdout);
  }
  assert.match(healthy.stdout, new RegExp(`ok: judicator/main: .*https://127\\.0\\.0\\.1:${ports.rpc}/health answers 200`));
  assert.match(healthy.stdout, new RegExp(`ok: gateway/server: .*http://127\\.0\\.0\\.1:${gatewayPort}/api/health answers 200`));
  assert.match(healthy.stdout, /kv2 health: all well in /);

  assert.equal(await node.stop('SIGTERM'), 0);
  const stopped = runKv2(['health', '--work-dir', work]);
  assert.equal(stopped.status, 1, stopped.stdout);
  assert.match(stopped.stdout, /PROBLEM: no kv2 supervisor runs in .*standalone\/data\/boot\.pid: not running/);
});

test('kv2 health: a bad --timeout is a usage error', () => {
  const result = runKv2(['health', '--timeout', '0']);
  assert.equal(result.status, 2);
  assert.match(result.stderr, /--timeout must be a number of seconds above 0/);
});
