import { z } from 'zod';
import { NODE_KINDS } from '../../domain/node.js';
import { pageOf, resources, resourceVector, timestamp } from './response-fields.js';

/** Per dimension: connections and requests per second. */
const perDimension = <T extends z.ZodType>(value: T) => z.object({ connections: value, requestsPerSecond: value });

const allocationReason = z
  .enum(['reservation', 'demand', 'limit', 'fair-share', 'idle-share', 'overcommitted', 'held'])
  .meta({ id: 'AllocationReason', description: 'What bounds a cap' });

const shortfall = z
  .object({
    tenantId: z.string(),
    kind: z.enum(NODE_KINDS),
    group: z.string(),
    needed: resources.describe('Reservation needed on each node'),
    replicasWanted: z.number().int(),
    replicasPlaced: z.number().int(),
    best: z
      .object({ node: z.string(), free: resources })
      .nullable()
      .describe('The eligible node (not already serving the tenant) closest to having room, or null if none'),
    missing: resources.nullable().describe('What `best` lacks to take a replica, per dimension'),
    message: z.string(),
  })
  .meta({ id: 'PlacementShortfall' });

export const placementViewSchema = z
  .object({
    replicas: z.number().int(),
    assignments: z.array(z.object({ tenantId: z.string(), kind: z.enum(NODE_KINDS), nodes: z.array(z.string()) })),
    unplaceable: z.array(shortfall).describe('Active tenants no node of their kind and group has room for'),
    degraded: z.array(shortfall).describe('Placed, but on fewer nodes than wanted'),
    nodes: z.array(
      z.object({
        node: z.string(),
        healthy: z.boolean(),
        eligible: z.boolean(),
        capacity: resources,
        reserved: resources,
        free: resources,
        tenants: z.number().int(),
        kind: z.enum(NODE_KINDS),
        group: z.string(),
        zone: z.string(),
        excluded: z.object({ reason: z.string(), since: timestamp }).nullable(),
      }),
    ),
  })
  .meta({ id: 'PlacementView' });

export const tenantPlacementSchema = z
  .object({
    tenant: z.string(),
    state: z.string(),
    replicas: z.number().int(),
    nodes: z.array(
      z.object({
        node: z.string(),
        kind: z.enum(NODE_KINDS),
        group: z.string(),
        zone: z.string(),
        reservation: resources,
        reason: z.string(),
        placedAt: timestamp,
      }),
    ),
    shortfalls: z
      .array(shortfall)
      .describe('Per proxy kind where the tenant has fewer nodes than wanted, with what is missing'),
  })
  .meta({ id: 'TenantPlacement' });

const storedAllocation = z
  .object({
    tenantId: z.string(),
    node: z.string(),
    maxConnections: z.number().int(),
    ceiling: z
      .number()
      .int()
      .nullable()
      .describe("Each of the tenant's frontends' maxconn on the node; null: stored before it existed"),
    requestsPerSecond: z.number().int(),
    weight: z.number().int(),
    reason: perDimension(z.string()).describe('What bounds each cap'),
    computedAt: timestamp,
    revision: z.number().int(),
  })
  .meta({ id: 'StoredAllocation' });

export const allocationPageSchema = pageOf(storedAllocation, 'AllocationPage');

const historyEntry = z.object({
  tenantId: z.string(),
  node: z.string(),
  dimension: z.enum(['connections', 'requestsPerSecond']),
  from: z.number().nullable().describe('Null for a tenant new on the node'),
  to: z.number().nullable().describe('Null when the tenant left the node'),
  reason: z.string(),
  detail: z.string(),
  revision: z.number().int(),
  at: timestamp,
});

