// The gateway's Prometheus metrics (GET /metrics): HTTP requests and their latency per route, judicator
// RPC calls and their latency per method and outcome, tasks submitted, event streams open, the judicators
// and executors the cluster has now, and the process metrics. One registry per server, so servers in one process (tests)
// do not collide.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface ClusterSnapshot {
  judicators: number;
  executors: number;
  slots: number;
  freeSlots: number;
}

export class GatewayMetrics {
  readonly registry = new Registry();
  readonly httpRequests: Counter<'method' | 'route' | 'code'>;
  readonly httpDuration: Histogram<'method' | 'route'>;
  readonly rpcDuration: Histogram<'method' | 'outcome'>;
  readonly tasksSubmitted: Counter<'outcome'>;
  readonly eventStreams: Gauge;

  /** `snapshot` is asked on each scrape; it may fail (no judicator), which leaves the gauges unset. */
  constructor(snapshot: () => Promise<ClusterSnapshot>) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'kv2_gateway_' });
    this.httpRequests = new Counter({
      name: 'kv2_gateway_http_requests_total',
      help: 'HTTP requests answered, by method, route and status code',
      labelNames: ['method', 'route', 'code'],
      registers,
    });
    this.httpDuration = new Histogram({
      name: 'kv2_gateway_http_request_duration_seconds',
      help: 'Time to answer an HTTP request, by method and route',
      labelNames: ['method', 'route'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.rpcDuration = new Histogram({
      name: 'kv2_gateway_rpc_duration_seconds',
      help: 'Judicator RPC calls, by method and outcome (the result code name, or unavailable)',
      labelNames: ['method', 'outcome'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.tasksSubmitted = new Counter({
      name: 'kv2_gateway_tasks_submitted_total',
      help: 'Tasks submitted through this gateway, by outcome (the result code name)',
      labelNames: ['outcome'],
      registers,
    });
    this.eventStreams = new Gauge({
      name: 'kv2_gateway_event_streams',
      help: 'GET /api/task/events streams open now',
      registers,
    });
    let pending: Promise<ClusterSnapshot | undefined> | undefined;
    // One cluster read per scrape, shared by the four gauges.
    const read = () => {
      pending ??= snapshot()
        .catch(() => undefined)
        .finally(() => setTimeout(() => (pending = undefined), 0));
      return pending;
    };
    const gauge = (name: string, help: string, pick: (s: ClusterSnapshot) => number) =>
      new Gauge({
        name,
        help,
        registers,
        async collect() {
          const value = await read();
          if (value) this.set(pick(value));
        },
      });
    gauge('kv2_cluster_judicators', 'Judicators registered in etcd', (s) => s.judicators);
    gauge('kv2_cluster_executors', 'Executors the judicators know', (s) => s.executors);
    gauge('kv2_cluster_executor_slots', 'Task slots of all executors', (s) => s.slots);
    gauge('kv2_cluster_executor_free_slots', 'Free task slots of all executors', (s) => s.freeSlots);
  }

  async text(): Promise<{ body: string; contentType: string }> {
    return { body: await this.registry.metrics(), contentType: this.registry.contentType };
  }
}
