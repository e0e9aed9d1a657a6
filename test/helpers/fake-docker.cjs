// A stand-in for the docker CLI in tests of kv2 scale and kv2 swarm: it records every call (argv and
// time) and keeps a small swarm in a JSON file, so that `docker service ls/inspect/ps` and `secret ls`
// answer what earlier `service create/scale/rm`, `network create` and `secret create/rm` did, with
// docker's own error texts. A secret's content (read from stdin, `-`) is kept for the tests to check.
// FAKE_DOCKER_DIR holds calls.jsonl and state.json; FAKE_DOCKER_FAIL="<argv prefix>=><stderr>" makes
// the first call that starts with that prefix fail with exit 1 and that message.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const dir = process.env.FAKE_DOCKER_DIR;
if (!dir) {
  process.stderr.write('fake docker: FAKE_DOCKER_DIR is not set\n');
  process.exit(99);
}
const argv = process.argv.slice(2);
fs.appendFileSync(path.join(dir, 'calls.jsonl'), `${JSON.stringify({ argv, at: Date.now() })}\n`);

const stateFile = path.join(dir, 'state.json');
const state = fs.existsSync(stateFile) ? JSON.parse(fs.readFileSync(stateFile, 'utf8')) : { services: {}, networks: {} };
state.secrets = state.secrets || {};
const save = () => fs.writeFileSync(stateFile, JSON.stringify(state, null, 2));
const out = (text) => process.stdout.write(`${text}\n`);
const fail = (text, code = 1) => {
  process.stderr.write(`${text}\n`);
  process.exit(code);
};

const failRule = process.env.FAKE_DOCKER_FAIL;
if (failRule) {
  const [prefix, message] = failRule.split('=>');
  if (argv.join(' ').startsWith(prefix)) fail(message || 'Error: fake failure');
}

/** Flag values of a command line (`--name x`, `--name=x`); the rest are positional. */
function parse(args, withValue) {
  const flags = {};
  const positional = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg.startsWith('--') && positional.length === 0) {
      const [name, inline] = arg.slice(2).split(/=(.*)/s);
      if (inline !== undefined) flags[name] = inline;
      else if (withValue.includes(name)) flags[name] = args[++i];
      else flags[name] = true;
    } else positional.push(arg);
  }
  return { flags, positional };
}

const [group, command, ...rest] = argv;
const key = `${group} ${command}`;
switch (key) {
  case 'service ls': {
    for (const name of Object.keys(state.services)) out(name);
    break;
  }
  case 'service inspect': {
    const { flags, positional } = parse(rest, ['format']);
    const service = state.services[positional[0]];
    if (!service) fail(`Status: Error: no such service: ${positional[0]}, Code: 1`);
    if (flags.format && /Replicas/.test(flags.format)) out(service.global ? 'global' : String(service.replicas));
    else out(JSON.stringify([{ Spec: { Name: positional[0] } }]));
    break;
  }
  case 'service ps': {
    const { positional } = parse(rest, ['filter', 'format']);
    const service = state.services[positional[0]];
    if (!service) fail(`no such service: ${positional[0]}`);
    for (let i = 1; i <= service.replicas; i++) out(`task${positional[0]}${i}`);
    break;
  }
  case 'service create': {
    const { flags, positional } = parse(rest, ['replicas', 'network', 'env', 'name', 'publish', 'stop-grace-period', 'mode', 'secret']);
    const name = flags.name;
    if (state.services[name]) fail(`Error response from daemon: rpc error: code = AlreadyExists desc = name conflicts with an existing object: service ${name} already exists`);
    if (flags.network && !state.networks[flags.network]) fail(`Error response from daemon: network ${flags.network} not found`);
    for (const secret of rest.flatMap((arg, i) => (arg === '--secret' ? [rest[i + 1]] : []))) {
      if (!state.secrets[secret]) fail(`Error response from daemon: secret not found: ${secret}`);
    }
    state.services[name] = { replicas: Number(flags.replicas ?? 1), image: positional[0], args: positional.slice(1) };
    save();
    out(`fake${name}id`);
    out('overall progress: converged');
    break;
  }
  case 'service scale': {
    for (const spec of rest) {
      const [name, count] = spec.split('=');
      if (!state.services[name]) fail(`${name}: Error: No such service: ${name}`);
      state.services[name].replicas = Number(count);
      out(`${name} scaled to ${count}`);
    }
    save();
    break;
  }
  case 'service rm': {
    for (const name of rest) {
      if (!state.services[name]) fail(`Error: No such service: ${name}`);
      delete state.services[name];
      out(name);
    }
    save();
    break;
  }
  case 'network inspect': {
    const { positional } = parse(rest, ['format']);
    const driver = state.networks[positional[0]];
    if (!driver) fail(`Error response from daemon: network ${positional[0]} not found`);
    out(driver);
    break;
  }
  case 'network create': {
    const { flags, positional } = parse(rest, ['driver']);
    state.networks[positional[0]] = flags.driver || 'bridge';
    save();
    out(`fake${positional[0]}id`);
    break;
  }
  case 'secret ls': {
    for (const name of Object.keys(state.secrets)) out(name);
    break;
  }
  case 'secret create': {
    const [name, source] = rest;
    if (state.secrets[name]) fail(`Error response from daemon: rpc error: code = AlreadyExists desc = secret ${name} already exists`);
    state.secrets[name] = source === '-' ? fs.readFileSync(0, 'utf8') : fs.readFileSync(source, 'utf8');
    save();
    out(`fake${name}id`);
    break;
  }
  case 'secret rm': {
    for (const name of rest) {
      if (!state.secrets[name]) fail(`Error: No such secret: ${name}`);
      delete state.secrets[name];
      out(name);
    }
    save();
    break;
  }
  default:
    fail(`fake docker: no answer for "docker ${argv.join(' ')}"`, 125);
}
