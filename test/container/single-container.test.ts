// The single-container run, built and run for real: both images built from this checkout, then every
// command of docs/operations.md "A single container" run as written (this run's container, volume,
// port and backup directory swapped in): healthy, the web UI, the README's C++ example and C, Python 3
// and Java tasks, the maintenance shell through exec -i, a backup into a host directory and its check,
// a stop within the grace period with exit 0, and a new container on the same volume with every task.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { before, describe, it } from 'node:test';
import { fileHooks } from '../helpers/file-hooks';
import { freePort } from '../helpers/ports';
import { makeTempDir } from '../helpers/temp';
import { waitFor } from '../helpers/wait';
import { HELLO_TASKS, gatewayHealthy, getJson, helloTask, submitForm, submitReadmeExample, taskWhenDone } from './api';
import { forThisRun, sectionCommands, theCommand, type Instance } from './docs-commands';
import { tail, type Engine } from './engine';
import { JUDGE_IMAGE, PLAIN_IMAGE, SINGLE_CONTAINER_SECTION, imageSize, readyEngine } from './images';

/** How long a started container may take to be healthy (the image's HEALTHCHECK start period is 60 s). */
const HEALTHY_WITHIN_MS = 120_000;
/** The grace period the docs give `docker stop` (and `--stop-timeout`). */
const STOP_GRACE_S = 60;

const hooks = fileHooks();
const work = makeTempDir(hooks, 'kv2-container-');
const backups = makeTempDir(hooks, 'kv2-container-backups-');
const where = `docs/operations.md "${SINGLE_CONTAINER_SECTION}"`;
const commands = sectionCommands('docs/operations.md', SINGLE_CONTAINER_SECTION);
const say = (line: string) => process.stdout.write(`# ${line}\n`);

let engine: Engine | undefined;
let unavailable: string | undefined;
let instance: Instance;
let gateway: string;
const submitted: string[] = [];

before(async () => {
  const ready = readyEngine(work, say);
  if (typeof ready === 'string') {
    unavailable = ready;
    return;
  }
  engine = ready;
  const port = await freePort();
  const id = `${process.pid}-${Date.now().toString(36)}`;
  instance = { container: ['kv2', `kv2-test-${id}`], volume: ['kv2-data', `kv2-test-${id}-data`], port: [7000, port], dirs: [['/srv/kv2-backups', backups]] };
  gateway = `http://127.0.0.1:${port}`;
  engine.removeAfter(hooks, instance.container[1]);
  engine.removeVolumeAfter(hooks, instance.volume![1]);
});

/** Runs the documented command that starts with `prefix`, as this run; returns its result. */
function documented(prefix: string, options: { input?: string; timeoutMs?: number } = {}) {
  const argv = forThisRun(theCommand(commands, prefix, where), instance);
  return { argv, result: engine!.run(argv, options) };
}

async function startAndWaitHealthy(): Promise<number> {
  const started = Date.now();
  const { argv, result } = documented('docker run -d --name kv2 ');
  assert.equal(result.status, 0, `${engine!.cli} ${argv.join(' ')}:\n${result.stderr}`);
  await waitFor(
    async () => {
      const state = engine!.run(['inspect', '--format', '{{.State.Status}}', instance.container[1]]).stdout.trim();
      if (state === 'exited') throw new Error(`the container exited:\n${tail(engine!.run(['logs', instance.container[1]]).stdout)}`);
      return (await gatewayHealthy(gateway)) && engine!.healthy(instance.container[1]);
    },
    { what: 'the container to be healthy (its HEALTHCHECK and /api/health)', timeoutMs: HEALTHY_WITHIN_MS, intervalMs: 1_000 },
  );
  return (Date.now() - started) / 1000;
}