export const tenantAllocationSchema = z
  .object({
    tenant: z.string(),
    current: z.array(
      z.object({
        tenantId: z.string(),
        node: z.string(),
        maxConnections: z.number().int(),
        ceiling: z.number().int().nullable().optional(),
        requestsPerSecond: z.number().int(),
        weight: z.number().int().nullable().describe('null while the caps are the reservation'),
        reason: perDimension(z.string()),
        computedAt: timestamp.nullable(),
        revision: z.number().int().nullable(),
        source: z
          .enum(['rebalancer', 'reservation'])
          .optional()
          .describe(
            'Stored by the rebalancer, or the reservation where no cap is stored yet (absent for a tenant that is not active)',
          ),
      }),
    ),
    history: z.array(historyEntry).describe('Newest first'),
  })
  .meta({ id: 'TenantAllocation' });

const plannedChange = z.object({
  tenantId: z.string(),
  node: z.string(),
  dimension: z.enum(['connections', 'requestsPerSecond']),
  from: z.number().nullable().describe('Null for a tenant new on the node'),
  to: z.number(),
  reason: allocationReason,
  detail: z.string(),
  kind: z.enum(NODE_KINDS),
  deferred: z
    .string()
    .nullable()
    .describe('Why the change waits (a node that reloads for it, inside its cadence); null: it goes out with the plan'),
});

const rebalancePlan = z
  .object({
    revision: z.number().int().describe('The desired-state revision the plan was computed at'),
    computedAt: timestamp,
    demand: z.enum(['stats', 'none']).describe('Where demand came from: the stats poller, or none'),
    allocations: z.array(
      z.object({
        tenantId: z.string(),
        node: z.string(),
        maxConnections: z.number(),
        ceiling: z.number(),
        requestsPerSecond: z.number(),
        weight: z.number(),
        reserved: resourceVector,
        limit: resourceVector,
        demand: resourceVector.nullable(),
        saturated: perDimension(z.boolean()),
        target: resourceVector,
        reasons: perDimension(allocationReason),
      }),
    ),
    changes: z.array(plannedChange),
    removals: z
      .array(z.object({ tenantId: z.string(), node: z.string() }))
      .describe('Stored caps of tenants no longer served: removed on apply'),
    nodes: z.array(
      z.object({
        node: z.string(),
        kind: z.enum(NODE_KINDS),
        group: z.string(),
        zone: z.string(),
        healthy: z.boolean(),
        unhealthyReason: z.string().nullable(),
        capacity: resourceVector,
        reserved: resourceVector,
        allocated: resourceVector,
        tenants: z.number().int(),
        overcommitted: z.boolean(),
      }),
    ),
    warnings: z.array(z.string()),
    pending: z.boolean().describe('Applying would write something'),
  })
  .meta({ id: 'RebalancePlan' });

export const rebalanceResultSchema = z
  .discriminatedUnion('dryRun', [
    z.object({ dryRun: z.literal(true), plan: rebalancePlan }),
    z.object({
      dryRun: z.literal(false),
      revision: z.number().int(),
      changed: z.boolean(),
      items: z.array(plannedChange.extend({ status: z.enum(['applied', 'not-executed']) })),
      plan: rebalancePlan,
    }),
  ])
  .meta({ id: 'RebalanceResult' });

const totals = {
  capacity: resourceVector,
  reserved: resourceVector,
  allocated: resourceVector.describe('The caps the proxies are told to enforce: stored ones, else reservations'),
  used: resourceVector.nullable().describe('Smoothed observed demand; null without a stats source'),
};

export const capacityViewSchema = z
  .object({
    revision: z.number().int(),
    nodes: z.array(
      z.object({
        ...totals,
        node: z.string(),
        kind: z.enum(NODE_KINDS),
        group: z.string(),
        zone: z.string(),
        healthy: z.boolean(),
        unhealthyReason: z.string().nullable(),
        vcpu: z.number(),
        memoryMb: z.number().int(),
        tenants: z.number().int(),
      }),
    ),
    groups: z.array(z.object({ ...totals, group: z.string(), nodes: z.number().int() })),
  })
  .meta({ id: 'CapacityView' });
