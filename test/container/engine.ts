// The container engine the container tests drive, as a user of this machine would: `docker` when an
// engine answers, else podman (with runc; installed with apt-get when missing), configured for this
// machine through its own containers.conf (runtime, ulimits) so that the commands themselves stay the
// documented ones. Every container, volume and compose project a test makes is removed when it ends.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** How long one engine command may take (a cold image build pulls and installs packages). */
export const ENGINE_COMMAND_TIMEOUT_MS = 20 * 60_000;
/** How long `docker info` / `podman info` may take to say whether an engine answers. */
const ENGINE_PROBE_TIMEOUT_MS = 30_000;
/** Debian packages the podman path needs: the engine, its runtime, compose, DNS between containers, debootstrap. */
const PODMAN_PACKAGES = ['podman', 'runc', 'podman-compose', 'golang-github-containernetworking-plugin-dnsname', 'debootstrap'];

export interface Result {
  status: number | null;
  stdout: string;
  stderr: string;
}

type Hooks = { after: (fn: () => unknown) => void };

function which(program: string): string | undefined {
  return spawnSync('sh', ['-c', `command -v ${program}`], { encoding: 'utf8' }).stdout.trim() || undefined;
}

export class Engine {
  private constructor(
    /** The CLI: docker or podman; the documented commands' `docker` becomes this. */
    readonly cli: 'docker' | 'podman',
    /** Environment of every engine command (podman: CONTAINERS_CONF). */
    readonly env: NodeJS.ProcessEnv,
    /** Options every `build` adds to the documented command (podman: the image format, the npm CA and cache). */
    readonly buildOptions: string[],
    /** The compose command: `docker compose` or podman-compose. */
    readonly compose: string[],
  ) {}

  /**
   * The engine to use, or why there is none (the tests then skip). `dir` is a temp dir of the caller's,
   * removed after the tests, for podman's containers.conf and the build's npm configuration.
   */
  static find(dir: string): Engine | string {
    if (which('docker') && spawnSync('docker', ['info'], { stdio: 'ignore', timeout: ENGINE_PROBE_TIMEOUT_MS }).status === 0) {
      const compose = spawnSync('docker', ['compose', 'version'], { stdio: 'ignore' }).status === 0 ? ['docker', 'compose'] : ['docker-compose'];
      return new Engine('docker', { ...process.env }, [], compose);
    }
    const missing = PODMAN_PACKAGES.filter((pkg) => spawnSync('dpkg-query', ['-W', '-f=${Status}', pkg], { encoding: 'utf8' }).stdout !== 'install ok installed');
    if (!which('curl')) missing.push('curl');
    if (missing.length) {
      if (process.getuid?.() !== 0 || !which('apt-get')) return `no docker engine answers and podman is not installed (needs root and apt-get to install: ${missing.join(' ')})`;
      process.stdout.write(`[container] installing ${missing.join(' ')} with apt-get\n`);
      const install = spawnSync('sh', ['-c', `apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ${missing.join(' ')}`], { encoding: 'utf8', timeout: ENGINE_COMMAND_TIMEOUT_MS });
      if (install.status !== 0) return `apt-get install ${missing.join(' ')} failed: ${install.stderr.trim().split('\n').slice(-3).join(' ')}`;
    }
    if (process.getuid?.() !== 0) return 'podman here runs as root only (rootless podman needs subuids this machine may not have)';

    const conf = path.join(dir, 'containers.conf');
    fs.writeFileSync(conf, podmanConf());
    const env = { ...process.env, CONTAINERS_CONF: conf };
    const info = spawnSync('podman', ['info'], { encoding: 'utf8', env, timeout: ENGINE_PROBE_TIMEOUT_MS });
    if (info.status !== 0) return `podman info fails: ${info.stderr.trim().split('\n').slice(-2).join(' ')}`;
    return new Engine('podman', env, ['--format', 'docker', ...npmBuildVolumes(dir)], ['podman-compose']);
  }

  /** Runs an engine command to its end. */
  run(args: string[], options: { input?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv; cwd?: string } = {}): Result {
    const result = spawnSync(this.cli, args, {
      cwd: options.cwd,
      encoding: 'utf8',
      env: { ...this.env, ...options.env },
      input: options.input,
      timeout: options.timeoutMs ?? ENGINE_COMMAND_TIMEOUT_MS,
      maxBuffer: 64 * 1024 * 1024,
    });
    return { status: result.status, stdout: result.stdout ?? '', stderr: (result.stderr ?? '') + (result.error ? `\n${result.error.message}` : '') };
  }

  /** Runs an engine command and returns its stdout; throws with its output when it fails. */
  must(args: string[], options: { input?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv; cwd?: string } = {}): string {
    const result = this.run(args, options);
    if (result.status !== 0) throw new Error(`${this.cli} ${args.join(' ')} exited ${result.status}:\n${tail(result.stdout)}\n${tail(result.stderr)}`);
    return result.stdout;
  }

