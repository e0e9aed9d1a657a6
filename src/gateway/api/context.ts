// What the API routes share: the judicator calls, the waits and event follower built on them, whose tasks
// a request may see, the cluster listing, the limits, metrics and the log.
import type { FastifyRequest } from 'fastify';
import type { Logger } from '../../common/logging';
import type { CallbackAllowList } from '../../task/callback-allow';
import type { JudicatorListing } from '../judicator-link';
import type { GatewayConfig } from '../config';
import type { GatewayMetrics } from '../metrics';
import type { EventScope, TaskEventFollower } from '../task-events';
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
  /** GET /api/task/events: the follower of the judicators' task events that every stream shares. */
  events: TaskEventFollower;
  /** Whose tasks the request's token may see: 'all', or one user's. */
  scope(request: FastifyRequest): EventScope;
  /** The judicators registered in etcd now, the leader marked; throws UnavailableError. */
  judicators(): Promise<JudicatorListing[]>;
  limits: GatewayConfig['limits'];
  metrics: GatewayMetrics;
  logger: Logger;
  /** Hosts a task's callback may go to (--task-callback-allow). */
  callbacks: CallbackAllowList;
}
