import { sql } from 'kysely';
import type { CreateTenant, Tenant, TenantState } from '../domain/tenant.js';
import type { NodeKind } from '../domain/node.js';
import type { Db } from './connect.js';
import { iso, isoOrNull } from './column-values.js';
import type { Approval, PendingCapacity } from '../domain/approval.js';
import type { TenantTable } from './schema.js';
import type { Selectable } from 'kysely';

export interface TenantListQuery {
  readonly limit: number;
  /** Return tenants whose id sorts after this one. */
  readonly after?: string | undefined;
  readonly labels?: Readonly<Record<string, string>>;
  /** Restrict to one tenant (a tenant-scoped caller). */
  readonly onlyId?: string | null;
}

export function toTenant(row: Selectable<TenantTable>): Tenant {
  return {
    id: row.id,
    displayName: row.display_name,
    state: row.state as TenantState,
    reservation: { vcpu: Number(row.reservation_vcpu), memoryMb: row.reservation_memory_mb },
    limit: { vcpu: Number(row.limit_vcpu), memoryMb: row.limit_memory_mb },
    weight: row.weight,
    labels: row.labels,
    proxyKind: (row.proxy_kind as NodeKind | null) ?? null,
    approval: {
      pending: (row.pending_capacity as PendingCapacity | null) ?? null,
      decidedBy: row.approval_decided_by,
      decidedAt: isoOrNull(row.approval_decided_at),
      reason: row.approval_reason,
    },
    revision: Number(row.revision),
    createdAt: iso(row.created_at),
    updatedAt: iso(row.updated_at),
  };
}

export async function findTenant(db: Db, id: string): Promise<Tenant | undefined> {
  const row = await db.selectFrom('tenants').selectAll().where('id', '=', id).executeTakeFirst();
  return row && toTenant(row);
}

export async function tenantExists(db: Db, id: string): Promise<boolean> {
  const row = await db.selectFrom('tenants').select('id').where('id', '=', id).executeTakeFirst();
  return row !== undefined;
}

/** Every active tenant (the ones placed and served), by id. */
export async function listActiveTenants(db: Db): Promise<Tenant[]> {
  const rows = await db.selectFrom('tenants').selectAll().where('state', '=', 'active').orderBy('id').execute();
  return rows.map(toTenant);
}

export async function listTenants(db: Db, q: TenantListQuery): Promise<Tenant[]> {
  let query = db.selectFrom('tenants').selectAll().orderBy('id').limit(q.limit);
  if (q.after !== undefined) query = query.where('id', '>', q.after);
  if (q.onlyId) query = query.where('id', '=', q.onlyId);
  if (q.labels && Object.keys(q.labels).length > 0) {
    query = query.where(sql<boolean>`labels @> ${JSON.stringify(q.labels)}::jsonb`);
  }
  return (await query.execute()).map(toTenant);
}

export async function insertTenant(
  db: Db,
  t: CreateTenant & { weight: number; state: TenantState; approval?: Approval },
  revision: number,
): Promise<Tenant> {
  const row = await db
    .insertInto('tenants')
    .values({
      id: t.id,
      ...tenantColumns(t),
      revision,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
  return toTenant(row);
}

/** Writes the whole tenant (the service has merged the patch and checked invariants). */
export async function updateTenant(
  db: Db,
  t: Omit<Tenant, 'createdAt' | 'updatedAt' | 'revision'>,
  revision: number,
): Promise<Tenant> {
  const row = await db
    .updateTable('tenants')
    .set({
      ...tenantColumns(t),
      revision,
      updated_at: new Date(),
    })
    .where('id', '=', t.id)
    .returningAll()
    .executeTakeFirstOrThrow();
  return toTenant(row);
}

export async function deleteTenant(db: Db, id: string): Promise<void> {
  await db.deleteFrom('tenants').where('id', '=', id).execute();
}

export async function countTenantVips(db: Db, id: string): Promise<number> {
  const row = await db
    .selectFrom('vips')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .where('tenant_id', '=', id)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

type TenantFieldsIn = Pick<
  Tenant,
  'displayName' | 'state' | 'reservation' | 'limit' | 'weight' | 'labels' | 'proxyKind'
> & { approval?: Approval | undefined };

function tenantColumns(t: TenantFieldsIn) {
  return {
    display_name: t.displayName,
    state: t.state,
    reservation_vcpu: t.reservation.vcpu,
    reservation_memory_mb: t.reservation.memoryMb,
    limit_vcpu: t.limit.vcpu,
    limit_memory_mb: t.limit.memoryMb,
    weight: t.weight,
    labels: JSON.stringify(t.labels),
    proxy_kind: t.proxyKind,
    ...approvalColumns(t.approval),
  };
}

function approvalColumns(a: Approval | undefined) {
  return {
    pending_capacity: a?.pending ? JSON.stringify(a.pending) : null,
    approval_decided_by: a?.decidedBy ?? null,
    approval_decided_at: a?.decidedAt ?? null,
    approval_reason: a?.reason ?? null,
  };
}