  /** Runs a compose command (`docker compose ...` or `podman-compose ...`). */
  runCompose(args: string[], options: { timeoutMs?: number; env?: NodeJS.ProcessEnv; cwd?: string } = {}): Result {
    const [program, ...prefix] = this.compose;
    const result = spawnSync(program!, [...prefix, ...args], {
      cwd: options.cwd,
      encoding: 'utf8',
      env: { ...this.env, ...options.env },
      timeout: options.timeoutMs ?? ENGINE_COMMAND_TIMEOUT_MS,
      maxBuffer: 64 * 1024 * 1024,
    });
    return { status: result.status, stdout: result.stdout ?? '', stderr: (result.stderr ?? '') + (result.error ? `\n${result.error.message}` : '') };
  }

  /**
   * Whether the container's HEALTHCHECK passes now. Docker runs it on its schedule and reports the state;
   * podman runs it through systemd timers, which a machine without systemd lacks, so it is run here.
   */
  healthy(container: string): boolean {
    if (this.cli === 'podman') return this.run(['healthcheck', 'run', container], { timeoutMs: 60_000 }).status === 0;
    return this.run(['inspect', '--format', '{{.State.Health.Status}}', container]).stdout.trim() === 'healthy';
  }

  /** Removes the container (and its anonymous volumes) when the test ends, whatever happened. */
  removeAfter(hooks: Hooks, container: string): void {
    hooks.after(() => {
      // Killed at once (docker rm -f does; podman's waits 10 s for a stop first unless told).
      this.run(['rm', '-f', '-v', ...(this.cli === 'podman' ? ['--time', '0'] : []), container], { timeoutMs: 120_000 });
    });
  }

  removeVolumeAfter(hooks: Hooks, volume: string): void {
    hooks.after(() => {
      this.run(['volume', 'rm', '-f', volume], { timeoutMs: 60_000 });
    });
  }
}

/**
 * podman's settings for this machine, not the commands': runc (crun is not installed everywhere), and
 * ulimits no higher than this machine allows (podman's defaults are above them, and runc then fails
 * with "error setting rlimit type 7 / 6"): open files up to the hard limit, processes up to the hard
 * limit and the kernel's pid_max (measured: runc refuses one above it).
 */
function podmanConf(): string {
  // This process's hard limits (the engine inherits them): the third column of /proc/self/limits.
  const hardLimit = (name: string) => new RegExp(`^${name}\\s+\\S+\\s+(\\S+)`, 'm').exec(fs.readFileSync('/proc/self/limits', 'utf8'))?.[1];
  const [files, processes] = [hardLimit('Max open files'), hardLimit('Max processes')];
  const pidMax = Number(fs.readFileSync('/proc/sys/kernel/pid_max', 'utf8').trim());
  const limit = (name: string, hard: string | undefined, cap = Infinity) => {
    const value = hard && /^\d+$/.test(hard) ? Math.min(Number(hard), cap) : undefined;
    return value ? [`"${name}=${value}:${value}"`] : [];
  };
  const ulimits = [...limit('nofile', files), ...limit('nproc', processes, pidMax || Infinity)];
  const lines = ['[containers]', `default_ulimits = [${ulimits.join(', ')}]`];
  if (!which('crun') && which('runc')) lines.push('[engine]', 'runtime = "runc"');
  return `${lines.join('\n')}\n`;
}

/**
 * Volumes for `podman build` that leave nothing in the images: npm reads /usr/local/etc/npmrc (an empty
 * directory in both base images) as its global config; it names this machine's CA bundle (the network
 * may re-sign TLS with a CA a fresh image lacks) and this machine's npm cache, so that `npm ci` in the
 * build stage fetches only what the host has not. Only the build stage runs npm; the runtime image
 * copies kv2 alone from it.
 */
function npmBuildVolumes(dir: string): string[] {
  const etc = path.join(dir, 'npm-etc');
  fs.mkdirSync(path.join(etc, 'npm-cache'), { recursive: true });
  const lines: string[] = ['cache=/usr/local/etc/npm-cache', 'prefer-offline=true'];
  const bundle = '/etc/ssl/certs/ca-certificates.crt';
  if (fs.existsSync(bundle)) {
    fs.copyFileSync(bundle, path.join(etc, 'ca-certificates.crt'));
    lines.push('cafile=/usr/local/etc/ca-certificates.crt');
  }
  fs.writeFileSync(path.join(etc, 'npmrc'), `${lines.join('\n')}\n`);
  const cache = spawnSync('npm', ['config', 'get', 'cache'], { encoding: 'utf8' }).stdout.trim() || path.join(os.homedir(), '.npm');
  fs.mkdirSync(cache, { recursive: true });
  return ['--volume', `${etc}:/usr/local/etc:ro`, '--volume', `${cache}:/usr/local/etc/npm-cache`];
}

export function tail(text: string, lines = 30): string {
  return text.trim().split('\n').slice(-lines).join('\n');
}
