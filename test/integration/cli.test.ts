// The kv2 command line of the built executable: help, version, and bad input (exit 2, one line).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT, runKv2 } from '../helpers/kv2';
import { makeTempDir } from '../helpers/temp';

test('kv2 --help lists the commands and kv2 <command> --help every flag with its default', () => {
  const top = runKv2(['--help']);
  assert.equal(top.status, 0);
  for (const command of ['judicator', 'maintain']) assert.match(top.stdout, new RegExp(`\\b${command}\\b`));
  const judicator = runKv2(['judicator', '--help']);
  assert.equal(judicator.status, 0);
  assert.match(judicator.stdout, /--etcd-listen-peer-port <port>.*\(default: 2000\)/);
  assert.match(judicator.stdout, /--main-listen-port <port>.*\(default: 4000\)/);
  assert.match(judicator.stdout, /--boot-check-interval <n>.*\(default: 5\)/);
  assert.match(judicator.stdout, /--module-print-log/);
});

test('kv2 --version prints the version and says etcd is embedded', () => {
  const result = runKv2(['--version'], { env: { KV2_ETCD_BINARY: '' } });
  assert.equal(result.status, 0);
  const pkg = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8'));
  assert.match(result.stdout, new RegExp(`^kv2 ${pkg.version.replace(/\./g, '\\.')}`));
  assert.match(result.stdout, /etcd: embedded/);
});

const badInputs: [string, string[], RegExp][] = [
  ['an unknown command', ['frobnicate'], /unknown command "frobnicate"/],
  ['an unknown flag', ['judicator', '--no-such-flag'], /unknown flag --no-such-flag for kv2 judicator/],
  ['a port that is not a number', ['judicator', '--main-listen-port', 'abc'], /--main-listen-port must be a whole number/],
  ['a port out of range', ['judicator', '--etcd-listen-client-port', '70000'], /--etcd-listen-client-port must be at most 65535/],
  ['a bad log level', ['judicator', '--log-level', 'loud'], /--log-level must be one of/],
  ['two cluster modes at once', ['judicator', '--etcd-cluster-init-independent', '--etcd-cluster-join-member-client', 'http://x:2001'], /give only one of/],
  ['a bad name', ['judicator', '--main-name', 'a b'], /--main-name: a name is/],
  ['maintain with no pid file', ['maintain'], /give at least one pid file/],
  ['maintain of a non-pid file', ['maintain', 'judicator/config/main.json'], /is not a pid file/],
];

for (const [what, args, message] of badInputs) {
  test(`${what} exits 2 with a one-line message`, (t) => {
    const dir = makeTempDir(t);
    const isRole = args[0] === 'judicator';
    const result = runKv2(isRole ? [...args, '--work-dir', dir] : args, { cwd: dir });
    assert.equal(result.status, 2, `exit status for ${args.join(' ')}: ${result.stderr}`);
    const lines = result.stderr.trim().split('\n');
    assert.equal(lines.length, 1, `one line expected, got:\n${result.stderr}`);
    assert.match(lines[0]!, message);
    assert.deepEqual(fs.readdirSync(dir), [], 'bad input changes nothing on disk');
  });
}

test('a malformed --config file exits 2 with a one-line message', (t) => {
  const dir = makeTempDir(t);
  const file = path.join(dir, 'flags.json');
  fs.writeFileSync(file, '{ "main-listen-port": ');
  const broken = runKv2(['judicator', '--config', file, '--work-dir', dir]);
  assert.equal(broken.status, 2);
  assert.match(broken.stderr.trim(), /^kv2: cannot read config file .*flags\.json/);
  assert.equal(broken.stderr.trim().split('\n').length, 1);

  fs.writeFileSync(file, JSON.stringify({ 'main-listen-port': 'four thousand' }));
  const badValue = runKv2(['judicator', '--config', file, '--work-dir', dir]);
  assert.equal(badValue.status, 2);
  assert.match(badValue.stderr, /"main-listen-port" in the config file must be a whole number/);

  fs.writeFileSync(file, JSON.stringify({ 'no-such-flag': 1 }));
  const unknown = runKv2(['judicator', '--config', file, '--work-dir', dir]);
  assert.equal(unknown.status, 2);
  assert.match(unknown.stderr, /unknown flag "no-such-flag"/);
});
