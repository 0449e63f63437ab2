import { prometheusContentType } from 'prom-client';
import type { Metrics } from '../metrics.js';
import type { NodeService } from '../services/node-service.js';
import type { ReplicaStatus } from '../services/replica-status.js';
import { route, text, type RouteSpec } from './route.js';

/**
 * Prometheus metrics. They name tenants, so a token with fleet:read is required (Prometheus sends
 * it with `authorization: { credentials_file: … }` in the scrape config).
 */
export function metricsRoute(
  metrics: Metrics,
  nodes: Pick<NodeService, 'all'>,
  replica: Pick<ReplicaStatus, 'leader'>,
): RouteSpec {
  return route({
    method: 'get',
    path: '/metrics',
    summary: 'Prometheus metrics (text exposition format)',
    tag: 'operations',
    permission: 'fleet:read',
    responses: { 200: text(prometheusContentType, 'The metrics, in the Prometheus text exposition format') },
    handler: async () => {
      // Read at scrape time, so the verdict ages with the clock like every other view's.
      metrics.recordNodes(await nodes.all());
      metrics.leader.set(replica.leader ? 1 : 0);
      const { contentType, body } = await metrics.text();
      return { text: { contentType, content: body } };
    },
  });
}
