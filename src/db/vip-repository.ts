import type { Selectable } from 'kysely';
import type { Persistence, Vip, VipProtocol, VipTimeouts } from '../domain/vip.js';
import type { Db } from './connect.js';
import { iso } from './column-values.js';
import type { VipTable } from './schema.js';

export function toVip(row: Selectable<VipTable>): Vip {
  return {
    name: row.name,
    address: row.address,
    addressPool: row.address_pool,
    port: row.port,
    protocol: row.protocol as VipProtocol,
    hostnames: row.hostnames,
    certificate: row.certificate,
    persistence: row.persistence as Persistence,
    cookieName: row.cookie_name,
    timeouts: row.timeouts as VipTimeouts,
    allowlist: row.allowlist,
    defaultPool: row.default_pool,
    revision: Number(row.revision),
    createdAt: iso(row.created_at),
    updatedAt: iso(row.updated_at),
  };
}

export type VipFields = Omit<Vip, 'revision' | 'createdAt' | 'updatedAt'>;

export async function findVip(db: Db, tenantId: string, name: string): Promise<Vip | undefined> {
  const row = await db
    .selectFrom('vips')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('name', '=', name)
    .executeTakeFirst();
  return row && toVip(row);
}

export async function listVips(
  db: Db,
  tenantId: string,
  q: { limit: number; after?: string | undefined },
): Promise<Vip[]> {
  let query = db.selectFrom('vips').selectAll().where('tenant_id', '=', tenantId).orderBy('name').limit(q.limit);
  if (q.after !== undefined) query = query.where('name', '>', q.after);
  return (await query.execute()).map(toVip);
}

/** The VIP holding `address:port`, of any tenant (only for conflict checks: never shown across tenants). */
export async function findVipByEndpoint(
  db: Db,
  address: string,
  port: number,
): Promise<{ tenantId: string; name: string } | undefined> {
  const row = await db
    .selectFrom('vips')
    .select(['tenant_id', 'name'])
    .where('address', '=', address)
    .where('port', '=', port)
    .executeTakeFirst();
  return row && { tenantId: row.tenant_id, name: row.name };
}

function columns(v: VipFields) {
  return {
    address: v.address,
    address_pool: v.addressPool,
    port: v.port,
    protocol: v.protocol,
    hostnames: JSON.stringify(v.hostnames),
    certificate: v.certificate,
    persistence: v.persistence,
    cookie_name: v.cookieName,
    timeouts: JSON.stringify(v.timeouts),
    allowlist: JSON.stringify(v.allowlist),
    default_pool: v.defaultPool,
  };
}

export async function insertVip(db: Db, tenantId: string, v: VipFields, revision: number): Promise<Vip> {
  const row = await db
    .insertInto('vips')
    .values({ tenant_id: tenantId, name: v.name, ...columns(v), revision })
    .returningAll()
    .executeTakeFirstOrThrow();
  return toVip(row);
}

export async function updateVip(db: Db, tenantId: string, v: VipFields, revision: number): Promise<Vip> {
  const row = await db
    .updateTable('vips')
    .set({ ...columns(v), revision, updated_at: new Date() })
    .where('tenant_id', '=', tenantId)
    .where('name', '=', v.name)
    .returningAll()
    .executeTakeFirstOrThrow();
  return toVip(row);
}

export async function deleteVip(db: Db, tenantId: string, name: string): Promise<void> {
  await db.deleteFrom('vips').where('tenant_id', '=', tenantId).where('name', '=', name).execute();
}

export async function poolExists(db: Db, tenantId: string, name: string): Promise<boolean> {
  const row = await db
    .selectFrom('pools')
    .select('name')
    .where('tenant_id', '=', tenantId)
    .where('name', '=', name)
    .executeTakeFirst();
  return row !== undefined;
}

export async function certificateExists(db: Db, tenantId: string, name: string): Promise<boolean> {
  const row = await db
    .selectFrom('certificates')
    .select('name')
    .where('tenant_id', '=', tenantId)
    .where('name', '=', name)
    .executeTakeFirst();
  return row !== undefined;
}

/** Whether the pool's members speak TLS (a tcp VIP cannot use it). */
export async function poolHasTls(db: Db, tenantId: string, name: string): Promise<boolean> {
  const row = await db
    .selectFrom('pools')
    .select('name')
    .where('tenant_id', '=', tenantId)
    .where('name', '=', name)
    .where('tls', 'is not', null)
    .executeTakeFirst();
  return row !== undefined;
}
