// The BullMQ worker of the benchmark, in its own process as a deployment would run it: takes jobs from the
// queue with `concurrency` at once and runs each like the floor does (source written to a fresh dir,
// `sh -c <command>` spawned there), its stdout the job's return value, stored in Redis.
// Environment: BENCH_REDIS_PORT, BENCH_QUEUE, BENCH_CONCURRENCY, BENCH_TMP.
import { Worker } from 'bullmq';
import { loadIoredis } from '../lib/ioredis';
import { spawnTask } from './spawn-task';

interface JobData {
  command: string;
  source?: string;
  sourceName: string;
}

const Redis = loadIoredis();
const connection = new Redis({ host: '127.0.0.1', port: Number(process.env.BENCH_REDIS_PORT), maxRetriesPerRequest: null });
const worker = new Worker<JobData, string>(
  process.env.BENCH_QUEUE!,
  (job) => spawnTask(job.data.command, job.data.source, job.data.sourceName, process.env.BENCH_TMP),
  { connection: connection as never, concurrency: Number(process.env.BENCH_CONCURRENCY) },
);
worker.on('error', (error) => console.error(`bullmq worker: ${error.message}`));
worker.on('ready', () => console.log('bullmq worker ready'));

const stop = async () => {
  await worker.close().catch(() => undefined);
  connection.disconnect();
  process.exit(0);
};
process.on('SIGINT', () => void stop());
process.on('SIGTERM', () => void stop());
