import type { Selectable } from 'kysely';
import { canonicalIp } from '../domain/ip.js';
import type { CreateMember, Member, MemberState } from '../domain/member.js';
import type { Db } from './connect.js';
import { iso } from './column-values.js';
import type { MemberTable } from './schema.js';

/** A member's own settings: what a write sets, and what decides whether a write changed anything. */
export type MemberSettings = Omit<CreateMember, 'name'>;

export function toMember(row: Selectable<MemberTable>): Member {
  return {
    name: row.name,
    pool: row.pool_name,
    // PostgreSQL prints some IPv6 forms (IPv4-mapped) differently from our canonical text; answer in ours.
    address: canonicalIp(row.address) ?? row.address,
    port: row.port,
    weight: row.weight,
    state: row.state as MemberState,
    backup: row.backup,
    revision: Number(row.revision),
    createdAt: iso(row.created_at),
    updatedAt: iso(row.updated_at),
  };
}

export async function findMember(db: Db, tenantId: string, pool: string, name: string): Promise<Member | undefined> {
  const row = await db
    .selectFrom('members')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('pool_name', '=', pool)
    .where('name', '=', name)
    .executeTakeFirst();
  return row && toMember(row);
}

/** The member of the pool that already listens on address:port, other than `except`. */
export async function findMemberByEndpoint(
  db: Db,
  tenantId: string,
  pool: string,
  endpoint: { address: string; port: number },
  except?: string,
): Promise<Member | undefined> {
  let query = db
    .selectFrom('members')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('pool_name', '=', pool)
    // Compared as inet, so two spellings of one address are one endpoint.
    .where('address', '=', endpoint.address)
    .where('port', '=', endpoint.port);
  if (except !== undefined) query = query.where('name', '<>', except);
  const row = await query.executeTakeFirst();
  return row && toMember(row);
}

/** Members of a pool by name; without `limit`, all of them. */
export async function listMembers(
  db: Db,
  tenantId: string,
  pool: string,
  q: { limit?: number; after?: string | undefined } = {},
): Promise<Member[]> {
  let query = db
    .selectFrom('members')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('pool_name', '=', pool)
    .orderBy('name');
  if (q.limit !== undefined) query = query.limit(q.limit);
  if (q.after !== undefined) query = query.where('name', '>', q.after);
  return (await query.execute()).map(toMember);
}

/**
 * Inserts members into a pool in one statement. `createdAt` keeps a member's creation time when
 * the replace-set path rewrites it.
 */
export async function insertMembers(
  db: Db,
  tenantId: string,
  pool: string,
  members: readonly (CreateMember & { createdAt?: string })[],
  revision: number,
): Promise<Member[]> {
  if (members.length === 0) return [];
  const rows = await db
    .insertInto('members')
    .values(
      members.map((m) => ({
        tenant_id: tenantId,
        pool_name: pool,
        name: m.name,
        address: m.address,
        port: m.port,
        weight: m.weight,
        state: m.state,
        backup: m.backup,
        revision,
        ...(m.createdAt !== undefined ? { created_at: m.createdAt } : {}),
      })),
    )
    .returningAll()
    .execute();
  return rows.map(toMember);
}

export async function updateMember(
  db: Db,
  tenantId: string,
  pool: string,
  name: string,
  m: MemberSettings,
  revision: number,
): Promise<Member> {
  const row = await db
    .updateTable('members')
    .set({
      address: m.address,
      port: m.port,
      weight: m.weight,
      state: m.state,
      backup: m.backup,
      revision,
      updated_at: new Date(),
    })
    .where('tenant_id', '=', tenantId)
    .where('pool_name', '=', pool)
    .where('name', '=', name)
    .returningAll()
    .executeTakeFirstOrThrow();
  return toMember(row);
}

export async function deleteMembers(db: Db, tenantId: string, pool: string, names: readonly string[]): Promise<void> {
  if (names.length === 0) return;
  await db
    .deleteFrom('members')
    .where('tenant_id', '=', tenantId)
    .where('pool_name', '=', pool)
    .where('name', 'in', names)
    .execute();
}
