import { sql } from 'kysely';
import type { Db } from './connect.js';
import { iso } from './column-values.js';

/** A tenant's caps on a node as stored: what the proxies are told to enforce. */
export interface StoredAllocation {
  readonly tenantId: string;
  readonly node: string;
  readonly maxConnections: number;
  /** Each of the tenant's frontends' maxconn on the node (see Allocation.ceiling); null: stored before it existed. */
  readonly ceiling: number | null;
  readonly requestsPerSecond: number;
  readonly weight: number;
  /** What bounds each cap (the allocator's reason). */
  readonly reason: { readonly connections: string; readonly requestsPerSecond: string };
  readonly computedAt: string;
  readonly revision: number;
}

export interface AllocationHistoryEntry {
  readonly tenantId: string;
  readonly node: string;
  readonly dimension: 'connections' | 'requestsPerSecond';
  /** Null for a tenant new on the node. */
  readonly from: number | null;
  /** Null when the tenant left the node. */
  readonly to: number | null;
  readonly reason: string;
  readonly detail: string;
  readonly revision: number;
  readonly at: string;
}

export type AllocationWrite = Omit<StoredAllocation, 'computedAt' | 'revision'>;

/**
 * Every stored allocation (optionally one tenant's), sorted by tenant, then node; with `limit`,
 * at most that many, starting after the (tenant, node) key `after` (keyset paging).
 */
export async function listAllocations(
  db: Db,
  opts: { tenantId?: string; after?: { tenantId: string; node: string }; limit?: number } = {},
): Promise<StoredAllocation[]> {
  let q = db.selectFrom('allocations').selectAll();
  if (opts.tenantId !== undefined) q = q.where('tenant_id', '=', opts.tenantId);
  if (opts.after !== undefined)
    q = q.where(sql<boolean>`(tenant_id, node_name) > (${opts.after.tenantId}, ${opts.after.node})`);
  if (opts.limit !== undefined) q = q.limit(opts.limit);
  const rows = await q.orderBy('tenant_id').orderBy('node_name').execute();
  return rows.map((r) => ({
    tenantId: r.tenant_id,
    node: r.node_name,
    maxConnections: r.max_connections,
    ceiling: r.connection_ceiling,
    requestsPerSecond: r.requests_per_second,
    weight: r.weight,
    reason: r.reason,
    computedAt: iso(r.computed_at),
    revision: Number(r.revision),
  }));
}

/** Locks the allocation rows (the caller's transaction) so a concurrent apply waits. */
export async function lockAllocations(db: Db): Promise<StoredAllocation[]> {
  const rows = await db.selectFrom('allocations').select(['tenant_id', 'node_name']).forUpdate().execute();
  return rows.length === 0 ? [] : listAllocations(db);
}

export async function upsertAllocation(db: Db, a: AllocationWrite, revision: number, at: Date): Promise<void> {
  const values = {
    max_connections: a.maxConnections,
    connection_ceiling: a.ceiling,
    requests_per_second: a.requestsPerSecond,
    weight: a.weight,
    reason: JSON.stringify(a.reason),
    computed_at: at,
    revision,
  };
  await db
    .insertInto('allocations')
    .values({ tenant_id: a.tenantId, node_name: a.node, ...values })
    .onConflict((oc) => oc.columns(['tenant_id', 'node_name']).doUpdateSet(values))
    .execute();
}

export async function deleteAllocation(db: Db, tenantId: string, node: string): Promise<void> {
  await db.deleteFrom('allocations').where('tenant_id', '=', tenantId).where('node_name', '=', node).execute();
}

export async function insertHistory(
  db: Db,
  entries: readonly Omit<AllocationHistoryEntry, 'at'>[],
  at: Date,
): Promise<void> {
  if (entries.length === 0) return;
  await db
    .insertInto('allocation_history')
    .values(
      entries.map((e) => ({
        tenant_id: e.tenantId,
        node_name: e.node,
        dimension: e.dimension,
        from_value: e.from,
        to_value: e.to,
        reason: e.reason,
        detail: e.detail,
        revision: e.revision,
        at,
      })),
    )
    .execute();
}

/** A tenant's cap changes, newest first. */
export async function tenantHistory(db: Db, tenantId: string, limit: number): Promise<AllocationHistoryEntry[]> {
  const rows = await db
    .selectFrom('allocation_history')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .orderBy('id', 'desc')
    .limit(limit)
    .execute();
  return rows.map((r) => ({
    tenantId: r.tenant_id,
    node: r.node_name,
    dimension: r.dimension as AllocationHistoryEntry['dimension'],
    from: r.from_value,
    to: r.to_value,
    reason: r.reason,
    detail: r.detail,
    revision: Number(r.revision),
    at: iso(r.at),
  }));
}

/** When each node's caps last changed (the NGINX cadence counts from it). */
export async function lastChangePerNode(db: Db): Promise<Map<string, Date>> {
  const rows = await db
    .selectFrom('allocation_history')
    .select(['node_name'])
    .select((eb) => eb.fn.max('at').as('at'))
    .groupBy('node_name')
    .execute();
  return new Map(rows.map((r) => [r.node_name, new Date(r.at as unknown as string | Date)]));
}
