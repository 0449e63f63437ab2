import type { ResourceVector } from '../capacity.js';

export interface HysteresisOptions {
  /** A cap moves only when the new value differs by more than this fraction of the current one. */
  readonly relative: number;
  /** ...and by more than this many units, so small caps do not flap on tiny changes. */
  readonly absolute: ResourceVector;
}

export const DEFAULT_HYSTERESIS: HysteresisOptions = Object.freeze({
  relative: 0.1,
  absolute: Object.freeze({ connections: 2, requestsPerSecond: 2 }),
});

/** What hysteresis reads of one node's tenants in one dimension, indexed by position on the node. */
export interface HysteresisColumn {
  readonly reserved: readonly number[];
  readonly limit: readonly number[];
  /** Refused at its cap in the latest poll. */
  readonly saturated: readonly boolean[];
  /** The cap in force, or null for a tenant new on the node. */
  readonly current: readonly (number | null)[];
}

/**
 * Keeps a tenant's current cap when the target is within max(relative·current, absolute) of it.
 * Never holds: a cap outside [reservation, limit], a cap below a target that sits at the limit
 * (so a tenant does reach its limit), a saturated tenant's cap below its target (a tenant refused
 * at its cap is never frozen there), or anything that would take the node past its capacity
 * (held caps above their target are released, largest excess first, until the node fits).
 */
export function applyHysteresis(
  col: HysteresisColumn,
  targets: readonly number[],
  capacity: number,
  relative: number,
  absolute: number,
): number[] {
  const caps = targets.map((t, i) => {
    const cur = col.current[i]!;
    return cur !== null &&
      !(col.saturated[i]! && t > cur) &&
      holds(cur, col.reserved[i]!, col.limit[i]!, t, relative, absolute)
      ? cur
      : t;
  });
  let total = caps.reduce((a, b) => a + b, 0);
  if (total <= capacity) return caps;
  const excess = [...caps.keys()]
    .filter((i) => caps[i]! > targets[i]!)
    .sort((a, b) => caps[b]! - targets[b]! - (caps[a]! - targets[a]!) || a - b);
  for (const i of excess) {
    if (total <= capacity) break;
    total -= caps[i]! - targets[i]!;
    caps[i] = targets[i]!;
  }
  return caps;
}

function holds(
  cur: number,
  reserved: number,
  limit: number,
  target: number,
  relative: number,
  absolute: number,
): boolean {
  if (cur === target || cur < reserved || cur > limit) return false;
  if (target === limit && cur < target) return false;
  return Math.abs(target - cur) <= Math.max(relative * cur, absolute);
}
