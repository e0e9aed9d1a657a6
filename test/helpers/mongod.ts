// Real mongods for tests that need one: found through KV2_MONGOD_BINARY or the PATH (never downloaded),
// each in a temp dir on a free loopback port, stopped, reaped and removed when the test ends. Tests that
// need one and find none print one line saying so and skip.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MongoClient } from 'mongodb';
import { findOnPath } from '../../src/common/assets';
import { createLogger } from '../../src/common/logging';
import { hello, initiate } from '../../src/mongodb/commands';
import { MongodProcess, mongodArgs } from '../../src/mongodb/mongod-process';
import { freePort } from './ports';
import { waitFor } from './wait';

type AfterHook = { after: (fn: () => unknown) => void };

/** The mongod tests use, or the reason there is none. */
export function testMongod(): { path: string } | { missing: string } {
  const fromEnv = process.env.KV2_MONGOD_BINARY;
  if (fromEnv) return fs.existsSync(fromEnv) ? { path: fromEnv } : { missing: `KV2_MONGOD_BINARY=${fromEnv} does not exist` };
  const onPath = findOnPath('mongod');
  return onPath ? { path: onPath } : { missing: 'no mongod (set KV2_MONGOD_BINARY or put mongod on the PATH; none can be downloaded here)' };
}

/** `test(name, skipUnlessMongod('what'), fn)`: skip options printing the one line that says why. */
export function skipUnlessMongod(what: string): { skip?: string } {
  const found = testMongod();
  if ('path' in found) return {};
  const reason = `${what} skipped: ${found.missing}`;
  process.stdout.write(`# ${reason}\n`);
  return { skip: reason };
}

const quiet = createLogger('test-mongod', { maxBytes: 1 << 20, keep: 0, printToStdout: false, dir: undefined, level: 'warn' });

/** A mongod of a test, on its own port and dir; restartable on its data. */
export class TestMongod {
  process!: MongodProcess;

  private constructor(
    private readonly exe: string,
    readonly port: number,
    readonly dir: string,
    private readonly config: Parameters<typeof mongodArgs>[0] & { stop: { step_down_secs: number; timeout: number } },
  ) {}

  get host(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** Starts a mongod with --replSet `set` (not initiated) and waits until it answers. */
  static async start(hooks: AfterHook, options: { set?: string; port?: number } = {}): Promise<TestMongod> {
    const found = testMongod();
    if (!('path' in found)) throw new Error(found.missing);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kv2-mongod-'));
    const port = options.port ?? (await freePort());
    const config = { replica_set: options.set ?? 'rs', listen: { address: '127.0.0.1', port }, cache_size_gb: 0.25, stop: { step_down_secs: 5, timeout: 10 } };
    const mongod = new TestMongod(found.path, port, dir, config);
    hooks.after(async () => {
      await mongod.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    });
    await mongod.run();
    return mongod;
  }

  private async run(): Promise<void> {
    const dataDir = path.join(this.dir, 'data');
    fs.mkdirSync(dataDir, { recursive: true });
    this.process = new MongodProcess(this.exe, mongodArgs(this.config, dataDir), quiet);
    const client = new MongoClient(`mongodb://${this.host}/?directConnection=true`, { serverSelectionTimeoutMS: 1_000 });
    try {
      await waitFor(
        async () => {
          if (!this.process.running) throw new Error(`mongod exited: ${this.process.lastLines().join('\n')}`);
          await hello(client.db('admin'));
          return true;
        },
        { what: `mongod on port ${this.port}`, timeoutMs: 60_000, intervalMs: 200 },
      );
    } finally {
      await client.close();
    }
  }

  /** Stops mongod (the shutdown command, then signals) and reaps it. */
  async stop(): Promise<void> {
    await this.process?.stop(this.config, quiet);
  }

  /** Stops mongod and starts it again on the same data and port. */
  async restart(): Promise<void> {
    await this.stop();
    await this.run();
  }
}

/** Starts a mongod with --replSet `set` (not initiated) and waits until it answers. */
export function startMongod(hooks: AfterHook, options: { set?: string; port?: number } = {}): Promise<TestMongod> {
  return TestMongod.start(hooks, options);
}

/** A one-member replica set, initiated and primary: what the MongoDB store needs. */
export async function startSingleNodeReplicaSet(hooks: AfterHook, set = 'rs'): Promise<{ uri: string; mongod: TestMongod }> {
  const mongod = await startMongod(hooks, { set });
  const client = new MongoClient(`mongodb://${mongod.host}/?directConnection=true`, { serverSelectionTimeoutMS: 2_000 });
  try {
    await initiate(client.db('admin'), set, mongod.host);
    await waitFor(async () => (await hello(client.db('admin'))).isWritablePrimary, { what: 'the one-member set to elect its primary', timeoutMs: 60_000 });
  } finally {
    await client.close();
  }
  return { uri: `mongodb://${mongod.host}/?replicaSet=${set}`, mongod };
}
