import { formatNeed, formatShort, fromNeed } from './need.js';
import { hostOf, hostUsed, type NodeState, type TenantState } from './placement-state.js';
import type { PlacementShortfall } from './placement-types.js';

/**
 * Why tenant `t` has fewer than `wanted` replicas on `pool` (its eligible nodes), with the node
 * closest to taking one more and what that node lacks, in one sentence for operators and the API.
 */
export function describeShortfall(t: TenantState, pool: readonly NodeState[], wanted: number): PlacementShortfall {
  const where = `of kind ${t.tenant.kind} in group ${t.group}`;
  const head = `tenant ${t.tenant.id} needs ${formatNeed(t.need)} on ${plural(wanted, 'node')} ${where}`;
  const best = closestNode(t, pool);
  const base = {
    tenantId: t.tenant.id,
    kind: t.tenant.kind,
    group: t.group,
    needed: t.tenant.reservation,
    replicasWanted: wanted,
    replicasPlaced: t.kept.length,
  };
  if (best === null) {
    const why =
      pool.length === 0
        ? `there is no healthy node ${where}`
        : `every other node ${where} already serves it or shares a host with one that does`;
    const placed = t.kept.length > 0 ? `only ${t.kept.length} has room; ` : '';
    return { ...base, best: null, missing: null, message: `${head}; ${placed}${why}` };
  }
  const free = { milli: best.cap.milli - best.usedMilli, mb: best.cap.mb - best.usedMb };
  const missing = { milli: Math.max(0, t.need.milli - free.milli), mb: Math.max(0, t.need.mb - free.mb) };
  const which = t.kept.length > 0 ? `only ${t.kept.length} has room; the best of the others` : 'the best';
  return {
    ...base,
    best: { node: best.node.name, free: fromNeed(free.milli, free.mb) },
    missing: fromNeed(missing.milli, missing.mb),
    message: `${head}; ${which} (${best.node.name}) has ${formatNeed(free)} free, ${formatShort(missing)} short`,
  };
}

/** The eligible node not serving the tenant whose free space covers the largest share of its need. */
function closestNode(t: TenantState, pool: readonly NodeState[]): NodeState | null {
  let best: NodeState | null = null;
  let bestCover = -1;
  for (const n of pool) {
    if (t.kept.includes(n) || hostUsed(t.kept, hostOf(n))) continue;
    const cover = Math.min(coverage(n.cap.milli - n.usedMilli, t.need.milli), coverage(n.cap.mb - n.usedMb, t.need.mb));
    if (cover > bestCover) {
      best = n;
      bestCover = cover;
    }
  }
  return best;
}

function coverage(free: number, need: number): number {
  return need > 0 ? Math.max(0, free) / need : Number.POSITIVE_INFINITY;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}
