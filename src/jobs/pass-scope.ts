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
  const previous = new Map<string, TenantSnapshot>();
  for (const t of before.tenants) previous.set(t.id, t);
  const current = new Map<string, TenantSnapshot>();
  const tenants = new Set<string>(also ?? []);
  for (const t of after.tenants) {
    current.set(t.id, t);
    if (previous.get(t.id) !== t) tenants.add(t.id);
  }
  for (const id of previous.keys()) if (!current.has(id)) tenants.add(id);
  if (tenants.size > Math.max(MIN_SCOPE_LIMIT, after.tenants.length / SCOPE_SHARE_INVERSE)) return 'whole';
  const pick = (m: ReadonlyMap<string, TenantSnapshot>) =>
    [...tenants].flatMap((id) => {
      const t = m.get(id);
      return t === undefined ? [] : [t];
    });
  return { tenants, previous: pick(previous), current: pick(current) };
}
