import { z } from 'zod';
import { ForbiddenError } from '../domain/errors.js';
import { cursorOf, paging, slug } from '../domain/fields.js';
import { ROLE_PERMISSIONS, forbiddenMessage } from '../domain/token.js';
import type { AllocationService } from '../services/allocation-service.js';
import type { PlacementService } from '../services/placement-service.js';
import { json, route, type RouteSpec } from './route.js';
import {
  allocationPageSchema,
  capacityViewSchema,
  placementViewSchema,
  rebalanceResultSchema,
  tenantAllocationSchema,
  tenantPlacementSchema,
} from './responses/allocation-responses.js';

/**
 * Allocations: each tenant's caps per node, their history with reasons, a rebalance on demand,
 * and the fleet's capacity. Fleet-wide reads need 'fleet:read' (admin, operator). Applying a
 * rebalance changes every tenant's caps on every node, a fleet write like changing a node: admins
 * only ('fleet:write'); operators may dry-run it. A tenant's own allocation is 'tenant:read'.
 */
/** A page's last key: two slugs, tenant then node. */
const ALLOCATION_CURSOR_RE = /^[a-z][a-z0-9-]{0,62}\/[a-z][a-z0-9-]{0,62}$/;

export function allocationRoutes(allocations: AllocationService, placement: PlacementService): RouteSpec[] {
  return [
    route({
      method: 'get',
      path: '/v1/placements',
      summary:
        'Which nodes serve which tenant, tenants short of room or replicas (with how much is missing), and per-node reservations',
      tag: 'allocations',
      permission: 'fleet:read',
      query: z.strictObject({}),
      responses: { 200: json(placementViewSchema, 'The placement in force, its shortfalls and per-node usage') },
      handler: async () => ({ body: await placement.view() }),
    }),
    route({
      method: 'get',
      path: '/v1/tenants/:tenant/placement',
      summary: 'The nodes serving the tenant, why each was chosen, and what it lacks when short of replicas',
      tag: 'allocations',
      permission: 'tenant:read',
      params: z.strictObject({ tenant: slug }),
      query: z.strictObject({}),
      responses: { 200: json(tenantPlacementSchema, "The tenant's nodes and shortfalls") },
      handler: async ({ params }) => ({ body: await placement.tenant(params.tenant) }),
    }),
    route({
      method: 'get',
      path: '/v1/allocations',
      summary: "Every tenant's stored caps per node, with what bounds each, by tenant then node (paged)",
      tag: 'allocations',
      permission: 'fleet:read',
      query: z.strictObject({
        limit: paging.limit,
        cursor: cursorOf(ALLOCATION_CURSOR_RE, 'tenant/node').optional(),
      }),
      responses: { 200: json(allocationPageSchema, 'A page of stored caps') },
      handler: async ({ query }) => ({ body: await allocations.list({ limit: query.limit, cursor: query.cursor }) }),
    }),
    route({
      method: 'get',
      path: '/v1/tenants/:tenant/allocation',
      summary:
        "The tenant's caps per node (stored, else its reservation) and their history, newest first, with the reason for each change",
      tag: 'allocations',
      permission: 'tenant:read',
      params: z.strictObject({ tenant: slug }),
      query: z.strictObject({ limit: z.coerce.number().int().min(1).max(1000).default(100) }),
      responses: { 200: json(tenantAllocationSchema, "The tenant's caps per node and their history") },
      handler: async ({ params, query }) => ({ body: await allocations.tenant(params.tenant, query.limit) }),
    }),
    route({
      method: 'post',
      path: '/v1/rebalance',
      summary: "Recompute every tenant's caps now: with dryRun=true the plan with reasons, else applied (admins)",
      tag: 'allocations',
      permission: 'fleet:read',
      dryRun: 'own',
      query: z.strictObject({
        dryRun: z.enum(['true', 'false']).default('false').describe('Answer with the plan and change nothing'),
      }),
      responses: { 200: json(rebalanceResultSchema, 'The plan (`dryRun: true`), or the plan and what was applied') },
      handler: async ({ query, principal, write }) => {
        const plan = await allocations.plan();
        if (query.dryRun === 'true') return { body: { dryRun: true as const, plan } };
        if (!ROLE_PERMISSIONS[principal.role].has('fleet:write'))
          throw new ForbiddenError(
            forbiddenMessage(principal.role, 'apply a rebalance (it may dry-run one with ?dryRun=true)', 'fleet:write'),
          );
        const result = await allocations.apply(plan, write);
        return {
          body: {
            dryRun: false as const,
            revision: result.revision,
            changed: result.changed,
            items: result.items,
            plan,
          },
        };
      },
    }),
    route({
      method: 'get',
      path: '/v1/capacity',
      summary: 'Per node and group: capacity, reserved, allocated (enforced caps) and used (observed demand)',
      tag: 'allocations',
      permission: 'fleet:read',
      query: z.strictObject({}),
      responses: { 200: json(capacityViewSchema, 'Capacity per node and group') },
      handler: async () => ({ body: await allocations.capacity() }),
    }),
  ];
}
