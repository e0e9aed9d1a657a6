// The compose cluster of docs/operations.md "A cluster on one machine (compose)", run for real with the
// engine's compose (podman-compose here): 3 judicators, 2 executors and a gateway come up, run the
// README's C++ example, and survive the SIGKILL of the leading judicator's container: a task submitted
// right after the kill is accepted and completed by the two that are left. The cluster's identity is made
// first with the documented `kv2 cluster-secrets` (into a temp dir, which KV2_SECRETS_DIR hands compose).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { fileHooks } from '../helpers/file-hooks';
import { REPO_ROOT, kv2Binary } from '../helpers/kv2';
import { freePort } from '../helpers/ports';
import { makeTempDir } from '../helpers/temp';
import { waitFor } from '../helpers/wait';
import { gatewayHealthy, getJson, helloTask, submitForm, submitReadmeExample, taskWhenDone } from './api';
import { sectionCommands, theCommand, words } from './docs-commands';
import { tail, type Engine } from './engine';
import { readyEngine } from './images';

const COMPOSE_SECTION = '### A cluster on one machine (compose)';
const COMPOSE_FILE = 'packaging/compose.yml';
/** How long the cluster may take to come up: judicators join one at a time. */
const CLUSTER_UP_WITHIN_MS = 180_000;

const hooks = fileHooks();
const work = makeTempDir(hooks, 'kv2-compose-');
const say = (line: string) => process.stdout.write(`# ${line}\n`);

let engine: Engine | undefined;
let unavailable: string | undefined;
let project: string;
let gateway: string;
let env: NodeJS.ProcessEnv;

before(async () => {
  const ready = readyEngine(work, say);
  if (typeof ready === 'string') {
    unavailable = ready;
    return;
  }
  engine = ready;
  project = `kv2test${process.pid}${Date.now().toString(36)}`;
  const port = await freePort();
  gateway = `http://127.0.0.1:${port}`;
  env = { KV2_GATEWAY_PORT: `127.0.0.1:${port}`, KV2_SECRETS_DIR: makeClusterSecrets() };
  hooks.after(() => removeProject(engine!));
});

/** The documented `kv2 cluster-secrets packaging/secrets`, run with this checkout's kv2 into a temp dir; that dir. */
function makeClusterSecrets(): string {
  const argv = words(theCommand(sectionCommands('docs/operations.md', COMPOSE_SECTION), 'kv2 cluster-secrets ', `docs/operations.md "${COMPOSE_SECTION}"`));
  assert.deepEqual(argv, ['kv2', 'cluster-secrets', 'packaging/secrets']);
  const dir = path.join(work, 'secrets');
  const made = spawnSync(kv2Binary(), ['cluster-secrets', dir], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(made.status, 0, made.stderr);
  return dir;
}

/** `docker compose -f packaging/compose.yml <args>` as documented, run with this engine's compose and project name. */
function compose(documentedPrefix: string) {
  const argv = words(theCommand(sectionCommands('docs/operations.md', COMPOSE_SECTION), documentedPrefix, `docs/operations.md "${COMPOSE_SECTION}"`));
  assert.deepEqual(argv.slice(0, 4), ['docker', 'compose', '-f', COMPOSE_FILE]);
  return engine!.runCompose(['-p', project, ...argv.slice(2)], { cwd: REPO_ROOT, env });
}

/** Seconds each container gets to stop when the test removes the cluster (a graceful stop is not what is tested here). */
const REMOVE_STOP_TIMEOUT_S = 3;

/** Everything of the project goes: `down -v`, then whatever an older compose leaves (podman-compose 1.0.3 keeps the network). */
function removeProject(engine: Engine): void {
  engine.runCompose(['-p', project, '-f', COMPOSE_FILE, 'down', '-v', '-t', String(REMOVE_STOP_TIMEOUT_S)], { cwd: REPO_ROOT, env, timeoutMs: 300_000 });
  const label = `label=com.docker.compose.project=${project}`;
  const left = engine.run(['ps', '-a', '-q', '--filter', label]).stdout.trim().split('\n').filter(Boolean);
  if (left.length) engine.run(['rm', '-f', '-v', ...left]);
  const volumes = engine.run(['volume', 'ls', '-q']).stdout.trim().split('\n').filter((v) => v.startsWith(`${project}_`));
  if (volumes.length) engine.run(['volume', 'rm', '-f', ...volumes]);
  const networks = engine.run(['network', 'ls', '--format', '{{.Name}}']).stdout.trim().split('\n').filter((n) => n.startsWith(`${project}_`));
  if (networks.length) engine.run(['network', 'rm', '-f', ...networks]);
}

function containerOf(service: string): string {
  const ids = engine!.must(['ps', '-q', '--filter', `label=com.docker.compose.project=${project}`, '--filter', `label=com.docker.compose.service=${service}`]).trim().split('\n').filter(Boolean);
  assert.equal(ids.length, 1, `one running container of ${service}`);
  return ids[0]!;
}

describe('the compose cluster: 3 judicators, 2 executors, a gateway', { concurrency: 1 }, () => {
  it('comes up as documented and runs the README example', async (t) => {
    if (!engine) return t.skip(unavailable);
    const started = Date.now();
    const up = compose('docker compose -f packaging/compose.yml up -d');
    assert.equal(up.status, 0, `${tail(up.stdout)}\n${tail(up.stderr)}`);
    await waitFor(
      async () => {
        if (!(await gatewayHealthy(gateway))) return false;
        const judicators = (await getJson(`${gateway}/api/judicators`)).body.judicators ?? [];
        const executors = (await getJson(`${gateway}/api/executors`)).body.executors ?? [];
        return judicators.length === 3 && executors.length === 2;
      },
      { what: 'the gateway to see 3 judicators and 2 executors', timeoutMs: CLUSTER_UP_WITHIN_MS, intervalMs: 1_000 },
    );
    t.diagnostic(`cluster up ${((Date.now() - started) / 1000).toFixed(1)} s after compose up`);
    const id = submitReadmeExample(gateway, work);
    const task = await taskWhenDone(gateway, id);
    assert.equal(task.status, 5, JSON.stringify(task.result));
    assert.equal(task.result.accepted, true);
  });

  it('survives the SIGKILL of the leading judicator: a task submitted right after is accepted and completed', async (t) => {
    if (!engine) return t.skip(unavailable);
    const judicators = (await getJson(`${gateway}/api/judicators`)).body.judicators as { name: string; leader: boolean }[];
    const leader = judicators.find((j) => j.leader)?.name.split('/').at(-1);
    assert.ok(leader, `a judicator leads: ${JSON.stringify(judicators)}`);
    const container = containerOf(leader!);
    engine.must(['kill', '--signal', 'KILL', container]);
    assert.equal(engine.must(['inspect', '--format', '{{.State.Running}}', container]).trim(), 'false', `${leader}'s container is dead`);
    t.diagnostic(`killed ${leader} (the leader) with SIGKILL`);

    const started = Date.now();
    const id = await submitForm(gateway, helloTask('C'));
    const task = await taskWhenDone(gateway, id);
    assert.equal(task.status, 5, JSON.stringify(task.result));
    assert.equal(task.result.accepted, true);
    t.diagnostic(`the task after the kill was done ${((Date.now() - started) / 1000).toFixed(1)} s after it was submitted`);
    const left = (await getJson(`${gateway}/api/judicators`)).body.judicators as { name: string; leader: boolean }[];
    t.diagnostic(`judicators now: ${left.map((j) => `${j.name.split('/').at(-1)}${j.leader ? ' (leader)' : ''}`).join(', ')}`);
  });
});
