import { z } from 'zod';
import type { Approval } from './approval.js';
import { displayText, labels, resources, slug } from './fields.js';
import { NODE_KINDS, type NodeKind } from './node.js';

export const TENANT_STATES = ['pending_approval', 'active', 'suspended', 'rejected'] as const;
export type TenantState = (typeof TENANT_STATES)[number];

export interface Resources {
  readonly vcpu: number;
  readonly memoryMb: number;
}

export interface Tenant {
  readonly id: string;
  readonly displayName: string;
  readonly state: TenantState;
  readonly reservation: Resources;
  readonly limit: Resources;
  readonly weight: number;
  readonly labels: Readonly<Record<string, string>>;
  /**
   * The proxy kind that serves the tenant, or null for every kind its group has nodes of. Chosen
   * per tenant, not per VIP: placement, reservations and caps are per tenant and node.
   */
  readonly proxyKind: NodeKind | null;
  /** Pending capacity change and the last approval decision. */
  readonly approval: Approval;
  readonly revision: number;
  readonly createdAt: string;
  readonly updatedAt: string;
}

/** Given when a registration names none. */
export const DEFAULT_TENANT_WEIGHT = 100;

/** The tenant label that picks the node group a tenant is placed in (absent: `default`). */
export const GROUP_LABEL = 'group';

/**
 * Labels that decide where a tenant is placed, and so where it reserves capacity: they are
 * capacity fields (fleet operators only), unlike every other label.
 */
export const PLACEMENT_LABELS: readonly string[] = [GROUP_LABEL];

const tenantFields = {
  displayName: displayText,
  state: z.enum(TENANT_STATES),
  reservation: resources,
  limit: resources,
  weight: z.number().int().min(1).max(1000),
  labels,
  proxyKind: z.enum(NODE_KINDS).nullable(),
};

export const createTenantSchema = z
  .strictObject({
    id: slug,
    displayName: tenantFields.displayName.optional(),
    state: tenantFields.state.optional(),
    reservation: tenantFields.reservation.default({ vcpu: 0, memoryMb: 0 }),
    limit: tenantFields.limit.optional(),
    // No default here: a registration that names a weight is a capacity decision (see DEFAULT_TENANT_WEIGHT).
    weight: tenantFields.weight
      .optional()
      .describe('1-1000, default 100. Capacity: fleet operators only (others get 403)'),
    labels: tenantFields.labels
      .default({})
      .describe('The `group` label picks the node group the tenant is placed in: capacity, fleet operators only'),
    proxyKind: tenantFields.proxyKind.default(null),
  })
  .transform((t) => ({ ...t, displayName: t.displayName ?? t.id, limit: t.limit ?? t.reservation }))
  .superRefine(checkLimitCoversReservation);
export type CreateTenant = z.output<typeof createTenantSchema>;

export const patchTenantSchema = z.strictObject({
  displayName: tenantFields.displayName.optional(),
  state: tenantFields.state.optional(),
  reservation: tenantFields.reservation.optional(),
  limit: tenantFields.limit.optional(),
  weight: tenantFields.weight.optional(),
  labels: tenantFields.labels.optional(),
  proxyKind: tenantFields.proxyKind.optional(),
});
export type PatchTenant = z.output<typeof patchTenantSchema>;

/** Fields of a tenant only fleet operators may change: they decide how much of the fleet it holds. */
export const TENANT_CAPACITY_FIELDS = ['state', 'reservation', 'limit', 'weight'] as const;

/**
 * Fields that move a tenant to other nodes without changing its reservation: only roles that may
 * change capacity may set them (on create as on change), since they decide which nodes' room it takes.
 */
export const TENANT_PLACEMENT_FIELDS = ['proxyKind'] as const;

export function checkLimitCoversReservation(
  t: { reservation: Resources; limit: Resources },
  ctx: z.RefinementCtx,
): void {
  for (const key of ['vcpu', 'memoryMb'] as const) {
    if (t.limit[key] < t.reservation[key]) {
      ctx.addIssue({
        code: 'custom',
        path: ['limit', key],
        message: `limit (${t.limit[key]}) must be at least the reservation (${t.reservation[key]})`,
      });
    }
  }
}

/** `?label=env=prod&label=team=web`: every pair must match. */
export const labelSelector = z
  .union([z.string(), z.array(z.string())])
  .optional()
  .transform((value, ctx) => {
    const items = value === undefined ? [] : Array.isArray(value) ? value : [value];
    const out: Record<string, string> = {};
    for (const item of items) {
      const eq = item.indexOf('=');
      const key = eq < 0 ? '' : item.slice(0, eq);
      const val = eq < 0 ? '' : item.slice(eq + 1);
      const parsed = labels.safeParse({ [key]: val });
      if (eq < 0 || !parsed.success) {
        ctx.addIssue({ code: 'custom', message: `"${item.slice(0, 80)}" is not a key=value label selector` });
        return z.NEVER;
      }
      out[key] = val;
    }
    return out;
  });

/** An admin's decision on a pending registration or capacity raise. */
export const approvalDecisionSchema = z.strictObject({
  reason: displayText.optional(),
});
export const rejectionSchema = z.strictObject({
  reason: displayText,
});
