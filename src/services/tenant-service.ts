import { ConflictError, ForbiddenError, NotFoundError } from '../domain/errors.js';
import { ROLE_PERMISSIONS, roleToken, type Principal } from '../domain/token.js';
import {
  DEFAULT_TENANT_WEIGHT,
  GROUP_LABEL,
  PLACEMENT_LABELS,
  TENANT_CAPACITY_FIELDS,
  TENANT_PLACEMENT_FIELDS,
  createTenantSchema,
  type CreateTenant,
  type PatchTenant,
  type Tenant,
} from '../domain/tenant.js';
import type { Db } from '../db/connect.js';
import * as repo from '../db/tenant-repository.js';
import { checkIfMatch, mutate, type Tx, type WriteContext, type Written } from './mutation.js';
import type { ReadCache } from './read-cache.js';
import {
  autoApproves,
  capacityChangeNeedsApproval,
  NO_AUTO_APPROVAL,
  type Approval,
  type ApprovalPolicy,
  type PendingCapacity,
} from '../domain/approval.js';
import { validate } from './validate.js';
import { fetchSize, toPage } from './page.js';
import type { PlacementService } from './placement-service.js';

export interface TenantPage {
  readonly items: Tenant[];
  readonly nextCursor: string | null;
}

export class TenantService {
  constructor(
    private readonly db: Db,
    private readonly cache: ReadCache,
    private readonly placement: Pick<PlacementService, 'replace'>,
    private readonly policy: ApprovalPolicy = NO_AUTO_APPROVAL,
  ) {}

  async get(id: string): Promise<Tenant> {
    const tenant = await this.cache.get(`tenant:${id}`, () => repo.findTenant(this.db, id));
    if (!tenant) throw new NotFoundError('tenant', id);
    return tenant;
  }

  async exists(id: string): Promise<boolean> {
    return this.cache.get(`tenant-exists:${id}`, () => repo.tenantExists(this.db, id));
  }

  /** A tenant-scoped caller only ever sees its own tenant. */
  async list(
    principal: Principal,
    q: { limit: number; cursor?: string | undefined; labels: Record<string, string> },
  ): Promise<TenantPage> {
    const items = await repo.listTenants(this.db, {
      limit: fetchSize(q.limit),
      after: q.cursor,
      labels: q.labels,
      onlyId: principal.tenantId,
    });
    return toPage(items, q.limit, (x) => x.id);
  }

  /**
   * Registers a tenant. A registrar's registration starts pending_approval unless the policy
   * approves its reservation on its own; fleet operators' registrations take the state they ask for.
   */
  async create(ctx: WriteContext, input: CreateTenant): Promise<Written<Tenant>> {
    const capacity = [
      ...(['state', 'weight'] as const).filter((f) => input[f] !== undefined),
      ...placementLabelsChanged({}, input.labels),
    ];
    if (capacity.length > 0) requireCapacityRights(ctx.actor.principal, capacity);
    if (input.proxyKind !== null) requireCapacityRights(ctx.actor.principal, TENANT_PLACEMENT_FIELDS);
    const registrar = ctx.actor.principal.role === 'registrar';
    return mutate(this.db, ctx, async (tx) => {
      if (await repo.tenantExists(tx.db, input.id)) throw new ConflictError(`tenant '${input.id}' already exists`);
      const auto = registrar && autoApproves(this.policy, input.reservation);
      const state = registrar ? (auto ? 'active' : 'pending_approval') : (input.state ?? 'active');
      const approval: Approval = auto
        ? {
            pending: null,
            decidedBy: 'policy',
            decidedAt: new Date().toISOString(),
            reason: `auto-approved: ${policyText(this.policy)}`,
          }
        : NO_DECISION;
      const weight = input.weight ?? DEFAULT_TENANT_WEIGHT;
      const tenant = await repo.insertTenant(tx.db, { ...input, weight, state, approval }, tx.revision);
      tx.audit({
        action: 'create',
        resourceType: 'tenant',
        resourceId: tenant.id,
        tenantId: tenant.id,
        before: null,
        after: tenant,
      });
      // An active tenant needs room on the fleet now; a pending one holds none until approved.
      if (tenant.state === 'active') await this.placement.replace(tx, { admit: tenant.id });
      return tenant;
    });
  }

