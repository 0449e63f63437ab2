import { z } from 'zod';
import { MEMBER_HEALTH_STATUSES } from '../../domain/member-health.js';
import { NODE_KINDS } from '../../domain/node.js';
import { TENANT_STATES } from '../../domain/tenant.js';
import { pageOf, resources, timestamp } from './response-fields.js';

const pendingCapacity = z.object({
  reservation: resources,
  limit: resources,
  requestedBy: z.string(),
  requestedAt: timestamp,
});

const approval = z.object({
  pending: pendingCapacity
    .nullable()
    .describe('A capacity change waiting for approval (the tenant keeps its current capacity until then)'),
  decidedBy: z.string().nullable().describe('Who made the last decision (`policy` for an auto-approval)'),
  decidedAt: timestamp.nullable(),
  reason: z.string().nullable(),
});

export const tenantSchema = z
  .object({
    id: z.string(),
    displayName: z.string(),
    state: z.enum(TENANT_STATES),
    reservation: resources,
    limit: resources,
    weight: z.number().int(),
    labels: z.record(z.string(), z.string()),
    proxyKind: z
      .enum(NODE_KINDS)
      .nullable()
      .describe('The proxy kind that serves the tenant, or null for every kind its group has nodes of'),
    approval,
    revision: z.number().int(),
    createdAt: timestamp,
    updatedAt: timestamp,
  })
  .meta({ id: 'Tenant' });

export const tenantPageSchema = pageOf(tenantSchema, 'TenantPage');

const nodeConvergence = z.object({
  node: z.string(),
  kind: z.string(),
  converged: z.boolean().describe('The node is converged and this tenant is not held on it'),
  desiredRevision: z.number().int().nullable(),
  appliedRevision: z.number().int().nullable(),
  runtimePending: z.number().int(),
  waitingFor: z.string().nullable().describe('Why this node is not converged, in words, or null'),
  cause: z
    .enum([
      'agent_silent',
      'runtime_api_failing',
      'no_config',
      'apply_failed',
      'not_applied',
      'runtime_pending',
      'held',
    ])
    .nullable()
    .describe('The same as a code, or null when converged'),
  held: z
    .object({
      error: z.string(),
      servingRevision: z.number().int().nullable(),
      cause: z.enum(['validation', 'reload']),
    })
    .nullable()
    .describe(
      'This tenant is held at an older state on the node: its state failed validation, or the node could not bind its listeners',
    ),
  lastHeartbeatAt: timestamp.nullable(),
});

export const tenantStatusSchema = z
  .object({
    tenant: z.string(),
    state: z.string(),
    converged: z.boolean(),
    nodes: z.array(nodeConvergence),
    vips: z.array(z.object({ name: z.string(), address: z.string(), port: z.number().int(), converged: z.boolean() })),
    members: z.array(
      z.object({
        pool: z.string(),
        member: z.string(),
        health: z.array(
          z.object({
            node: z.string(),
            status: z.enum(MEMBER_HEALTH_STATUSES),
            checkStatus: z.string().nullable(),
            updatedAt: timestamp,
          }),
        ),
      }),
    ),
  })
  .meta({ id: 'TenantStatus' });
