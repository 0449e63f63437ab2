import { byString } from '../../util/sort.js';
import { fromNeed } from './need.js';
import { fillOrder, fillReplicas } from './fill-replicas.js';
import { keepCurrent } from './keep-current.js';
import { buildFleet, buildTenants, type NodeState, type TenantState } from './placement-state.js';
import { describeShortfall } from './placement-shortfall.js';
import type {
  NodeUsage,
  PlacementInput,
  PlacementMove,
  PlacementPlan,
  PlacementShortfall,
  TenantAssignment,
} from './placement-types.js';

/**
 * Placement: which proxy nodes serve which tenant.
 *
 * Semantics chosen here:
 * - **A reservation is served per node.** Every node a tenant is placed on must be able to carry
 *   the tenant's whole reservation, so when one replica fails the others still honour the
 *   guarantee. A tenant reserving 2 vCPU on 2 nodes therefore holds 2 vCPU on each.
 * - **Node capacity is never overbooked:** the reservations placed on a node add up to at most its
 *   capacity, in vCPU and in memory.
 * - A tenant goes on `min(minReplicas, eligible hosts)` nodes, where eligible means healthy, of the
 *   tenant's kind and group, with non-zero capacity; replicas go to different zones when a node of
 *   an unused zone has room.
 * - **One node per host:** a tenant never goes on two nodes of one host (nor on a host its other
 *   proxy kinds already use, `avoidHosts`): both proxies would bind its VIP:port (HAProxy and NGINX
 *   with `reuseport` both do) and the kernel would silently share its connections between them.
 * - **Few moves:** a tenant stays on a node while the node is healthy, eligible and has room. New
 *   replicas go to the least-utilised node that fits (spreading load leaves each node spare
 *   capacity for bursts). A node that comes back is used for new replicas only; tenants move onto
 *   it only to restore zone spread (`restoreZoneSpread`, on by default).
 *
 * Everything is pure and deterministic: the same input, in any order, gives the same plan.
 */

export const DEFAULT_MIN_REPLICAS = 2;

/**
 * Plans which nodes serve which tenant. Pure: returns the assignments, the replica moves with
 * their reasons, and the tenants that could not be (fully) placed with a message saying how much
 * is missing. Node capacity is in vCPU and MB, as declared.
 */
export function planPlacement(input: PlacementInput): PlacementPlan {
  const minReplicas = Math.max(1, Math.floor(input.minReplicas ?? DEFAULT_MIN_REPLICAS));
  const fleet = buildFleet(input.nodes, input.booked);
  const tenants = buildTenants(input, fleet);
  keepCurrent(tenants, fleet, minReplicas);
  const order = fillOrder(tenants);
  fillReplicas(order, minReplicas, input.restoreZoneSpread ?? true);
  const shortfalls: PlacementShortfall[] = [];
  for (const t of order) {
    const pool = t.pool.nodes;
    const wanted = Math.min(minReplicas, t.pool.hosts);
    // A tenant whose other proxy kind already uses every host here is served by that kind: no shortfall.
    if (pool.length === 0 && (t.tenant.avoidHosts?.size ?? 0) > 0) continue;
    // With no eligible node at all the message still names the replicas the rule asks for.
    if (pool.length === 0) shortfalls.push(describeShortfall(t, pool, minReplicas));
    else if (t.kept.length < wanted) shortfalls.push(describeShortfall(t, pool, wanted));
  }
  return {
    assignments: tenants.filter((t) => t.kept.length > 0).map(toAssignment),
    moves: tenants.flatMap(toMoves),
    unplaceable: shortfalls.filter((s) => s.replicasPlaced === 0).sort((a, b) => byString(a.tenantId, b.tenantId)),
    degraded: shortfalls.filter((s) => s.replicasPlaced > 0).sort((a, b) => byString(a.tenantId, b.tenantId)),
    nodes: [...fleet.nodes.values()].map(toUsage),
  };
}

// ---- output ----

function toAssignment(t: TenantState): TenantAssignment {
  return {
    tenantId: t.tenant.id,
    nodes: t.kept.map((n) => n.node.name).sort(byString),
    reservation: t.tenant.reservation,
  };
}

/** Pairs each dropped replica with an added one, so a move reads "from X to Y because X ...". */
function toMoves(t: TenantState): PlacementMove[] {
  if (t.removed.length === 0 && t.added.length === 0) return [];
  const addedNames = new Set(t.added.map((a) => a.node));
  const removedNames = new Set(t.removed.map((r) => r.node));
  // A replica dropped and re-added in the same plan did not move.
  const removed = t.removed.filter((r) => !addedNames.has(r.node));
  const added = t.added.filter((a) => !removedNames.has(a.node));
  const moves: PlacementMove[] = [];
  const pairs = Math.max(removed.length, added.length);
  for (let i = 0; i < pairs; i++) {
    const r = removed[i];
    const a = added[i];
    const reason = r?.reason ?? a?.reason ?? 'replica-added';
    const detail =
      r === undefined
        ? (a?.detail ?? '')
        : a === undefined
          ? r.detail
          : r.reason === 'zone-spread'
            ? r.detail
            : `${r.detail}; ${a.detail}`;
    moves.push({ tenantId: t.tenant.id, from: r?.node ?? null, to: a?.node ?? null, reason, detail });
  }
  return moves;
}

function toUsage(n: NodeState): NodeUsage {
  return {
    node: n.node.name,
    healthy: n.node.healthy,
    eligible: n.eligible,
    capacity: n.node.capacity,
    reserved: fromNeed(n.usedMilli, n.usedMb),
    free: fromNeed(n.cap.milli - n.usedMilli, n.cap.mb - n.usedMb),
    tenants: n.count,
  };
}