  /**
   * Changes a tenant. Capacity (state, weight) is for fleet operators; a registrar may change the
   * reservation and limit, and a raise above the approval policy on an active tenant waits for an
   * admin (the tenant keeps its current capacity until then, and shows the request under approval).
   */
  async patch(ctx: WriteContext, id: string, patch: PatchTenant): Promise<Written<Tenant>> {
    const principal = ctx.actor.principal;
    const registrar = principal.role === 'registrar';
    const touched = TENANT_CAPACITY_FIELDS.filter(
      (f) => patch[f] !== undefined && !(registrar && (f === 'reservation' || f === 'limit')),
    );
    if (touched.length > 0) requireCapacityRights(principal, touched);
    if (patch.proxyKind !== undefined) requireCapacityRights(principal, TENANT_PLACEMENT_FIELDS);
    return mutate(this.db, ctx, async (tx) => {
      const before = await repo.findTenant(tx.db, id);
      if (!before) throw new NotFoundError('tenant', id);
      checkIfMatch(tx, `tenant '${id}'`, before.revision);
      const moves = patch.labels === undefined ? [] : placementLabelsChanged(before.labels, patch.labels);
      if (moves.length > 0) requireCapacityRights(principal, moves);
      // Re-check the cross-field rules on the merged tenant, so a patch of the limit alone cannot undercut the reservation.
      const merged = validate(createTenantSchema, 'body', {
        id,
        displayName: patch.displayName ?? before.displayName,
        state: patch.state ?? before.state,
        reservation: patch.reservation ?? before.reservation,
        limit: patch.limit ?? before.limit,
        weight: patch.weight ?? before.weight,
        labels: patch.labels ?? before.labels,
        proxyKind: patch.proxyKind === undefined ? before.proxyKind : patch.proxyKind,
      });
      let next: TenantFields = {
        ...merged,
        state: merged.state ?? before.state,
        weight: merged.weight ?? before.weight,
        approval: before.approval,
      };
      if (
        registrar &&
        before.state === 'active' &&
        capacityChangeNeedsApproval(this.policy, before.reservation, next.reservation)
      ) {
        const pending: PendingCapacity = {
          reservation: next.reservation,
          limit: next.limit,
          requestedBy: principal.name,
          requestedAt: new Date().toISOString(),
        };
        next = {
          ...next,
          reservation: before.reservation,
          limit: before.limit,
          approval: { ...before.approval, pending },
        };
      }
      if (sameTenant(before, next)) return before;
      const after = await repo.updateTenant(tx.db, next, tx.revision);
      tx.audit({ action: 'update', resourceType: 'tenant', resourceId: id, tenantId: id, before, after });
      await this.replaceIfMoved(tx, before, after);
      return after;
    });
  }

  /** Approves a pending registration (→ active) and/or a pending capacity raise (applied). */
  async approve(ctx: WriteContext, id: string, reason: string | undefined): Promise<Written<Tenant>> {
    return this.decide(ctx, id, 'approve', reason ?? null);
  }

  /** Rejects a pending registration (→ rejected) and/or drops a pending capacity raise. */
  async reject(ctx: WriteContext, id: string, reason: string): Promise<Written<Tenant>> {
    return this.decide(ctx, id, 'reject', reason);
  }

  private async decide(
    ctx: WriteContext,
    id: string,
    action: 'approve' | 'reject',
    reason: string | null,
  ): Promise<Written<Tenant>> {
    return mutate(this.db, ctx, async (tx) => {
      const before = await repo.findTenant(tx.db, id);
      if (!before) throw new NotFoundError('tenant', id);
      checkIfMatch(tx, `tenant '${id}'`, before.revision);
      const pendingRegistration = before.state === 'pending_approval';
      const pending = before.approval.pending;
      if (!pendingRegistration && !pending) throw new ConflictError(`tenant '${id}' has nothing waiting for approval`);
      const decision: Approval = {
        pending: null,
        decidedBy: ctx.actor.principal.name,
        decidedAt: new Date().toISOString(),
        reason,
      };
      const approved = action === 'approve';
      const next: TenantFields = {
        ...before,
        state: pendingRegistration ? (approved ? 'active' : 'rejected') : before.state,
        reservation: approved && pending ? pending.reservation : before.reservation,
        limit: approved && pending ? pending.limit : before.limit,
        approval: decision,
      };
      const after = await repo.updateTenant(tx.db, next, tx.revision);
      tx.audit({ action, resourceType: 'tenant', resourceId: id, tenantId: id, before, after });
      await this.replaceIfMoved(tx, before, after);
      return after;
    });
  }

