// Tests of kv2 scale and kv2 swarm run the built kv2 with a stand-in `docker` first on PATH
// (fake-docker.cjs): this installs it in a temp dir, seeds its swarm, and reads back the calls.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeTempDir } from './temp';

const SCRIPT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fake-docker.cjs');

export interface FakeSwarm {
  services?: Record<string, { replicas: number; global?: boolean; image?: string; args?: string[] }>;
  networks?: Record<string, string>;
  /** Secrets by name, with their content. */
  secrets?: Record<string, string>;
}

export interface DockerCall {
  argv: string[];
  at: number;
}

export class FakeDocker {
  readonly dir: string;
  readonly binDir: string;

  constructor(hooks: { after: (fn: () => unknown) => void }, swarm: FakeSwarm = {}) {
    this.dir = makeTempDir(hooks, 'kv2-fake-docker-');
    this.binDir = path.join(this.dir, 'bin');
    fs.mkdirSync(this.binDir);
    // A shell wrapper, so that the script runs with this very node whatever PATH holds.
    fs.writeFileSync(path.join(this.binDir, 'docker'), `#!/bin/sh\nexec '${process.execPath}' '${SCRIPT}' "$@"\n`, { mode: 0o755 });
    this.setSwarm(swarm);
  }

  setSwarm(swarm: FakeSwarm): void {
    fs.writeFileSync(path.join(this.dir, 'state.json'), JSON.stringify({ services: swarm.services ?? {}, networks: swarm.networks ?? {}, secrets: swarm.secrets ?? {} }));
  }

  swarm(): Required<FakeSwarm> {
    return JSON.parse(fs.readFileSync(path.join(this.dir, 'state.json'), 'utf8')) as Required<FakeSwarm>;
  }

  /** The environment that puts this docker first on PATH. */
  env(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
    return { PATH: `${this.binDir}:${process.env.PATH}`, FAKE_DOCKER_DIR: this.dir, FAKE_DOCKER_FAIL: '', ...extra };
  }

  calls(): DockerCall[] {
    const file = path.join(this.dir, 'calls.jsonl');
    if (!fs.existsSync(file)) return [];
    return fs
      .readFileSync(file, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as DockerCall);
  }

  /** Every call so far, as `docker ...` command lines (argv joined by spaces). */
  commands(): string[] {
    return this.calls().map((c) => c.argv.join(' '));
  }

  clearCalls(): void {
    fs.rmSync(path.join(this.dir, 'calls.jsonl'), { force: true });
  }
}