describe('a single container, as docs/operations.md runs it', { concurrency: 1 }, () => {
  it('has the plain and the judge image built from the checkout: only the judge one has the toolchains; both the HEALTHCHECK, STOPSIGNAL and volume', (t) => {
    if (!engine) return t.skip(unavailable);
    const plain = imageSize(engine, PLAIN_IMAGE);
    const judge = imageSize(engine, JUDGE_IMAGE);
    t.diagnostic(`sizes: ${PLAIN_IMAGE} ${(plain / 1e6).toFixed(1)} MB, ${JUDGE_IMAGE} ${(judge / 1e6).toFixed(1)} MB`);
    assert.ok(plain < judge / 2, 'the plain image stays small without the toolchains');
    const probe = 'for p in bwrap gcc g++ python3 javac java; do command -v $p >/dev/null && echo $p; done; true';
    const has = (image: string) => engine!.must(['run', '--rm', '--entrypoint', 'sh', image, '-c', probe]).trim().split('\n');
    assert.deepEqual(has(PLAIN_IMAGE), ['bwrap']);
    assert.deepEqual(has(JUDGE_IMAGE), ['bwrap', 'gcc', 'g++', 'python3', 'javac', 'java']);
    for (const image of [PLAIN_IMAGE, JUDGE_IMAGE]) {
      const config = JSON.parse(engine.must(['image', 'inspect', '--format', '{{json .Config}}', image])) as Record<string, any>;
      // docker keeps the health check in the config; podman beside it.
      const healthcheck: { Test?: string[] } | undefined = engine.cli === 'podman' ? JSON.parse(engine.must(['image', 'inspect', '--format', '{{json .HealthCheck}}', image])) : config.Healthcheck;
      assert.deepEqual(healthcheck?.Test, ['CMD', 'kv2', 'health', '--timeout', '10'], `${image} has the HEALTHCHECK`);
      assert.equal(config.StopSignal, 'SIGTERM');
      assert.deepEqual(Object.keys(config.Volumes ?? {}), ['/var/lib/kv2']);
      assert.equal(config.WorkingDir, '/var/lib/kv2');
    }
  });

  it('runs the whole system as documented: healthy, the web UI and its assets, no deprecation warning at start', async (t) => {
    if (!engine) return t.skip(unavailable);
    t.diagnostic(`healthy ${(await startAndWaitHealthy()).toFixed(1)} s after run`);
    const health = documented('docker exec kv2 kv2 health');
    assert.equal(health.result.status, 0, health.result.stdout);
    assert.match(health.result.stdout, /ok: gateway\/server: running .*answers 200/);

    const page = await fetch(`${gateway}/`);
    assert.equal(page.status, 200);
    const html = await page.text();
    const assets = [...html.matchAll(/(?:src|href)="\/?([^"#?]+\.(?:js|css|svg))"/g)].map((m) => m[1]!);
    assert.ok(assets.length > 0, `the page names its assets:\n${html.slice(0, 500)}`);
    for (const asset of assets) {
      const response = await fetch(`${gateway}/${asset}`);
      assert.equal(response.status, 200, `GET /${asset}`);
      assert.ok((await response.arrayBuffer()).byteLength > 0, `/${asset} has content`);
    }

    const logs = documented('docker logs kv2').result;
    const output = logs.stdout + logs.stderr;
    assert.doesNotMatch(output, /DeprecationWarning|FSTDEP\d+|ExperimentalWarning/, 'no deprecation warning at start');
    const confinement = output.split('\n').find((line) => line.includes('"task confinement"'));
    assert.ok(confinement, 'the executor says how it confines tasks');
    const facts = JSON.parse(confinement!.slice(confinement!.indexOf('{'))) as { sandbox: string; enforced: Record<string, string> };
    t.diagnostic(`sandbox: ${facts.sandbox}`);
    t.diagnostic(`limits: ${JSON.stringify(facts.enforced)}`);
    assert.ok(facts.enforced.memory && facts.enforced.processes, 'it names what enforces each limit');
    if (engine.cli === 'podman') assert.notEqual(facts.sandbox, 'none', 'podman gives the sandbox without added privileges');
  });

  it("accepts the README's C++ example, and C, Python 3 and Java tasks", async (t) => {
    if (!engine) return t.skip(unavailable);
    const id = submitReadmeExample(gateway, work);
    submitted.push(id);
    const task = await taskWhenDone(gateway, id);
    assert.equal(task.status, 5, JSON.stringify(task.result));
    assert.equal(task.result.execute_output, 'Hello, World!\n');
    assert.equal(task.result.accepted, true);
    for (const language of Object.keys(HELLO_TASKS)) {
      const languageId = await submitForm(gateway, helloTask(language));
      submitted.push(languageId);
      const done = await taskWhenDone(gateway, languageId);
      assert.equal(done.status, 5, `${language}: ${JSON.stringify(done.result)}`);
      assert.equal(done.result.accepted, true, `${language}: ${done.result.execute_output}`);
    }
  });

  it("lists the judge image's languages: C, C++, Python 3 and Java, each on its one executor", async (t) => {
    if (!engine) return t.skip(unavailable);
    const { body } = await getJson(`${gateway}/api/languages`);
    assert.equal(body.result, 0);
    const languages = body.languages as { name: string; version: string; executors: number }[];
    t.diagnostic(`languages: ${languages.map((l) => `${l.name} ${l.version}`).join(', ')}`);
    assert.deepEqual(languages.map((l) => [l.name, l.executors]), [['C', 1], ['C++', 1], ['Java', 1], ['Python 3', 1]]);
    for (const language of languages) assert.match(language.version, /^\d+(\.\d+)+/, `${language.name} has a version`);
    const cli = engine.run(['exec', instance.container[1], 'kv2', 'languages']);
    assert.equal(cli.status, 0, cli.stderr);
    assert.match(cli.stdout, /^\s*Java\s+\d\S*\s+1\s*$/m);
  });

  it('opens the maintenance shell through exec -i: the module is locked, and free again after it', async (t) => {
    if (!engine) return t.skip(unavailable);
    const { result } = documented('docker exec -it kv2 kv2 maintain ', { input: 'kv2 health\nexit\n', timeoutMs: 120_000 });
    assert.equal(result.status, 0, result.stdout + result.stderr);
    assert.match(result.stdout, /Locked judicator\/data\/main\.pid: pid \d+/);
    assert.match(result.stdout, /ok: judicator\/main: under maintenance \(locked by kv2 maintain, pid \d+\)/);
    await waitFor(() => documented('docker exec kv2 kv2 health').result.status === 0, { what: 'kv2 health after the shell', timeoutMs: 30_000 });
  });

  it('backs up into a directory of the host, and the backup checks out', (t) => {
    if (!engine) return t.skip(unavailable);
    const backup = documented('docker run --rm --network container:kv2 ', { timeoutMs: 180_000 });
    assert.equal(backup.result.status, 0, backup.result.stdout + backup.result.stderr);
    assert.ok(fs.readdirSync(backups).length === 1, 'the backup is in the host directory');
    const verify = documented('docker run --rm -v /srv/kv2-backups:/backups kv2:latest backup --verify ', { timeoutMs: 180_000 });
    assert.equal(verify.result.status, 0, verify.result.stdout + verify.result.stderr);
    assert.match(verify.result.stdout, new RegExp(`backup OK: .* \\(${submitted.length} tasks, ${submitted.length} done`));
  });

  it(`stops within the grace period (${STOP_GRACE_S} s) with exit 0`, (t) => {
    if (!engine) return t.skip(unavailable);
    const started = Date.now();
    const { result } = documented('docker stop ', { timeoutMs: (STOP_GRACE_S + 30) * 1000 });
    const seconds = (Date.now() - started) / 1000;
    assert.equal(result.status, 0, result.stderr);
    t.diagnostic(`stopped in ${seconds.toFixed(1)} s`);
    assert.ok(seconds < STOP_GRACE_S, `stopped in ${seconds} s`);
    assert.equal(engine.must(['inspect', '--format', '{{.State.ExitCode}}', instance.container[1]]).trim(), '0');
  });

  it('a new container on the same named volume has every task', async (t) => {
    if (!engine) return t.skip(unavailable);
    const removed = documented('docker rm ');
    assert.equal(removed.result.status, 0, removed.result.stderr);
    t.diagnostic(`healthy again ${(await startAndWaitHealthy()).toFixed(1)} s after run`);
    for (const id of submitted) {
      const { body } = await getJson(`${gateway}/api/task?id=${id}`);
      assert.equal(body.result, 0, `task ${id}: ${JSON.stringify(body)}`);
      assert.equal(body.task.status, 5);
    }
    const { body } = await getJson(`${gateway}/api/task/list?user=1&limit=100&page=0`);
    assert.deepEqual(body.tasks.map((task: { id: string }) => task.id).sort(), [...submitted].sort());
  });
});
