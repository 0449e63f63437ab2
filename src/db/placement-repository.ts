import type { Resources } from '../domain/tenant.js';
import type { Db } from './connect.js';
import { iso } from './column-values.js';

/** One tenant on one node, with the reservation it was placed with and why it went there. */
export interface StoredPlacement {
  readonly tenantId: string;
  readonly node: string;
  readonly reservation: Resources;
  readonly reason: string;
  readonly placedAt: string;
  readonly revision: number;
}

/** Every placement (optionally one tenant's), sorted by tenant, then node. */
export async function listPlacements(db: Db, opts: { tenantId?: string } = {}): Promise<StoredPlacement[]> {
  let q = db.selectFrom('placements').selectAll();
  if (opts.tenantId !== undefined) q = q.where('tenant_id', '=', opts.tenantId);
  const rows = await q.orderBy('tenant_id').orderBy('node_name').execute();
  return rows.map((r) => ({
    tenantId: r.tenant_id,
    node: r.node_name,
    reservation: { vcpu: Number(r.reservation_vcpu), memoryMb: r.reservation_memory_mb },
    reason: r.reason,
    placedAt: iso(r.placed_at),
    revision: Number(r.revision),
  }));
}

export interface PlacementWrite {
  readonly tenantId: string;
  readonly node: string;
  readonly reservation: Resources;
  readonly reason: string;
}

/** Adds placements, or refreshes the reservation of ones that exist (the reason and time stay). */
export async function upsertPlacements(db: Db, rows: readonly PlacementWrite[], revision: number): Promise<void> {
  if (rows.length === 0) return;
  await db
    .insertInto('placements')
    .values(
      rows.map((r) => ({
        tenant_id: r.tenantId,
        node_name: r.node,
        reservation_vcpu: r.reservation.vcpu,
        reservation_memory_mb: r.reservation.memoryMb,
        reason: r.reason,
        revision,
      })),
    )
    .onConflict((oc) =>
      oc.columns(['tenant_id', 'node_name']).doUpdateSet((eb) => ({
        reservation_vcpu: eb.ref('excluded.reservation_vcpu'),
        reservation_memory_mb: eb.ref('excluded.reservation_memory_mb'),
        revision: eb.ref('excluded.revision'),
      })),
    )
    .execute();
}

export async function deletePlacements(db: Db, rows: readonly { tenantId: string; node: string }[]): Promise<void> {
  for (const r of rows) {
    await db.deleteFrom('placements').where('tenant_id', '=', r.tenantId).where('node_name', '=', r.node).execute();
  }
}

/** Takes a node out of placement with the reason, or (reason null) brings it back. */
export async function setNodeExcluded(db: Db, node: string, reason: string | null, at: Date): Promise<void> {
  await db
    .updateTable('nodes')
    .set({ placement_excluded_reason: reason, placement_excluded_at: reason === null ? null : at })
    .where('name', '=', node)
    .execute();
}

/**
 * The reservations placed on each node, summed, leaving out one tenant's: the kept sums (one row
 * per node) less that tenant's own placements, so the cost does not grow with the fleet.
 */
export async function bookedPerNode(db: Db, opts: { except: string }): Promise<Map<string, Resources>> {
  // One after the other: a transaction is one connection.
  const sums = await db.selectFrom('node_bookings').select(['node_name', 'vcpu', 'memory_mb']).execute();
  const own = await db
    .selectFrom('placements')
    .select(['node_name', 'reservation_vcpu', 'reservation_memory_mb'])
    .where('tenant_id', '=', opts.except)
    .execute();
  const booked = new Map(sums.map((r) => [r.node_name, { vcpu: Number(r.vcpu), memoryMb: Number(r.memory_mb) }]));
  for (const p of own) {
    const b = booked.get(p.node_name);
    // vCPUs are stored to the thousandth: round away the float noise of the subtraction.
    if (b)
      booked.set(p.node_name, {
        vcpu: Math.round((b.vcpu - Number(p.reservation_vcpu)) * 1000) / 1000,
        memoryMb: b.memoryMb - p.reservation_memory_mb,
      });
  }
  return booked;
}
