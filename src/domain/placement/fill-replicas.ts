import { byString } from '../../util/sort.js';
import { ZERO_NEED, formatNeed } from './need.js';
import {
  distinctZones,
  fits,
  hostOf,
  hostUsed,
  occupy,
  release,
  utilisation,
  zoneUsed,
  type NodeState,
  type Pool,
  type TenantState,
} from './placement-state.js';

/** Largest reservations first (first-fit decreasing packs best), then by id for determinism. */
export function fillOrder(tenants: readonly TenantState[]): TenantState[] {
  return [...tenants].sort((a, b) => b.size - a.size || a.index - b.index);
}

/**
 * Adds missing replicas and restores zone spread, tenant by tenant, until nothing changes: a
 * zone-spread move frees room on the node it leaves, which a tenant handled earlier may now use.
 * Every step adds a replica or a zone to some tenant, so the loop ends.
 */
export function fillReplicas(order: readonly TenantState[], minReplicas: number, restoreZoneSpread: boolean): void {
  let changed = true;
  while (changed) {
    changed = false;
    for (const t of order) {
      addReplicas(t, t.pool.nodes, Math.min(minReplicas, t.pool.hosts));
      // Only a zone-spread move frees room; additions alone cannot help a tenant handled earlier.
      if (restoreZoneSpread && spreadZones(t, t.pool) > 0) changed = true;
    }
  }
}

function addReplicas(t: TenantState, pool: readonly NodeState[], wanted: number): void {
  while (t.kept.length < wanted) {
    const n = bestCandidate(t, pool, false);
    if (n === null) return;
    occupy(n, t.need);
    t.kept.push(n);
    t.added.push({
      node: n.node.name,
      reason: t.current.length > 0 ? 'replica-added' : 'new-tenant',
      detail: `node ${n.node.name} (zone ${n.node.zone}) has room for ${formatNeed(t.need)}`,
    });
  }
}

/** Moves one replica at a time out of a shared zone while a node of an unused zone has room. Returns the moves made. */
function spreadZones(t: TenantState, pool: Pool): number {
  let moves = 0;
  while (t.kept.length > 1 && distinctZones(t.kept) < Math.min(t.kept.length, pool.zones)) {
    const target = bestCandidate(t, pool.nodes, true);
    if (target === null) return moves;
    moves += 1;
    const victim = crowdedReplica(t.kept);
    release(victim, t.need);
    t.kept.splice(t.kept.indexOf(victim), 1);
    occupy(target, t.need);
    t.kept.push(target);
    const detail = `replicas shared zone ${victim.node.zone}; node ${target.node.name} in zone ${target.node.zone} has room`;
    t.removed.push({ node: victim.node.name, reason: 'zone-spread', detail });
    t.added.push({ node: target.node.name, reason: 'zone-spread', detail });
  }
  return moves;
}

/** Of the replicas in a zone that holds more than one, the one on the busiest node (then last by name). */
function crowdedReplica(kept: readonly NodeState[]): NodeState {
  const perZone = new Map<string, number>();
  for (const n of kept) perZone.set(n.node.zone, (perZone.get(n.node.zone) ?? 0) + 1);
  const crowded = kept.filter((n) => (perZone.get(n.node.zone) ?? 0) > 1);
  crowded.sort((a, b) => utilisation(b, ZERO_NEED) - utilisation(a, ZERO_NEED) || byString(b.node.name, a.node.name));
  const victim = crowded[0];
  if (victim === undefined) throw new Error('crowdedReplica called without a shared zone');
  return victim;
}

/**
 * The node a new replica should go to: it must fit; a zone the tenant does not use yet wins,
 * then the lowest utilisation after placing, then the fewest tenants, then the name.
 */
function bestCandidate(t: TenantState, pool: readonly NodeState[], newZoneOnly: boolean): NodeState | null {
  let best: NodeState | null = null;
  let bestSeen = 0;
  let bestUtil = 0;
  for (const n of pool) {
    if (!fits(n, t.need) || t.kept.includes(n) || hostUsed(t.kept, hostOf(n))) continue;
    const seen = zoneUsed(t.kept, n.node.zone) ? 1 : 0;
    if (newZoneOnly && seen === 1) continue;
    const util = utilisation(n, t.need);
    // Equal on every key: the earlier node by name wins, as pools are sorted by name.
    if (
      best === null ||
      seen < bestSeen ||
      (seen === bestSeen && (util < bestUtil || (util === bestUtil && n.count < best.count)))
    ) {
      best = n;
      bestSeen = seen;
      bestUtil = util;
    }
  }
  return best;
}
