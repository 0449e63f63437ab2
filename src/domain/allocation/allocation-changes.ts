import { RESOURCE_DIMENSIONS, type ResourceDimension, type ResourceVector } from '../capacity.js';
import { SATURATED_GROWTH } from './allocate-node.js';
import type { Allocation, AllocationChange } from './allocation-types.js';

/**
 * Appends to `out` one change per dimension whose cap differs from the one in force (`before`,
 * null for a tenant new on the node), each with a sentence saying why. `headroom`: the fraction
 * added to demand, as the plan used it.
 */
export function addChanges(
  out: AllocationChange[],
  a: Allocation,
  before: ResourceVector | null,
  headroom: number,
): void {
  for (const dim of RESOURCE_DIMENSIONS) {
    const to = dim === 'connections' ? a.maxConnections : a.requestsPerSecond;
    const from = before === null ? null : before[dim];
    if (from === to) continue;
    out.push({
      tenantId: a.tenantId,
      node: a.node,
      dimension: dim,
      from,
      to,
      reason: a.reasons[dim],
      detail: explain(a, dim, from, to, headroom),
    });
  }
}

const UNIT: Record<ResourceDimension, string> = { connections: 'connections', requestsPerSecond: 'req/s' };

function explain(a: Allocation, dim: ResourceDimension, from: number | null, to: number, headroom: number): string {
  const u = UNIT[dim];
  const head = `${dim} ${from === null ? 'new' : from} → ${to}`;
  const demand =
    (a.demand === null ? 'no demand signal' : `demand ${round(a.demand[dim])} ${u}`) +
    (a.saturated[dim] ? `, refused at its cap (probing upward, ×${SATURATED_GROWTH})` : '');
  const withHeadroom = `${Math.round(headroom * 100)}% headroom`;
  switch (a.reasons[dim]) {
    case 'reservation':
      return `${head}: ${demand}; the reservation of ${a.reserved[dim]} ${u} stands`;
    case 'demand':
      return `${head}: ${demand} plus ${withHeadroom}, within the limit of ${a.limit[dim]} ${u}`;
    case 'limit':
      return `${head}: ${demand}; capped at the limit of ${a.limit[dim]} ${u}`;
    case 'fair-share':
      return `${head}: ${demand} plus ${withHeadroom}; the node's spare capacity is shared by weight`;
    case 'idle-share':
      return `${head}: ${demand}; idle capacity shared by weight, up to the limit of ${a.limit[dim]} ${u}`;
    case 'overcommitted':
      return `${head}: reservations on node ${a.node} exceed its capacity; scaled down from ${a.reserved[dim]} ${u}`;
    case 'held':
      return `${head}: kept by hysteresis; the model's target is ${a.target[dim]} ${u}`;
  }
}

function round(x: number): number {
  return Math.round(x * 10) / 10;
}
