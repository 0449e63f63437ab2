import { sql } from 'kysely';
import type { Db } from './connect.js';
import { iso } from './column-values.js';

/** A failed listener and the VIP of the tenant that owns it. */
export interface HeldListener {
  readonly vip: string;
  readonly address: string;
  readonly port: number;
  readonly reason: 'in-use' | 'address-not-available';
}

export interface ReloadHold {
  readonly node: string;
  readonly tenant: string;
  readonly listeners: readonly HeldListener[];
  /** Why, in words: shown in the tenant's status on this node. */
  readonly reason: string;
  /** Failed tries so far (the first failure counts). */
  readonly attempts: number;
  readonly since: string;
  /** When the tenant's current state is tried again on the node (ms since the epoch). */
  readonly retryAt: number;
  /**
   * The state the node ran for the tenant when the hold began: `known` false while not yet worked
   * out; `state` null when the tenant was not on the node.
   */
  readonly good: { readonly known: boolean; readonly state: unknown };
}

/** The VIPs behind these listeners among the tenants placed on the node (VIP address:port is unique). */
export async function vipsBehind(
  db: Db,
  node: string,
  listeners: readonly { address: string; port: number }[],
): Promise<{ tenant: string; vip: string; address: string; port: number }[]> {
  if (listeners.length === 0) return [];
  const rows = await db
    .selectFrom('vips')
    .innerJoin('placements', (j) =>
      j.onRef('placements.tenant_id', '=', 'vips.tenant_id').on('placements.node_name', '=', node),
    )
    .select(['vips.tenant_id', 'vips.name', 'vips.address', 'vips.port'])
    .where((eb) =>
      eb.or(listeners.map((l) => eb.and([eb('vips.address', '=', l.address), eb('vips.port', '=', l.port)]))),
    )
    .execute();
  return rows.map((r) => ({ tenant: r.tenant_id, vip: r.name, address: r.address, port: r.port }));
}

/**
 * Holds (or holds again) a tenant on a node: a new hold starts at one attempt, a failed retry adds
 * one; either way the next try is `retryInMs(attempts)` from now. The good state found for a hold
 * is kept across its retries.
 */
export async function upsertHold(
  db: Db,
  h: { node: string; tenant: string; listeners: readonly HeldListener[]; reason: string },
  retryInMs: (attempts: number) => number,
  now: Date,
): Promise<void> {
  const existing = await db
    .selectFrom('reload_holds')
    .select('attempts')
    .where('node_name', '=', h.node)
    .where('tenant_id', '=', h.tenant)
    .executeTakeFirst();
  const attempts = (existing?.attempts ?? 0) + 1;
  const retryAt = new Date(now.getTime() + retryInMs(attempts));
  await db
    .insertInto('reload_holds')
    .values({
      node_name: h.node,
      tenant_id: h.tenant,
      listeners: JSON.stringify(h.listeners),
      reason: h.reason,
      attempts,
      since: now,
      retry_at: retryAt,
    })
    .onConflict((oc) =>
      oc
        .columns(['node_name', 'tenant_id'])
        .doUpdateSet({ listeners: JSON.stringify(h.listeners), reason: h.reason, attempts, retry_at: retryAt }),
    )
    .execute();
}

export async function holdsOn(db: Db, node: string): Promise<ReloadHold[]> {
  const rows = await db
    .selectFrom('reload_holds')
    .selectAll()
    .where('node_name', '=', node)
    .orderBy('tenant_id')
    .execute();
  return rows.map((r) => ({
    node: r.node_name,
    tenant: r.tenant_id,
    listeners: r.listeners as HeldListener[],
    reason: r.reason,
    attempts: r.attempts,
    since: iso(r.since),
    retryAt: new Date(r.retry_at).getTime(),
    good: { known: r.good_known, state: r.good_state },
  }));
}

/** Records the state the node ran for a held tenant (null: it was not on the node). */
export async function recordHeldState(db: Db, node: string, tenant: string, state: unknown): Promise<void> {
  await db
    .updateTable('reload_holds')
    .set({ good_known: true, good_state: state === null ? null : JSON.stringify(state) })
    .where('node_name', '=', node)
    .where('tenant_id', '=', tenant)
    .where('good_known', '=', false)
    .execute();
}

/** Ends the holds of a node whose tenants the node now runs at their current state. */
export async function releaseHolds(db: Db, node: string, except: readonly string[]): Promise<number> {
  let query = db.deleteFrom('reload_holds').where('node_name', '=', node);
  if (except.length > 0) query = query.where('tenant_id', 'not in', [...except]);
  const result = await query.executeTakeFirst();
  return Number(result.numDeletedRows);
}

/** Tenants held on each node, for views that list them. */
export async function heldCount(db: Db): Promise<Map<string, number>> {
  const rows = await db
    .selectFrom('reload_holds')
    .select(['node_name', sql<string>`count(*)`.as('n')])
    .groupBy('node_name')
    .execute();
  return new Map(rows.map((r) => [r.node_name, Number(r.n)]));
}
