// kv2 swarm up/down and kv2 scale against a stand-in docker that records its calls: the exact docker
// command sequences of the original start.bash, stop.bash and reconfig_tasks.bash (with their [WEAK]s
// fixed), the pauses between steps, the scale-down guard, and the errors when docker is missing or fails.
// Intervals are fractions of a second (with --force where shrinking), or shown by --dry-run: no test
// waits the real 25 s. swarm up makes the cluster's identity first, as docker secrets (the CA for the
// judicators, a join token for executors and gateways), and swarm down removes them.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { caFingerprint } from '../../src/pki/fingerprint';
import { FakeDocker, type FakeSwarm } from '../helpers/fake-docker';
import { judicatorPorts, runKv2, startNode, type RunResult } from '../helpers/kv2';
import { makeTempDir } from '../helpers/temp';
import { waitFor } from '../helpers/wait';

const NAME_ENV = 'NAME={{.Service.Name}}.{{.Task.Slot}}';

/** The kv2 flags each role's containers get (SPEC §9, reference §7.2 translated to kv2). */
const ROLE_FLAGS: Record<string, string[]> = {
  judicator: [
    '--etcd-cluster-service=judicator',
    '--etcd-advertise-address=DOCKER',
    '--mongodb-advertise-address=DOCKER',
    '--main-advertise-address=DOCKER',
    '--etcd-name=ENV',
    '--mongodb-name=ENV',
    '--main-name=ENV',
    '--cluster-ca-file=/run/secrets/kv2_cluster_ca',
    '--accept-join-token-file=/run/secrets/kv2_join_token',
  ],
  gateway: ['--join=tasks.judicator', '--join-token-file=/run/secrets/kv2_join_token', '--server-advertise-address=DOCKER', '--server-name=ENV'],
  executor: ['--join=tasks.judicator', '--join-token-file=/run/secrets/kv2_join_token', '--main-name=ENV', '--main-task-user-group=kv2-task:kv2-task', '--drain-timeout=20'],
};
/** The docker secrets each role's service gets: the CA is the judicators' alone. */
const ROLE_SECRETS: Record<string, string[]> = { judicator: ['kv2_cluster_ca', 'kv2_join_token'], gateway: ['kv2_join_token'], executor: ['kv2_join_token'] };
const PRINT_LOG_FLAGS = ['--boot-print-log', '--module-print-log'];

/**
 * The flags of ROLE_FLAGS that this build's `kv2 <role>` takes (a judicator without the MongoDB store
 * has no --mongodb-name); all of them when this build has no such role yet.
 */
function expectedRoleArgs(role: string, outputLog = false, grace = 30): string[] {
  const help = (roleHelp[role] ??= runKv2([role, '--help']).stdout);
  // Executors drain for the grace period less 10 s, kept for handing unfinished tasks back.
  const roleFlags = ROLE_FLAGS[role]!.map((arg) => (arg.startsWith('--drain-timeout=') ? `--drain-timeout=${Math.max(0, grace - 10)}` : arg));
  const wanted = [...roleFlags, ...(outputLog ? PRINT_LOG_FLAGS : [])];
  if (!new RegExp(`\\$ kv2 ${role}\\b`).test(help)) return wanted;
  return wanted.filter((arg) => new RegExp(`${arg.split('=')[0]}[ ,<]|${arg.split('=')[0]}$`, 'm').test(help));
}
const roleHelp: Record<string, string> = {};

function createCommand(role: string, replicas: number, options: { outputLog?: boolean; image?: string; network?: string; port?: number; grace?: number } = {}): string {
  return [
    'service create',
    `--stop-grace-period=${options.grace ?? 30}s`,
    `--replicas ${replicas}`,
    `--network ${options.network ?? 'kv2'}`,
    `--env ${NAME_ENV}`,
    ...ROLE_SECRETS[role]!.map((name) => `--secret ${name}`),
    ...(role === 'gateway' ? [`--publish ${options.port ?? 7000}:7000`] : []),
    `--name ${role}`,
    options.image ?? 'kv2:latest',
    role,
    ...expectedRoleArgs(role, options.outputLog, options.grace),
  ].join(' ');
}

const LS = 'service ls --format {{.Name}}';
const NET_INSPECT = 'network inspect --format {{.Driver}} kv2';
const NET_CREATE = 'network create --driver overlay --attachable kv2';
const SECRET_LS = 'secret ls --format {{.Name}}';
const SECRETS_CREATE = ['secret create kv2_cluster_ca -', 'secret create kv2_join_token -'];
/** The secrets a swarm of kv2 has (their content does not matter to scale). */
const SECRETS = { kv2_cluster_ca: 'ca', kv2_join_token: 'token' };
const inspect = (service: string) =>
  `service inspect --format {{if .Spec.Mode.Replicated}}{{.Spec.Mode.Replicated.Replicas}}{{else}}global{{end}} ${service}`;

