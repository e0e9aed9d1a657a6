// The Dockerfile, the swarm stack and compose files and the systemd units, checked where no Docker
// engine runs: their structure, the files the image build needs, the real docker CLI's parse of the
// YAML files (docker stack config, when a docker CLI is installed), systemd-analyze verify of the units
// (when installed), and that every kv2 flag they pass is one the built kv2 takes.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { TASK_USER_GROUP } from '../../src/ops/swarm';
import { REPO_ROOT, kv2Binary, runKv2 } from '../helpers/kv2';
import { makeTempDir } from '../helpers/temp';

const read = (file: string) => fs.readFileSync(path.join(REPO_ROOT, file), 'utf8');

function program(name: string): string | undefined {
  return spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).stdout.trim() || undefined;
}

/** `kv2 <role> --help`, or undefined when this build has no such role yet. */
const helpCache = new Map<string, string | undefined>();
function roleHelp(role: string): string | undefined {
  if (!helpCache.has(role)) {
    const help = runKv2([role, '--help']).stdout;
    helpCache.set(role, new RegExp(`\\$ kv2 ${role}\\b`).test(help) ? help : undefined);
  }
  return helpCache.get(role);
}

/** `kv2 <command> --help`. */
function helpOf(command: string): string {
  return runKv2([command, '--help']).stdout;
}

/** Asserts that `kv2 <role>` takes every `--flag` in `args`; says so and skips a role this build lacks. */
function assertRoleTakes(t: TestContext, where: string, role: string, args: string[]): void {
  const help = roleHelp(role);
  if (!help) {
    t.diagnostic(`${where}: this kv2 has no ${role} command yet; its flags are not checked`);
    return;
  }
  for (const arg of args.filter((a) => a.startsWith('--'))) {
    const name = arg.slice(2).split('=')[0]!;
    assert.match(help, new RegExp(`--${name}([ ,<]|$)`, 'm'), `${where}: kv2 ${role} has no flag --${name}`);
  }
}

