import type { NodeSnapshot, TenantSnapshot } from '../domain/snapshot.js';
import type { PassScope } from '../services/runtime-planner.js';

/**
 * A scoped pass takes at most this many tenants, or an eighth of the node's, whichever is more:
 * beyond that, one whole read (a single `show servers state`) costs less than the scoped reads.
 */
const MIN_SCOPE_LIMIT = 64;
const SCOPE_SHARE_INVERSE = 8;

/**
 * Which tenants a pass must look at, given the snapshot the last pass planned from: those whose
 * snapshot object changed (snapshots are immutable and an unchanged tenant keeps its object from
 * one load to the next), those added or removed, and `also` (a follow-up's). `whole` when the
 * node's own settings moved (every object may be named anew) or when so many tenants changed that
 * reading the whole node is cheaper.
 */
export function changedTenants(
  before: NodeSnapshot,
  after: NodeSnapshot,
  also: ReadonlySet<string> | null = null,
): PassScope | 'whole' {
  if (before.node !== after.node && JSON.stringify(before.node) !== JSON.stringify(after.node)) return 'whole';
  const tenants = new Set<string>(also ?? []);
  const previous = new Map<string, TenantSnapshot>();
  const current = new Map<string, TenantSnapshot>();
  const seen = (t: TenantSnapshot, into: Map<string, TenantSnapshot>) => {
    tenants.add(t.id);
    into.set(t.id, t);
  };
  // Snapshots list tenants sorted by id: one merge walk, no index of 10,000 entries per pass.
  const a = sortedById(before.tenants);
  const b = sortedById(after.tenants);
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    const x = a[i];
    const y = b[j];
    if (x !== undefined && y !== undefined && x.id === y.id) {
      if (x !== y) {
        seen(x, previous);
        seen(y, current);
      }
      i++;
      j++;
    } else if (y === undefined || (x !== undefined && x.id < y.id)) {
      seen(x!, previous); // removed since
      i++;
    } else {
      seen(y, current); // added since
      j++;
    }
  }
  for (const id of also ?? []) {
    const x = a.find((t) => t.id === id);
    const y = b.find((t) => t.id === id);
    if (x !== undefined) previous.set(id, x);
    if (y !== undefined) current.set(id, y);
  }
  if (tenants.size > Math.max(MIN_SCOPE_LIMIT, after.tenants.length / SCOPE_SHARE_INVERSE)) return 'whole';
  return { tenants, previous: [...previous.values()], current: [...current.values()] };
}

/** The tenants as they are when sorted by id (as snapshots list them), else a sorted copy. */
function sortedById(tenants: readonly TenantSnapshot[]): readonly TenantSnapshot[] {
  for (let i = 1; i < tenants.length; i++) {
    if (tenants[i]!.id < tenants[i - 1]!.id)
      return [...tenants].sort((x, y) => (x.id < y.id ? -1 : x.id > y.id ? 1 : 0));
  }
  return tenants;
}