/** Every distinct docker command line the tests below made kv2 run, for the last test's syntax check. */
const everyCommand = new Map<string, string[]>();

function kv2(docker: FakeDocker, args: string[], env: NodeJS.ProcessEnv = {}): RunResult {
  const result = runKv2(args, { env: docker.env(env), timeoutMs: 30_000 });
  for (const call of docker.calls()) everyCommand.set(JSON.stringify(call.argv), call.argv);
  return result;
}

function assertOk(result: RunResult): void {
  assert.equal(result.status, 0, `kv2 failed:\n${result.stdout}\n${result.stderr}`);
}

function assertUsage(result: RunResult, message: RegExp, status = 2): void {
  assert.equal(result.status, status, `exit status: ${result.stdout}\n${result.stderr}`);
  const lines = result.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line expected, got:\n${result.stderr}`);
  assert.match(lines[0]!, message);
}

const up = (counts: Record<string, number>): FakeSwarm => ({
  services: Object.fromEntries(Object.entries(counts).map(([name, replicas]) => [name, { replicas }])),
  networks: { kv2: 'overlay' },
  secrets: SECRETS,
});

test('swarm up 3 1 2 --output-log: network, one judicator grown one at a time with the interval, gateways, executors, cool-down', (t) => {
  const docker = new FakeDocker(t);
  const result = kv2(docker, ['swarm', 'up', '3', '1', '2', '--output-log', '--interval', '0.3', '--cool-down', '0.4']);
  const ended = Date.now();
  assertOk(result);
  assert.deepEqual(docker.commands(), [
    LS,
    NET_INSPECT,
    NET_CREATE,
    SECRET_LS,
    ...SECRETS_CREATE,
    createCommand('judicator', 1, { outputLog: true }),
    'service scale judicator=2',
    'service scale judicator=3',
    createCommand('gateway', 1, { outputLog: true }),
    createCommand('executor', 2, { outputLog: true }),
  ]);
  const calls = docker.calls();
  assert.ok(calls[7]!.at - calls[6]!.at >= 300, `the 2nd judicator came ${calls[7]!.at - calls[6]!.at} ms after the 1st`);
  assert.ok(calls[8]!.at - calls[7]!.at >= 300, `the 3rd judicator came ${calls[8]!.at - calls[7]!.at} ms after the 2nd`);
  assert.ok(ended - calls[10]!.at >= 400, `the cool-down lasted ${ended - calls[10]!.at} ms`);
  // The secrets: the CA (certificate and key) and a join token pinned to it, given to docker on stdin only.
  const { secrets } = docker.swarm();
  assert.match(secrets.kv2_cluster_ca!, /-----BEGIN CERTIFICATE-----[^]*-----BEGIN PRIVATE KEY-----/);
  const fingerprint = /kv2j1\.[a-z2-7]{6}\.[a-z2-7]{26}\.([0-9a-f]{64})\./.exec(secrets.kv2_join_token!)?.[1];
  assert.ok(fingerprint, `a join token: ${secrets.kv2_join_token}`);
  assert.equal(caFingerprint(secrets.kv2_cluster_ca!), `sha256:${fingerprint}`, 'the token pins that CA');
  for (const call of docker.calls()) assert.ok(!call.argv.some((arg) => arg.includes('PRIVATE KEY') || arg.startsWith('kv2j1.')), 'no secret on a command line');
  assert.deepEqual(
    Object.fromEntries(Object.entries(docker.swarm().services).map(([name, s]) => [name, s.replicas])),
    { judicator: 3, gateway: 1, executor: 2 },
  );
  assert.equal(docker.swarm().networks.kv2, 'overlay');
  assert.match(result.stdout, /> docker service scale judicator=2/);
  assert.match(result.stdout, /port 7000 of every swarm node/);
});

test('swarm up with a custom image, network, port and grace period; an existing overlay network and the secrets are reused', (t) => {
  const docker = new FakeDocker(t, { networks: { lab: 'overlay' }, secrets: SECRETS });
  const result = kv2(docker, ['swarm', 'up', '1', '2', '1', '--image', 'registry.local/kv2:0.2', '--network', 'lab', '--gateway-port', '8080', '--stop-grace-period', '45', '--cool-down', '0']);
  assertOk(result);
  const options = { image: 'registry.local/kv2:0.2', network: 'lab', port: 8080, grace: 45 };
  assert.deepEqual(docker.commands(), [
    LS,
    'network inspect --format {{.Driver}} lab',
    SECRET_LS,
    createCommand('judicator', 1, options),
    createCommand('gateway', 2, options),
    createCommand('executor', 1, options),
  ]);
  assert.match(docker.commands()[5]!, /--drain-timeout=35\b/, 'executors drain for the grace period less 10 s');
  assert.deepEqual(docker.swarm().secrets, SECRETS, 'the cluster keeps its identity');
});

test('swarm up refuses, before changing anything, when a service exists already', (t) => {
  const docker = new FakeDocker(t, up({ judicator: 3 }));
  const result = kv2(docker, ['swarm', 'up', '3', '1', '2', '--cool-down', '0']);
  assertUsage(result, /the service judicator already exists: kv2 scale .* kv2 swarm down/, 1);
  assert.deepEqual(docker.commands(), [LS]);
});

test('swarm up refuses a network of the same name that is not an overlay network', (t) => {
  const docker = new FakeDocker(t, { networks: { kv2: 'bridge' } });
  const result = kv2(docker, ['swarm', 'up', '1', '0', '0', '--cool-down', '0']);
  assertUsage(result, /the network kv2 exists but is a bridge network; .*--network/);
  assert.deepEqual(docker.commands(), [LS, NET_INSPECT]);
});

test('swarm up --dry-run prints the commands and the default waits (25 s between judicators, 25 s cool-down) and changes nothing', (t) => {
  const docker = new FakeDocker(t);
  const result = kv2(docker, ['swarm', 'up', '3', '0', '1', '--dry-run']);
  assertOk(result);
  assert.deepEqual(docker.commands(), [LS, NET_INSPECT, SECRET_LS], 'only queries run');
  const shown = result.stdout.split('\n').filter((line) => line.startsWith('>') || line.includes('would wait'));
  assert.deepEqual(
    shown.map((line) => line.replace(/\s+\(dry run: not run\)$/, '').trim()),
    [
      `> docker ${NET_CREATE}`,
      ...SECRETS_CREATE.map((command) => `> docker ${command}`),
      `> docker ${createCommand('judicator', 1).replace(NAME_ENV, `'${NAME_ENV}'`)}`,
      '(dry run: would wait 25 s)',
      '> docker service scale judicator=2',
      '(dry run: would wait 25 s)',
      '> docker service scale judicator=3',
      `> docker ${createCommand('executor', 1).replace(NAME_ENV, `'${NAME_ENV}'`)}`,
      '(dry run: would wait 25 s)',
    ],
  );
  assert.deepEqual(docker.swarm().services, {});
});

test('swarm down removes executors, then gateways, then judicators; missing services are skipped', (t) => {
  const docker = new FakeDocker(t, up({ judicator: 3, gateway: 1, executor: 2, other: 1 }));
  assertOk(kv2(docker, ['swarm', 'down']));
  assert.deepEqual(docker.commands(), [LS, 'service rm executor', 'service rm gateway', 'service rm judicator', SECRET_LS, 'secret rm kv2_cluster_ca kv2_join_token']);
  assert.deepEqual(Object.keys(docker.swarm().services), ['other'], 'services that are not kv2 roles are left alone');
  assert.deepEqual(docker.swarm().secrets, {});

  docker.clearCalls();
  docker.setSwarm({ ...up({ judicator: 1 }), secrets: {} });
  const partial = kv2(docker, ['swarm', 'down']);
  assertOk(partial);
  assert.deepEqual(docker.commands(), [LS, 'service rm judicator', SECRET_LS]);
  assert.match(partial.stdout, /There is no service executor; nothing to remove/);
});

test('scale up one task at a time with the interval between steps', (t) => {
  const docker = new FakeDocker(t, up({ executor: 1 }));
  const result = kv2(docker, ['scale', 'executor', '4', '0.25']);
  assertOk(result);
  assert.deepEqual(docker.commands(), [inspect('executor'), 'service scale executor=2', 'service scale executor=3', 'service scale executor=4']);
  const calls = docker.calls();
  for (let i = 2; i < calls.length; i++) {
    assert.ok(calls[i]!.at - calls[i - 1]!.at >= 250, `step ${i} came ${calls[i]!.at - calls[i - 1]!.at} ms after the one before`);
  }
  assert.equal(docker.swarm().services.executor!.replicas, 4);
  assert.match(result.stdout, /goes from 1 to 4 tasks, one task at a time, 0\.25 s apart/);
});

test('scale down with an interval under 25 s is refused unless --force, and changes nothing', (t) => {
  const docker = new FakeDocker(t, up({ judicator: 3 }));
  const refused = kv2(docker, ['scale', 'judicator', '1', '5']);
  assertUsage(refused, /scaling judicator down with 5 s between steps: .*at least 25 s.*--force/);
  assert.deepEqual(docker.commands(), [inspect('judicator')]);
  assert.equal(docker.swarm().services.judicator!.replicas, 3);

  docker.clearCalls();
  const forced = kv2(docker, ['scale', 'judicator', '1', '0.2', '--force']);
  assertOk(forced);
  assert.deepEqual(docker.commands(), [inspect('judicator'), 'service scale judicator=2', 'service scale judicator=1']);
  const calls = docker.calls();
  assert.ok(calls[2]!.at - calls[1]!.at >= 200);
});

test('scale down without an interval waits the default 25 s between steps (shown by --dry-run)', (t) => {
  const docker = new FakeDocker(t, up({ executor: 3 }));
  const result = kv2(docker, ['scale', 'executor', '1', '--dry-run']);
  assertOk(result);
  assert.deepEqual(docker.commands(), [inspect('executor')]);
  assert.match(result.stdout, /> docker service scale executor=2 +\(dry run: not run\)\n {2}\(dry run: would wait 25 s\)\n.*\n?> docker service scale executor=1/);
  assert.equal(docker.swarm().services.executor!.replicas, 3);
});

test('scale to 0 steps down to one task, then removes the service; with interval 0 (forced) it removes at once', (t) => {
  const docker = new FakeDocker(t, up({ executor: 3, gateway: 2 }));
  assertOk(kv2(docker, ['scale', 'executor', '0', '0.1', '--force']));
  assert.deepEqual(docker.commands(), [inspect('executor'), 'service scale executor=2', 'service scale executor=1', 'service rm executor']);
  assert.equal(docker.swarm().services.executor, undefined);

  docker.clearCalls();
  assertOk(kv2(docker, ['scale', 'gateway', '0', '0', '--force']));
  assert.deepEqual(docker.commands(), [inspect('gateway'), 'service rm gateway']);
});

test('scale brings back a removed service (created as swarm up would) and grows one at a service at 0 tasks', (t) => {
  const docker = new FakeDocker(t, { services: { gateway: { replicas: 0 } }, networks: { kv2: 'overlay' }, secrets: SECRETS });
  assertOk(kv2(docker, ['scale', 'executor', '2', '0.1', '--output-log']));
  assert.deepEqual(docker.commands(), [inspect('executor'), NET_INSPECT, createCommand('executor', 1, { outputLog: true }), 'service scale executor=2']);

  docker.clearCalls();
  assertOk(kv2(docker, ['scale', 'gateway', '2', '0.1']));
  assert.deepEqual(docker.commands(), [inspect('gateway'), 'service scale gateway=1', 'service scale gateway=2']);

  // Interval 0: one step; a judicator service still starts with one task, which founds the cluster.
  docker.clearCalls();
  assertOk(kv2(docker, ['scale', 'judicator', '3', '0']));
  assert.deepEqual(docker.commands(), [inspect('judicator'), NET_INSPECT, createCommand('judicator', 1), 'service scale judicator=3']);
  assert.equal(docker.swarm().services.judicator!.replicas, 3);
});

test('scale to the current count changes nothing; a global service and bad arguments are refused', (t) => {
  const docker = new FakeDocker(t, { services: { executor: { replicas: 2 }, gateway: { replicas: 1, global: true } }, networks: {} });
  const same = kv2(docker, ['scale', 'executor', '2', '30']);
  assertOk(same);
  assert.match(same.stdout, /already runs 2 tasks/);
  assert.deepEqual(docker.commands(), [inspect('executor')]);

  assertUsage(kv2(docker, ['scale', 'gateway', '3']), /global mode/);
  assertUsage(kv2(docker, ['scale', 'mongodb', '3']), /unknown role "mongodb": kv2 scale takes judicator, gateway, executor/);
  assertUsage(kv2(docker, ['scale', 'executor', 'many']), /the number of executors must be a whole number/);
  assertUsage(kv2(docker, ['scale', 'executor', '3', 'soon']), /the interval must be a number of seconds/);
  assertUsage(kv2(docker, ['swarm', 'up', '3', '1']), /three counts/);
  assertUsage(kv2(docker, ['swarm', 'up', '3', '1', 'x']), /the number of executors must be a whole number/);
  assertUsage(kv2(docker, ['swarm', 'sideways']), /unknown swarm action "sideways"/);
  assertUsage(kv2(docker, ['swarm', 'up', '1', '1', '1', '--image', 'not an image']), /--image "not an image" is not an image name/);
});

test('docker missing from PATH, and a docker command that fails, are one-line errors naming the cause', (t) => {
  const docker = new FakeDocker(t, up({ executor: 1 }));
  const emptyBin = makeTempDir(t);
  const missing = runKv2(['scale', 'executor', '3', '0'], { env: { PATH: emptyBin } });
  assertUsage(missing, /the docker command is not installed or not on PATH: .*swarm manager/, 1);

  const failing = kv2(docker, ['scale', 'executor', '3', '0.1'], {
    FAKE_DOCKER_FAIL: 'service scale executor=3=>Error response from daemon: This node is not a swarm manager.',
  });
  assert.equal(failing.status, 1);
  assert.match(failing.stderr, /kv2: docker service scale executor=3 failed \(exit 1\): Error response from daemon: This node is not a swarm manager\./);
  assert.equal(docker.swarm().services.executor!.replicas, 2, 'the step before the failure stays done');

  docker.clearCalls();
  const queryFails = kv2(docker, ['swarm', 'down'], { FAKE_DOCKER_FAIL: 'service ls=>Cannot connect to the Docker daemon. Is the docker daemon running?' });
  assertUsage(queryFails, /docker service ls --format '\{\{\.Name\}\}' failed: Cannot connect to the Docker daemon/, 1);
});

// Runs after the tests above (a file's tests run in order) and checks what they made kv2 run.
test('the real docker CLI accepts every command line the tests above made kv2 run (flag syntax)', (t) => {
  const realDocker = spawnSync('sh', ['-c', 'command -v docker'], { encoding: 'utf8' }).stdout.trim();
  if (!realDocker) {
    t.skip('no docker CLI on this machine: the flag syntax check of the docker commands is skipped');
    return;
  }
  const socket = path.join(makeTempDir(t), 'no-daemon.sock');
  const commands = [...everyCommand.values()];
  const kinds = new Set(commands.map((argv) => argv.slice(0, 2).join(' ')));
  for (const kind of ['service ls', 'service inspect', 'service create', 'service scale', 'service rm', 'network inspect', 'network create', 'secret ls', 'secret create', 'secret rm']) {
    assert.ok(kinds.has(kind), `the tests ran docker ${kind}`);
  }
  for (const argv of commands) {
    // With no daemon, docker parses the command line first: a bad flag exits 125 with its usage.
    // (`secret create NAME -` reads the secret from stdin before it dials the daemon: give it one.)
    const result = spawnSync(realDocker, argv, { encoding: 'utf8', input: 'a secret\n', env: { ...process.env, DOCKER_HOST: `unix://${socket}` }, timeout: 20_000 });
    assert.notEqual(result.status, 125, `docker ${argv.join(' ')} was refused by the real docker CLI:\n${result.stderr}`);
    assert.match(result.stderr, /Cannot connect to the Docker daemon|connect: no such file/, `docker ${argv.join(' ')}: ${result.stderr}`);
  }
});