/** The `command:` lists of a compose file: [role, ...args] per service (the files use one item a line). */
function composeCommands(yaml: string): Map<string, string[]> {
  const commands = new Map<string, string[]>();
  let service: string | undefined;
  let inCommand = false;
  for (const line of yaml.split('\n')) {
    const serviceMatch = /^ {2}([a-z0-9-]+):/.exec(line);
    if (serviceMatch) {
      service = serviceMatch[1];
      inCommand = false;
      continue;
    }
    if (/^ {4}command:\s*$/.test(line)) {
      inCommand = true;
      commands.set(service!, []);
      continue;
    }
    const item = /^ {6}- (.+)$/.exec(line);
    if (inCommand && item) commands.get(service!)!.push(item[1]!.trim());
    else if (inCommand && !/^\s*#/.test(line)) inCommand = false;
  }
  return commands;
}

test('the Dockerfile builds kv2 in a node:20-bookworm stage and ships it in bookworm-slim twice: plain (the default target) and judge (with the toolchains)', () => {
  const dockerfile = read('Dockerfile');
  const instructions = (text: string) =>
    text
      .replace(/\\\n/g, ' ')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
  const froms = instructions(dockerfile).filter((l) => l.startsWith('FROM '));
  assert.deepEqual(froms, [
    'FROM node:20-bookworm AS build',
    'FROM debian:bookworm-slim AS base',
    'FROM base AS toolchains',
    'FROM toolchains AS judge',
    'FROM base AS runtime',
  ], 'the plain runtime is the last stage, so `docker build .` makes it; --target judge the other');
  const stages = new Map(
    dockerfile
      .split(/^(?=FROM )/m)
      .slice(1)
      .map((stage) => [/^FROM \S+ AS (\S+)/.exec(stage)![1]!, stage] as const),
  );
  const build = stages.get('build')!;
  assert.match(build, /apt-get install [^\n]*(\\\n[^\n]*)*etcd-server etcd-client/);
  assert.match(build, /COPY package\.json package-lock\.json \.\/\nRUN npm ci/);
  assert.match(build, /RUN npm run build/);
  const pkg = JSON.parse(read('package.json')) as { scripts: Record<string, string> };
  assert.ok(pkg.scripts.build, 'package.json has the build script the Dockerfile runs');

  const base = stages.get('base')!;
  for (const needed of ['bash', 'ca-certificates', 'bubblewrap', 'util-linux', 'tini', 'libstdc++6']) {
    assert.match(base, new RegExp(`apt-get install[\\s\\S]*\\b${needed.replace(/\+/g, '\\+')}\\b`), `every image has ${needed}`);
  }
  const [user, group] = TASK_USER_GROUP.split(':');
  assert.match(base, new RegExp(`groupadd --system ${group}\\b`));
  assert.match(base, new RegExp(`useradd --system --gid ${group}[\\s\\S]*?\\b${user}\\n`), 'the task user that kv2 swarm passes is created');
  for (const toolchain of ['gcc', 'g++', 'libc6-dev', 'python3', 'default-jdk-headless']) {
    assert.match(stages.get('toolchains')!, new RegExp(`apt-get install[\\s\\S]*\\s${toolchain.replace(/\+/g, '\\+')}(\\s|$)`), `the judge image has ${toolchain}`);
    assert.doesNotMatch(instructions(base).join('\n'), new RegExp(`\\s${toolchain.replace(/\+/g, '\\+')}(\\s|$)`), `the plain image has no ${toolchain}`);
  }

  // The two images are the same kv2 on different bases: their stages differ only in the FROM line.
  const body = (name: string) => instructions(stages.get(name)!).slice(1);
  assert.deepEqual(body('judge'), body('runtime'));
  const runtime = stages.get('runtime')!;
  assert.match(runtime, /^COPY --from=build \/src\/kv2 \/usr\/local\/bin\/kv2$/m);
  assert.match(runtime, /^WORKDIR \/var\/lib\/kv2$/m);
  assert.match(runtime, /^VOLUME \["\/var\/lib\/kv2"\]$/m);
  assert.match(runtime, /^STOPSIGNAL SIGTERM$/m);
  assert.match(runtime, /^HEALTHCHECK .*CMD \["kv2", "health"/m);
  const entrypoint = body('runtime').filter((l) => l.startsWith('ENTRYPOINT '));
  assert.equal(entrypoint.length, 1);
  const argv = JSON.parse(entrypoint[0]!.slice('ENTRYPOINT '.length)) as string[];
  assert.equal(argv.at(-1), '/usr/local/bin/kv2', 'the entrypoint runs kv2 (behind tini, which reaps orphans)');
  assert.deepEqual(argv.slice(0, -1), ['/usr/bin/tini', '--']);
  assert.match(helpOf('health'), /--work-dir/, 'the HEALTHCHECK command exists in this kv2');
});

test('.dockerignore keeps host builds and node_modules out, and everything the build reads in', () => {
  const patterns = read('.dockerignore')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  // Top-level names only: that is all the file uses (checked here too).
  for (const p of patterns) assert.match(p, /^\/?[A-Za-z0-9_.*-]+$/, `pattern ${p} is a plain top-level name`);
  const ignored = (name: string) =>
    patterns.some((p) => new RegExp(`^${p.replace(/^\//, '').replace(/\./g, '\\.').replace(/\*/g, '[^/]*')}$`).test(name));
  for (const name of ['node_modules', 'kv2', 'dist', '.git']) assert.ok(ignored(name), `${name} is left out of the build context`);
  for (const name of ['package.json', 'package-lock.json', 'src', 'build', 'tsconfig.json']) assert.ok(!ignored(name), `${name} is in the build context`);
});

test('the swarm stack and the compose file parse with the docker CLI and pass only flags kv2 takes', (t) => {
  const stack = read('packaging/docker-stack.yml');
  const compose = read('packaging/compose.yml');
  const stackCommands = composeCommands(stack);
  assert.deepEqual([...stackCommands.keys()], ['judicator', 'gateway', 'executor']);
  const composeCommandsByService = composeCommands(compose);
  assert.deepEqual([...composeCommandsByService.keys()], ['judicator-1', 'judicator-2', 'judicator-3', 'gateway', 'executor-1', 'executor-2']);
  assert.match(compose, /executor-1: &executor\n\s+<<: \*kv2\n\s+image: \$\{KV2_JUDGE_IMAGE:-kv2:judge\}/, 'executors run the judge image');
  assert.match(stack, /executor:\n\s+<<: \*kv2-service\n\s+image: \$\{KV2_JUDGE_IMAGE:-kv2:judge\}/, 'in the stack too');
  for (const [file, commands] of [['docker-stack.yml', stackCommands], ['compose.yml', composeCommandsByService]] as const) {
    for (const [service, [role, ...args]] of commands) {
      assert.ok(role && ['judicator', 'gateway', 'executor'].includes(role), `${file} ${service} runs a role`);
      assertRoleTakes(t, `${file} ${service}`, role!, args);
    }
  }
  assert.match(stack, /--main-task-user-group=kv2-task:kv2-task/);
  assert.match(stack, /NAME: "\{\{\.Service\.Name\}\}\.\{\{\.Task\.Slot\}\}"/);

  const found = program('docker');
  if (!found) {
    t.diagnostic('no docker CLI on this machine: the YAML files are not parsed by docker stack config');
    return;
  }
  const docker: string = found;
  for (const file of [path.join(REPO_ROOT, 'packaging/docker-stack.yml'), path.join(REPO_ROOT, 'packaging/compose.yml')]) {
    const result = spawnSync(docker, ['stack', 'config', '-c', file], { encoding: 'utf8', env: { ...process.env, KV2_JUDICATORS: '3' }, timeout: 20_000 });
    assert.equal(result.status, 0, `docker stack config -c ${file}: ${result.stderr}`);
    assert.match(result.stdout, /image: kv2:latest/);
  }
  const judicators = spawnSync(docker, ['stack', 'config', '-c', path.join(REPO_ROOT, 'packaging/docker-stack.yml')], { encoding: 'utf8', env: { ...process.env, KV2_JUDICATORS: '3' } });
  assert.match(judicators.stdout, /judicator:[\s\S]*?replicas: 3/, 'KV2_JUDICATORS sets the judicator count');
});

test('the systemd units verify, stop the supervisor alone with SIGTERM, and pass only flags kv2 takes', (t) => {
  const dir = path.join(REPO_ROOT, 'packaging/systemd');
  const units = fs.readdirSync(dir).filter((f) => f.endsWith('.service')).sort();
  assert.deepEqual(units, ['kv2-executor.service', 'kv2-gateway.service', 'kv2-judicator.service', 'kv2-standalone.service']);
  const copies = makeTempDir(t);
  for (const unit of units) {
    const text = fs.readFileSync(path.join(dir, unit), 'utf8');
    const role = /^kv2-(\w+)\.service$/.exec(unit)![1]!;
    const value = (key: string) => new RegExp(`^${key}=(.*)$`, 'm').exec(text)?.[1];
    const exec = value('ExecStart')!.split(/\s+/);
    assert.deepEqual(exec.slice(0, 2), ['/usr/local/bin/kv2', role], `${unit} runs kv2 ${role}`);
    assert.equal(exec.at(-1), '$KV2_FLAGS', `${unit} takes extra flags from its environment file`);
    assertRoleTakes(t, unit, role, exec.slice(2, -1));
    assert.equal(value('KillMode'), 'mixed', `${unit}: the supervisor stops its modules itself, in order`);
    assert.equal(value('KillSignal'), 'SIGTERM');
    assert.ok(Number(value('TimeoutStopSec')) >= 45, `${unit}: time for the modules' grace periods`);
    assert.equal(value('Restart'), 'on-failure');
    assert.equal(value('RestartPreventExitStatus'), '2', `${unit}: a bad flag is not retried forever`);
    assert.equal(value('NoNewPrivileges'), 'yes');
    if (role === 'executor' || role === 'standalone') {
      assert.equal(value('User'), undefined, `${unit} runs as root to switch tasks to the task user`);
      assert.equal(value('Delegate'), 'yes');
    } else {
      assert.equal(value('User'), 'kv2');
      assert.equal(value('CapabilityBoundingSet'), '');
      assert.equal(value('ProtectSystem'), 'strict');
    }
    fs.writeFileSync(path.join(copies, unit), text.replace(/\/usr\/local\/bin\/kv2/g, kv2Binary()));
  }
  assert.match(read('packaging/systemd/kv2.sysusers.conf'), /^u kv2-task /m);

  const analyze = program('systemd-analyze');
  if (!analyze) {
    t.diagnostic('no systemd-analyze on this machine: the units are not verified by systemd');
    return;
  }
  const result = spawnSync(analyze, ['verify', '--man=no', ...units.map((u) => path.join(copies, u))], { encoding: 'utf8', timeout: 30_000 });
  // systemd-analyze reports unknown keys and bad values as warnings naming the file: there must be none.
  const complaints = result.stderr.split('\n').filter((line) => line.includes(copies));
  assert.deepEqual(complaints, [], `systemd-analyze verify:\n${result.stderr}`);
});
