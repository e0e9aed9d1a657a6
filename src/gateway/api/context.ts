// What the API routes share: the judicator calls, the cluster listing, the limits, metrics and the log.
import type { Logger } from '../../common/logging';
import type { CallbackAllowList } from '../../task/callback-allow';
import type { JudicatorListing } from '../judicator-link';
import type { GatewayConfig } from '../config';
import type { GatewayMetrics } from '../metrics';
import type { JudicatorCalls } from './judicator';
import type { TaskWaits } from './wait';

declare module 'fastify' {
  interface FastifyRequest {
    /** The route's name in the HTTP metrics when it is not the route's URL (a waiting GET /api/task). */
    metricsRoute: string | null;
  }
}

export interface ApiContext {
  calls: JudicatorCalls;
  /** GET /api/task?wait=. */
  waits: TaskWaits;
  /** The judicators registered in etcd now, the leader marked; throws UnavailableError. */
  judicators(): Promise<JudicatorListing[]>;
  limits: GatewayConfig['limits'];
  metrics: GatewayMetrics;
  logger: Logger;
  /** Hosts a task's callback may go to (--task-callback-allow). */
  callbacks: CallbackAllowList;
}
