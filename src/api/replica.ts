import type { ReplicaStatus } from '../services/replica-status.js';
import { json, route, type RouteSpec } from './route.js';
import { replicaStatusSchema } from './responses/replica-responses.js';

/**
 * Which replica answered and whether it leads (runs the reconciler, stats poller, rebalancer and
 * retention). Fleet internals, so fleet:read, like /metrics; behind a load balancer, ask each
 * replica directly or watch the `switchyard_leader` gauge.
 */
export function replicaRoute(replica: ReplicaStatus): RouteSpec {
  return route({
    method: 'get',
    path: '/v1/status',
    summary: 'This control-plane replica: its id, whether it leads the fleet jobs and since when, its version',
    tag: 'operations',
    permission: 'fleet:read',
    responses: { 200: json(replicaStatusSchema, 'This replica') },
    handler: async () => ({ body: replica.view() }),
  });
}
