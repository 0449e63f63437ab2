import type { Selectable } from 'kysely';
import type { Route, RouteMatch } from '../domain/route.js';
import type { Db } from './connect.js';
import { iso } from './column-values.js';
import type { RouteTable } from './schema.js';

export function toRoute(row: Selectable<RouteTable>): Route {
  return {
    name: row.name,
    vip: row.vip_name,
    priority: row.priority,
    match: row.match as RouteMatch,
    pool: row.pool_name,
    revision: Number(row.revision),
    createdAt: iso(row.created_at),
    updatedAt: iso(row.updated_at),
  };
}

export type RouteFields = Pick<Route, 'name' | 'priority' | 'match' | 'pool'>;

export async function findRoute(db: Db, tenantId: string, vip: string, name: string): Promise<Route | undefined> {
  const row = await db
    .selectFrom('routes')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('vip_name', '=', vip)
    .where('name', '=', name)
    .executeTakeFirst();
  return row && toRoute(row);
}

/** A VIP's routes in evaluation order: priority, then name. */
export async function listRoutes(db: Db, tenantId: string, vip: string): Promise<Route[]> {
  const rows = await db
    .selectFrom('routes')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('vip_name', '=', vip)
    .orderBy('priority')
    .orderBy('name')
    .execute();
  return rows.map(toRoute);
}

export async function insertRoute(
  db: Db,
  tenantId: string,
  vip: string,
  r: RouteFields,
  revision: number,
): Promise<Route> {
  const row = await db
    .insertInto('routes')
    .values({
      tenant_id: tenantId,
      vip_name: vip,
      name: r.name,
      priority: r.priority,
      match: JSON.stringify(r.match),
      pool_name: r.pool,
      revision,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
  return toRoute(row);
}

export async function updateRoute(
  db: Db,
  tenantId: string,
  vip: string,
  r: RouteFields,
  revision: number,
): Promise<Route> {
  const row = await db
    .updateTable('routes')
    .set({ priority: r.priority, match: JSON.stringify(r.match), pool_name: r.pool, revision, updated_at: new Date() })
    .where('tenant_id', '=', tenantId)
    .where('vip_name', '=', vip)
    .where('name', '=', r.name)
    .returningAll()
    .executeTakeFirstOrThrow();
  return toRoute(row);
}

export async function deleteRoute(db: Db, tenantId: string, vip: string, name: string): Promise<void> {
  await db
    .deleteFrom('routes')
    .where('tenant_id', '=', tenantId)
    .where('vip_name', '=', vip)
    .where('name', '=', name)
    .execute();
}
