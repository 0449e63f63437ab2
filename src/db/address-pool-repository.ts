import { sql, type Selectable } from 'kysely';
import type { AddressPool } from '../domain/address-pool.js';
import { parseCidr, usableCount } from '../domain/ip.js';
import type { Db } from './connect.js';
import { iso } from './column-values.js';
import type { AddressPoolTable } from './schema.js';

function toAddressPool(row: Selectable<AddressPoolTable> & { leased: string | number }): AddressPool {
  const size = usableCount(parseCidr(row.cidr)!);
  return {
    name: row.name,
    cidr: row.cidr,
    size: size > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(size),
    leased: Number(row.leased),
    revision: Number(row.revision),
    createdAt: iso(row.created_at),
  };
}

function withLeaseCount(db: Db) {
  return db
    .selectFrom('address_pools as p')
    .selectAll('p')
    .select((eb) =>
      eb
        .selectFrom('address_leases as l')
        .whereRef('l.pool_name', '=', 'p.name')
        .select(eb.fn.countAll<string>().as('n'))
        .as('leased'),
    );
}

export async function findAddressPool(db: Db, name: string): Promise<AddressPool | undefined> {
  const row = await withLeaseCount(db).where('p.name', '=', name).executeTakeFirst();
  return row && toAddressPool({ ...row, leased: row.leased ?? 0 });
}

export async function listAddressPools(
  db: Db,
  q: { limit: number; after?: string | undefined },
): Promise<AddressPool[]> {
  let query = withLeaseCount(db).orderBy('p.name').limit(q.limit);
  if (q.after !== undefined) query = query.where('p.name', '>', q.after);
  return (await query.execute()).map((row) => toAddressPool({ ...row, leased: row.leased ?? 0 }));
}

/** Names of pools whose block overlaps `cidr` (PostgreSQL's `&&` on cidr). */
export async function overlappingPools(db: Db, cidr: string): Promise<string[]> {
  const rows = await db
    .selectFrom('address_pools')
    .select(['name', 'cidr'])
    .where(sql<boolean>`cidr && ${cidr}::cidr`)
    .execute();
  return rows.map((r) => `${r.name} (${r.cidr})`);
}

export async function insertAddressPool(db: Db, p: { name: string; cidr: string }, revision: number): Promise<void> {
  await db.insertInto('address_pools').values({ name: p.name, cidr: p.cidr, revision }).execute();
}

export async function deleteAddressPool(db: Db, name: string): Promise<void> {
  await db.deleteFrom('address_pools').where('name', '=', name).execute();
}

/** Addresses inside `cidr` that are taken: leased, or used by any VIP explicitly. */
export async function takenAddresses(db: Db, poolName: string, cidr: string): Promise<Set<string>> {
  const leased = await db.selectFrom('address_leases').select('address').where('pool_name', '=', poolName).execute();
  const explicit = await db
    .selectFrom('vips')
    .select('address')
    .where(sql<boolean>`address << ${cidr}::cidr or address = ${cidr}::cidr`)
    .execute();
  return new Set([...leased, ...explicit].map((r) => r.address));
}

export async function insertLease(
  db: Db,
  lease: { address: string; poolName: string; tenantId: string; vipName: string },
): Promise<void> {
  await db
    .insertInto('address_leases')
    .values({ address: lease.address, pool_name: lease.poolName, tenant_id: lease.tenantId, vip_name: lease.vipName })
    .execute();
}

/** The tenant holding a lease on `address`, if any. */
export async function leaseHolder(db: Db, address: string): Promise<string | undefined> {
  const row = await db
    .selectFrom('address_leases')
    .select('tenant_id')
    .where('address', '=', address)
    .executeTakeFirst();
  return row?.tenant_id;
}
