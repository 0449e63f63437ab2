import type { PlanService } from '../services/plan-service.js';
import { json, route, type RouteSpec } from './route.js';
import { fleetPlanSchema } from './responses/plan-responses.js';

/**
 * Pending work across the fleet: per node, the runtime commands it would be sent now and whether
 * it needs a reload, and why. Every write answers the same shape for its own change with `?dryRun=true`.
 */
export function planRoutes(plans: PlanService): RouteSpec[] {
  return [
    route({
      method: 'get',
      path: '/v1/plan',
      summary: 'Show what each node still needs: runtime commands and pending reloads',
      tag: 'fleet',
      permission: 'fleet:read',
      responses: { 200: json(fleetPlanSchema, 'The plan per node') },
      handler: async () => ({ body: await plans.current(), headers: { 'Cache-Control': 'no-store' } }),
    }),
  ];
}