  /**
   * A change of state, reservation, group or proxy kind can change where the tenant runs:
   * re-place, and refuse (409, rolling the write back) an active tenant the fleet has no room for.
   * A new proxy kind moves the tenant: the old kind's nodes drop it at their next reload, the new
   * kind's nodes start serving it at theirs.
   */
  private async replaceIfMoved(tx: Tx, before: Tenant, after: Tenant): Promise<void> {
    const moved =
      before.state !== after.state ||
      before.reservation.vcpu !== after.reservation.vcpu ||
      before.reservation.memoryMb !== after.reservation.memoryMb ||
      before.labels[GROUP_LABEL] !== after.labels[GROUP_LABEL] ||
      before.proxyKind !== after.proxyKind;
    if (moved) await this.placement.replace(tx, after.state === 'active' ? { admit: after.id } : {});
  }

  /** Refused while the tenant still has VIPs: deleting a tenant must never silently drop live traffic. */
  async delete(ctx: WriteContext, id: string): Promise<Written<null>> {
    return mutate(this.db, ctx, async (tx) => {
      const before = await repo.findTenant(tx.db, id);
      if (!before) throw new NotFoundError('tenant', id);
      checkIfMatch(tx, `tenant '${id}'`, before.revision);
      const vips = await repo.countTenantVips(tx.db, id);
      if (vips > 0) {
        throw new ConflictError(`tenant '${id}' still has ${vips} VIP(s); delete them first`, { vips });
      }
      await repo.deleteTenant(tx.db, id);
      tx.audit({ action: 'delete', resourceType: 'tenant', resourceId: id, tenantId: id, before, after: null });
      // The room it held may complete another tenant's replicas.
      if (before.state === 'active') await this.placement.replace(tx);
      return null;
    });
  }
}

/** The placement labels (as `labels.<key>`) whose value differs between `before` and `after`. */
function placementLabelsChanged(
  before: Readonly<Record<string, string>>,
  after: Readonly<Record<string, string>>,
): string[] {
  return PLACEMENT_LABELS.filter((key) => before[key] !== after[key]).map((key) => `labels.${key}`);
}

function requireCapacityRights(principal: Principal, fields: readonly string[]): void {
  if (!ROLE_PERMISSIONS[principal.role].has('tenant:capacity')) {
    throw new ForbiddenError(`${roleToken(principal.role)} cannot change ${fields.join(', ')}; ask a fleet operator`);
  }
}

type TenantFields = Omit<Tenant, 'revision' | 'createdAt' | 'updatedAt'>;

const NO_DECISION: Approval = { pending: null, decidedBy: null, decidedAt: null, reason: null };

function policyText(policy: ApprovalPolicy): string {
  const cap = policy.autoApproveUpTo;
  return cap === null ? 'no automatic approval' : `reservation within ${cap.vcpu} vCPU / ${cap.memoryMb} MB`;
}

function sameTenant(a: Tenant, b: TenantFields): boolean {
  return (
    a.displayName === b.displayName &&
    a.state === b.state &&
    a.weight === b.weight &&
    a.reservation.vcpu === b.reservation.vcpu &&
    a.reservation.memoryMb === b.reservation.memoryMb &&
    a.limit.vcpu === b.limit.vcpu &&
    a.limit.memoryMb === b.limit.memoryMb &&
    JSON.stringify(sortKeys(a.labels)) === JSON.stringify(sortKeys(b.labels)) &&
    a.proxyKind === b.proxyKind &&
    JSON.stringify(a.approval) === JSON.stringify(b.approval)
  );
}

function sortKeys(r: Readonly<Record<string, string>>): [string, string][] {
  return Object.entries(r).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0));
}
