// BullMQ on Debian's Redis: redis-server on a free loopback port with the append-only file fsynced on
// every write (appendfsync always: a job, once added, survives a crash, as a kv2 task does), a worker
// process (bullmq-worker.ts) with the same concurrency spawning the same command, and the client here:
// Queue.add to submit, Job.waitUntilFinished (QueueEvents, a Redis stream) to hold the result.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Job, Queue, QueueEvents } from 'bullmq';
import { REPO_ROOT } from '../../test/helpers/kv2';
import { freePort } from '../../test/helpers/ports';
import { waitFor } from '../../test/helpers/wait';
import { onCleanup, tempDir } from '../lib/cleanup';
import { wallNs } from '../lib/clock';
import { loadIoredis, type RedisClient } from '../lib/ioredis';
import { readMemory, type ProcessMemory } from '../lib/memory';
import { PAYLOAD_FILE, shellCommand, type BenchSystem, type Held, type TaskSpec } from './system';

const here = path.dirname(fileURLToPath(import.meta.url));
const QUEUE = 'bench';
/** Longest a job may take to finish before the benchmark calls it lost (ms). */
const JOB_WAIT_MS = 300_000;

interface Started {
  child: ChildProcess;
  output: () => string;
  /** SIGTERM, then SIGKILL after 10 s; resolves once it exited. Safe to call twice. */
  stop: () => Promise<void>;
}

function startChild(what: string, command: string, args: string[], env: NodeJS.ProcessEnv = {}): Started {
  const child = spawn(command, args, { cwd: REPO_ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-20_000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await gone;
    clearTimeout(timer);
  };
  onCleanup(`stop ${what}`, stop);
  return { child, output: () => output, stop };
}

export class BullmqSystem implements BenchSystem<Job> {
  readonly name = 'BullMQ';

  private constructor(
    private readonly queue: Queue,
    private readonly events: QueueEvents,
    private readonly connections: RedisClient[],
    private readonly redis: Started,
    private readonly worker: Started,
  ) {}

  static async start(slots: number): Promise<BullmqSystem> {
    const Redis = loadIoredis();
    const dir = tempDir('kv2-bench-redis-');
    const port = await freePort();
    const redis = startChild('redis-server', 'redis-server', [
      '--port', String(port), '--bind', '127.0.0.1', '--dir', dir,
      '--appendonly', 'yes', '--appendfsync', 'always', '--save', '',
      '--maxmemory-policy', 'noeviction', '--daemonize', 'no',
    ]);
    const connect = () => {
      const client = new Redis({ host: '127.0.0.1', port, maxRetriesPerRequest: null, lazyConnect: false });
      // Refused connections while redis-server starts are retried by ioredis; the probe below reports failure.
      client.on('error', () => undefined);
      onCleanup('close a redis connection', () => client.disconnect());
      return client;
    };
    const probe = connect();
    await waitFor(
      async () => {
        if (redis.child.exitCode !== null) throw new Error(`redis-server exited: ${redis.output()}`);
        return (await probe.ping()) === 'PONG';
      },
      { what: `redis-server on port ${port}`, timeoutMs: 30_000 },
    );
    probe.disconnect();

    const workerTmp = tempDir('kv2-bench-bullmq-tasks-');
    const worker = startChild('the BullMQ worker', process.execPath, ['--import', 'tsx', path.join(here, 'bullmq-worker.ts')], {
      BENCH_REDIS_PORT: String(port),
      BENCH_QUEUE: QUEUE,
      BENCH_CONCURRENCY: String(slots),
      BENCH_TMP: workerTmp,
    });
    await waitFor(
      () => {
        if (worker.child.exitCode !== null) throw new Error(`the BullMQ worker exited: ${worker.output()}`);
        return worker.output().includes('bullmq worker ready');
      },
      { what: 'the BullMQ worker', timeoutMs: 60_000 },
    );
    const queueConnection = connect();
    const eventsConnection = connect();
    const queue = new Queue(QUEUE, { connection: queueConnection as never });
    const events = new QueueEvents(QUEUE, { connection: eventsConnection as never });
    // Every Job.waitUntilFinished listens on both while it waits: a burst has hundreds waiting.
    events.setMaxListeners(0);
    queue.setMaxListeners(0);
    await queue.waitUntilReady();
    await events.waitUntilReady();
    const system = new BullmqSystem(queue, events, [queueConnection, eventsConnection], redis, worker);
    onCleanup('close the BullMQ client', () => system.closeClient());
    return system;
  }

  submit(spec: TaskSpec): Promise<Job> {
    return this.queue.add('task', { command: shellCommand(spec), source: spec.kind === 'payload' ? spec.source : undefined, sourceName: PAYLOAD_FILE });
  }

  collect(tickets: readonly Promise<Job>[]): Promise<Held[]> {
    return Promise.all(
      tickets.map(async (ticket) => {
        const job = await ticket;
        const output = (await job.waitUntilFinished(this.events, JOB_WAIT_MS)) as string;
        return { output, heldNs: wallNs() };
      }),
    );
  }

  memory(): ProcessMemory[] {
    const result: ProcessMemory[] = [];
    for (const [label, started] of [['redis-server', this.redis], ['bullmq worker', this.worker]] as const) {
      const pid = started.child.pid;
      const memory = pid === undefined ? undefined : readMemory(pid);
      if (memory) result.push({ ...memory, label });
    }
    return result;
  }

  private async closeClient(): Promise<void> {
    await this.events.close().catch(() => undefined);
    await this.queue.close().catch(() => undefined);
    for (const c of this.connections) c.disconnect();
  }

  async stop(): Promise<void> {
    await this.closeClient();
    await this.worker.stop();
    await this.redis.stop();
  }
}