test('--etcd-advertise-address=DOCKER and --main-advertise-address=DOCKER advertise this machine\'s own IPv4 address', async (t) => {
  const own = Object.values(os.networkInterfaces())
    .flat()
    .filter((a) => a && a.family === 'IPv4' && !a.internal)
    .map((a) => a!.address);
  if (own.length === 0) {
    t.skip('this machine has no non-loopback IPv4 address: the DOCKER address check is skipped');
    return;
  }
  const dir = makeTempDir(t);
  const ports = await judicatorPorts();
  const flags = [
    '--etcd-listen-peer-port', String(ports.peer),
    '--etcd-listen-client-port', String(ports.client),
    '--main-listen-port', String(ports.rpc),
    '--etcd-listen-address', '127.0.0.1',
    '--main-listen-address', '127.0.0.1',
  ];
  const node = startNode(t, dir, ['judicator', ...flags, '--etcd-advertise-address', 'DOCKER', '--main-advertise-address', 'DOCKER']);
  const configs = await waitFor(
    () => {
      if (node.exited) throw new Error(`kv2 exited early:\n${node.tail()}`);
      try {
        const etcd = JSON.parse(fs.readFileSync(path.join(dir, 'judicator/config/etcd.json'), 'utf8'));
        const main = JSON.parse(fs.readFileSync(path.join(dir, 'judicator/config/main.json'), 'utf8'));
        return { etcd, main };
      } catch {
        return undefined;
      }
    },
    { what: 'the judicator config files', timeoutMs: 20_000 },
  );
  assert.equal(configs.etcd.advertise.address, own[0]);
  assert.equal(configs.main.advertise.address, own[0]);
  await node.stop('SIGINT');
});
