import type { Selectable } from 'kysely';
import type { MemberHealth, MemberHealthStatus } from '../domain/member-health.js';
import type { Db } from './connect.js';
import { iso } from './column-values.js';
import type { MemberHealthTable } from './schema.js';

export interface StoredMemberHealth extends MemberHealth {
  readonly node: string;
  readonly updatedAt: string;
}

/**
 * Makes the node's stored health exactly `entries`: upserts what changed, deletes what the proxy
 * no longer has. The caller passes only a node it just observed; one transaction is the caller's.
 */
export async function replaceNodeHealth(
  db: Db,
  node: string,
  entries: readonly MemberHealth[],
  at: Date,
): Promise<void> {
  await upsertHealth(db, node, entries, at);
  // Every current entry was just stamped `at`: anything older is gone from the proxy.
  await db.deleteFrom('member_health').where('node_name', '=', node).where('updated_at', '<', at).execute();
}

const HEALTH_CHUNK = 1000;

/** Inserts or updates `entries`, stamped `at`. */
async function upsertHealth(db: Db, node: string, entries: readonly MemberHealth[], at: Date): Promise<void> {
  // PostgreSQL takes at most 65,535 parameters per statement: a large node is written in chunks.
  for (let i = 0; i < entries.length; i += HEALTH_CHUNK) {
    await db
      .insertInto('member_health')
      .values(entries.slice(i, i + HEALTH_CHUNK).map((e) => ({ node_name: node, ...columns(e), updated_at: at })))
      .onConflict((oc) =>
        oc.columns(['node_name', 'backend', 'member']).doUpdateSet((eb) => ({
          tenant_id: eb.ref('excluded.tenant_id'),
          pool: eb.ref('excluded.pool'),
          status: eb.ref('excluded.status'),
          check_status: eb.ref('excluded.check_status'),
          check_description: eb.ref('excluded.check_description'),
          updated_at: eb.ref('excluded.updated_at'),
        })),
      )
      .execute();
  }
}

/**
 * `replaceNodeHealth` for some of the node's backends only (a pass that looked at a few tenants):
 * their stored entries become exactly those of `entries`; the node's other rows are left alone.
 */
export async function replaceBackendsHealth(
  db: Db,
  node: string,
  backends: readonly string[],
  entries: readonly MemberHealth[],
  at: Date,
): Promise<void> {
  if (backends.length === 0) return;
  await upsertHealth(db, node, entries, at);
  await db
    .deleteFrom('member_health')
    .where('node_name', '=', node)
    .where('backend', 'in', [...backends])
    .where('updated_at', '<', at)
    .execute();
}

/** A tenant's members as every node reports them, by pool, member, node. */
export async function listTenantHealth(db: Db, tenantId: string): Promise<StoredMemberHealth[]> {
  const rows = await db
    .selectFrom('member_health')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .orderBy('pool')
    .orderBy('member')
    .orderBy('node_name')
    .orderBy('backend')
    .execute();
  return rows.map((r) => ({ node: r.node_name, ...toHealth(r), updatedAt: iso(r.updated_at) }));
}

/** The node's stored entries as `replaceNodeHealth` wrote them, in no particular order. */
export async function nodeHealth(db: Db, node: string): Promise<MemberHealth[]> {
  const rows = await db
    .selectFrom('member_health')
    .select(['backend', 'member', 'tenant_id', 'pool', 'status', 'check_status', 'check_description'])
    .where('node_name', '=', node)
    .execute();
  return rows.map(toHealth);
}

type HealthRow = Pick<
  Selectable<MemberHealthTable>,
  'backend' | 'member' | 'tenant_id' | 'pool' | 'status' | 'check_status' | 'check_description'
>;

function toHealth(r: HealthRow): MemberHealth {
  return {
    tenant: r.tenant_id,
    pool: r.pool,
    member: r.member,
    backend: r.backend,
    status: r.status as MemberHealthStatus,
    checkStatus: r.check_status,
    checkDescription: r.check_description,
  };
}

/** An entry as `replaceNodeHealth` stores it: what comparing with `nodeHealth` must start from. */
export function storedHealth(e: MemberHealth): MemberHealth {
  const c = columns(e);
  return {
    tenant: c.tenant_id,
    pool: c.pool,
    member: c.member,
    backend: c.backend,
    status: e.status,
    checkStatus: c.check_status,
    checkDescription: c.check_description,
  };
}

function columns(e: MemberHealth) {
  return {
    backend: e.backend,
    member: e.member,
    tenant_id: e.tenant,
    pool: e.pool,
    status: e.status,
    check_status: e.checkStatus,
    // A check description is the proxy's free text: stored and shown, bounded.
    check_description: e.checkDescription === null ? null : e.checkDescription.slice(0, 500),
  };
}
