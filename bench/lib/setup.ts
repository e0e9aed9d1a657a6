// What the benchmark needs on the machine: Debian packages (installed with apt-get when missing and we are
// root, as build/prepare.sh does for the build) and the kv2 binary (KV2_BINARY, or built from this tree
// into a temp dir that is removed at the end).
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from '../../test/helpers/kv2';
import { tempDir } from './cleanup';

function onPath(command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
}

/**
 * Installs the Debian packages whose command is missing; returns why it could not, per package, or
 * nothing. `wanted` maps a package to a command it provides.
 */
export function ensurePackages(wanted: Record<string, string>): Map<string, string> {
  const problems = new Map<string, string>();
  const missing = Object.entries(wanted).filter(([, command]) => !onPath(command) && !fs.existsSync(command)).map(([pkg]) => pkg);
  if (missing.length === 0) return problems;
  const isRoot = process.getuid?.() === 0;
  if (!isRoot || !onPath('apt-get')) {
    for (const pkg of missing) problems.set(pkg, `${pkg} is not installed (sudo apt-get install ${pkg})`);
    return problems;
  }
  console.log(`bench: installing Debian packages: ${missing.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  try {
    execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env, timeout: 300_000 });
    execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], { stdio: ['ignore', 'ignore', 'inherit'], env, timeout: 600_000 });
  } catch (error) {
    for (const pkg of missing) problems.set(pkg, `apt-get install ${pkg} failed: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}`);
    return problems;
  }
  for (const pkg of missing) if (!onPath(wanted[pkg]!) && !fs.existsSync(wanted[pkg]!)) problems.set(pkg, `${pkg} was installed but ${wanted[pkg]} is still missing`);
  return problems;
}

/**
 * Profiling mode (BENCH_KV2_PROFILE=<dir>): kv2 runs from source under node with --cpu-prof, which the
 * supervisor passes on to every module process (src/common/assets.ts selfCommand), so each process
 * writes a .cpuprofile into <dir> when it stops. Returns the wrapper script that stands in for the binary.
 */
function profilingWrapper(profileDir: string): string {
  fs.mkdirSync(profileDir, { recursive: true });
  const wrapper = path.join(tempDir('kv2-bench-profile-'), 'kv2');
  const loader = path.join(REPO_ROOT, 'node_modules/tsx/dist/loader.mjs');
  fs.writeFileSync(
    wrapper,
    `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} --import ${JSON.stringify(`file://${loader}`)} --cpu-prof --cpu-prof-dir=${JSON.stringify(path.resolve(profileDir))} ${JSON.stringify(path.join(REPO_ROOT, 'src/main.ts'))} "$@"\n`,
    { mode: 0o755 },
  );
  return wrapper;
}

/** The kv2 executable: $KV2_BINARY, else a fresh build of this tree (about a minute); see also profilingWrapper. */
export function kv2Binary(): { path: string; built: boolean; profileDir?: string } {
  const profileDir = process.env.BENCH_KV2_PROFILE;
  if (profileDir) {
    console.log(`bench: running kv2 from source with --cpu-prof; profiles go to ${path.resolve(profileDir)}`);
    return { path: profilingWrapper(profileDir), built: false, profileDir: path.resolve(profileDir) };
  }
  const given = process.env.KV2_BINARY;
  if (given) {
    if (!fs.existsSync(given)) throw new Error(`KV2_BINARY=${given} does not exist`);
    return { path: path.resolve(given), built: false };
  }
  const etcd = ensurePackages({ 'etcd-server': '/usr/bin/etcd', 'etcd-client': '/usr/bin/etcdctl' });
  if (etcd.size) throw new Error(`cannot build kv2: ${[...etcd.values()].join('; ')}`);
  const output = path.join(tempDir('kv2-bench-build-'), 'kv2');
  console.log(`bench: building kv2 from ${REPO_ROOT} into ${output} (set KV2_BINARY to use a built one)`);
  const started = Date.now();
  execFileSync(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'build/build.ts')], {
    cwd: REPO_ROOT,
    env: { ...process.env, KV2_BUILD_OUTPUT: output },
    stdio: ['ignore', 'ignore', 'inherit'],
    timeout: 600_000,
  });
  console.log(`bench: built in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  return { path: output, built: true };
}
