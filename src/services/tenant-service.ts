import { ConflictError, ForbiddenError, NotFoundError } from '../domain/errors.js';
import { ROLE_PERMISSIONS, type Principal } from '../domain/token.js';
import {
  TENANT_CAPACITY_FIELDS,
  createTenantSchema,
  type CreateTenant,
  type PatchTenant,
  type Tenant,
} from '../domain/tenant.js';
import type { Db } from '../db/connect.js';
import * as repo from '../db/tenant-repository.js';
import { checkIfMatch, mutate, type WriteContext, type Written } from './mutation.js';
import type { ReadCache } from './read-cache.js';
import { validate } from './validate.js';
import { fetchSize, toPage } from './page.js';

export interface TenantPage {
  readonly items: Tenant[];
  readonly nextCursor: string | null;
}

export class TenantService {
  constructor(
    private readonly db: Db,
    private readonly cache: ReadCache,
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
  async list(principal: Principal, q: { limit: number; cursor?: string | undefined; labels: Record<string, string> }): Promise<TenantPage> {
    const items = await repo.listTenants(this.db, {
      limit: fetchSize(q.limit),
      after: q.cursor,
      labels: q.labels,
      onlyId: principal.tenantId,
    });
    return toPage(items, q.limit, (x) => x.id);
  }

  async create(ctx: WriteContext, input: CreateTenant): Promise<Written<Tenant>> {
    if (input.state !== undefined) requireCapacityRights(ctx.actor.principal, ['state']);
    return mutate(this.db, ctx, async (tx) => {
      if (await repo.tenantExists(tx.db, input.id)) throw new ConflictError(`tenant '${input.id}' already exists`);
      const tenant = await repo.insertTenant(tx.db, { ...input, state: input.state ?? 'active' }, tx.revision);
      tx.audit({ action: 'create', resourceType: 'tenant', resourceId: tenant.id, tenantId: tenant.id, before: null, after: tenant });
      return tenant;
    });
  }

  async patch(ctx: WriteContext, id: string, patch: PatchTenant): Promise<Written<Tenant>> {
    const touched = TENANT_CAPACITY_FIELDS.filter((f) => patch[f] !== undefined);
    if (touched.length > 0) requireCapacityRights(ctx.actor.principal, touched);
    return mutate(this.db, ctx, async (tx) => {
      const before = await repo.findTenant(tx.db, id);
      if (!before) throw new NotFoundError('tenant', id);
      checkIfMatch(tx, `tenant '${id}'`, before.revision);
      // Re-check the cross-field rules on the merged tenant, so a patch of the limit alone cannot undercut the reservation.
      const merged = validate(createTenantSchema, 'body', {
        id,
        displayName: patch.displayName ?? before.displayName,
        state: patch.state ?? before.state,
        reservation: patch.reservation ?? before.reservation,
        limit: patch.limit ?? before.limit,
        weight: patch.weight ?? before.weight,
        labels: patch.labels ?? before.labels,
      });
      const next = { ...merged, state: merged.state ?? before.state };
      if (sameTenant(before, next)) return before;
      const after = await repo.updateTenant(tx.db, next, tx.revision);
      tx.audit({ action: 'update', resourceType: 'tenant', resourceId: id, tenantId: id, before, after });
      return after;
    });
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
      return null;
    });
  }
}

function requireCapacityRights(principal: Principal, fields: readonly string[]): void {
  if (!ROLE_PERMISSIONS[principal.role].has('tenant:capacity')) {
    throw new ForbiddenError(`a ${principal.role} token cannot change ${fields.join(', ')}; ask a fleet operator`);
  }
}

function sameTenant(a: Tenant, b: Omit<Tenant, 'revision' | 'createdAt' | 'updatedAt'>): boolean {
  return (
    a.displayName === b.displayName &&
    a.state === b.state &&
    a.weight === b.weight &&
    a.reservation.vcpu === b.reservation.vcpu &&
    a.reservation.memoryMb === b.reservation.memoryMb &&
    a.limit.vcpu === b.limit.vcpu &&
    a.limit.memoryMb === b.limit.memoryMb &&
    JSON.stringify(sortKeys(a.labels)) === JSON.stringify(sortKeys(b.labels))
  );
}

function sortKeys(r: Readonly<Record<string, string>>): [string, string][] {
  return Object.entries(r).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0));
}
