// Prometheus metrics of a judicator (`GET /metrics`): RPC calls and latency, assignments, report
// latency, tasks by status and queue depth (read from the store when scraped), executors and free slots,
// store latency, and the process metrics prom-client collects.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { FastifyInstance } from 'fastify';
import { STATUS_NAMES, TaskStatus } from '../task/types';
import type { TaskStore } from '../store/task-store';

export class JudicatorMetrics {
  readonly registry = new Registry();
  readonly rpcCalls: Counter<'method' | 'result'>;
  readonly rpcSeconds: Histogram<'method'>;
  readonly assigned: Counter;
  readonly completed: Counter;
  readonly storeSeconds: Histogram<'operation'>;

  constructor(store: TaskStore, isLeader: () => boolean) {
    collectDefaultMetrics({ register: this.registry, prefix: 'kv2_judicator_' });
    this.rpcCalls = new Counter({ name: 'kv2_rpc_calls_total', help: 'RPC calls by method and result code', labelNames: ['method', 'result'], registers: [this.registry] });
    this.rpcSeconds = new Histogram({
      name: 'kv2_rpc_seconds',
      help: 'RPC latency by method (report includes long-poll waits)',
      labelNames: ['method'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30],
      registers: [this.registry],
    });
    this.assigned = new Counter({ name: 'kv2_tasks_assigned_total', help: 'Tasks handed to executors by this judicator', registers: [this.registry] });
    this.completed = new Counter({ name: 'kv2_tasks_completed_total', help: 'Task results accepted by this judicator', registers: [this.registry] });
    this.storeSeconds = new Histogram({
      name: 'kv2_store_seconds',
      help: 'Task store operation latency',
      labelNames: ['operation'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers: [this.registry],
    });
    const tasks = new Gauge({
      name: 'kv2_tasks',
      help: 'Tasks in the store by status',
      labelNames: ['status'],
      registers: [this.registry],
      async collect() {
        const counts = await store.countByStatus();
        for (const [code, name] of Object.entries(STATUS_NAMES)) tasks.set({ status: name }, counts[Number(code) as TaskStatus] ?? 0);
      },
    });
    const queue = new Gauge({
      name: 'kv2_queue_depth',
      help: 'Tasks waiting for an executor (Pending and Retrying, not held)',
      registers: [this.registry],
      async collect() {
        const counts = await store.countByStatus();
        const holders = await store.holders();
        const held = holders.reduce((sum, h) => sum + h.tasks, 0);
        const waiting = (counts[TaskStatus.PENDING] ?? 0) + (counts[TaskStatus.RETRYING] ?? 0) + (counts[TaskStatus.COMPILING] ?? 0) + (counts[TaskStatus.RUNNING] ?? 0) - held;
        queue.set(Math.max(waiting, 0));
      },
    });
    const executors = new Gauge({
      name: 'kv2_executors',
      help: 'Executors known to the cluster',
      registers: [this.registry],
      async collect() {
        executors.set((await store.listExecutors()).length);
      },
    });
    const slots = new Gauge({
      name: 'kv2_executor_free_slots',
      help: 'Free task slots the executors reported last',
      registers: [this.registry],
      async collect() {
        slots.set((await store.listExecutors()).reduce((sum, e) => sum + (e.vacant ?? 0), 0));
      },
    });
    const leader = new Gauge({
      name: 'kv2_judicator_is_leader',
      help: '1 on the leading judicator',
      registers: [this.registry],
      collect() {
        leader.set(isLeader() ? 1 : 0);
      },
    });
  }

  /** Times a store call. */
  async timed<T>(operation: string, work: () => Promise<T>): Promise<T> {
    const end = this.storeSeconds.startTimer({ operation });
    try {
      return await work();
    } finally {
      end();
    }
  }

  routes(app: FastifyInstance): void {
    app.get('/metrics', async (_request, reply) => {
      reply.header('content-type', this.registry.contentType);
      return this.registry.metrics();
    });
  }
}
