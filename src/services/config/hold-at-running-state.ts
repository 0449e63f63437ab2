import type { HeldTenant } from '../../db/config-repository.js';
import type { TenantState } from '../../db/desired-state-repository.js';
import type { ReloadHold } from '../../db/reload-hold-repository.js';

/** The reload holds of a node and what it runs, read at the start of its build. */
export interface NodeHolds {
  readonly holds: readonly ReloadHold[];
  readonly appliedHash: string | null;
  readonly appliedRevision: number | null;
  readonly now: number;
}

export interface HoldOutcome {
  readonly served: TenantState[];
  readonly held: HeldTenant[];
  /** Running states worked out by this build, to record with the hold. */
  readonly learned: { tenant: string; state: TenantState | null }[];
  readonly states: ReadonlyMap<string, TenantState | null>;
  readonly changed: boolean;
  /** The earliest retry of an active hold (ms since the epoch). */
  readonly retryAt: number;
}

/**
 * Serves each tenant held on the node for a listener it could not bind at the state the node
 * runs: the one recorded when the hold began, else its state in the version the node last
 * applied (`servedAt` answers the states a version served, when they are remembered; null when
 * the tenant was not there), else, when that version was built by another replica or before a
 * restart, its current state without the VIPs whose listeners failed. A hold whose retry time has
 * come is not applied: the build tries the tenant's current state again, and the agent's next
 * report ends or renews the hold. Null when no tenant is held.
 */
export function holdAtRunningState(
  served: readonly TenantState[],
  h: NodeHolds,
  servedAt: (contentHash: string) => readonly TenantState[] | undefined,
): HoldOutcome | null {
  const active = new Map(h.holds.filter((x) => x.retryAt > h.now).map((x) => [x.tenant, x]));
  if (active.size === 0) return null;
  const ran = h.appliedHash === null ? undefined : servedAt(h.appliedHash);
  const out: TenantState[] = [];
  const held: HeldTenant[] = [];
  const learned: { tenant: string; state: TenantState | null }[] = [];
  const states = new Map<string, TenantState | null>();
  for (const t of served) {
    const hold = active.get(t.tenant.id);
    // A hold whose listeners the tenant no longer asks for (the VIP deleted, its port moved) has no cause left.
    if (hold === undefined || !stillWanted(t, hold)) {
      out.push(t);
      continue;
    }
    let good: TenantState | null;
    if (hold.good.known) good = hold.good.state as TenantState | null;
    else if (ran !== undefined) {
      good = ran.find((r) => r.tenant.id === t.tenant.id) ?? null;
      learned.push({ tenant: t.tenant.id, state: good });
    } else good = withoutVips(t, new Set(hold.listeners.map((l) => l.vip)));
    if (good !== null) out.push(good);
    states.set(t.tenant.id, good);
    held.push({
      tenant: t.tenant.id,
      error: hold.reason,
      servingRevision: good === null ? null : h.appliedRevision,
      cause: 'reload',
    });
  }
  if (held.length === 0) return null;
  return {
    served: out,
    held,
    learned,
    states,
    changed: true,
    retryAt: Math.min(...[...active.values()].map((x) => x.retryAt)),
  };
}

/** Whether the tenant's current state still binds one of the listeners its hold is for. */
function stillWanted(t: TenantState, hold: ReloadHold): boolean {
  return hold.listeners.some((l) =>
    t.vips.some((v) => v.name === l.vip && v.address === l.address && v.port === l.port),
  );
}

/** A tenant's state without some VIPs (and so their routes): a held tenant when what the node runs is unknown here. */
function withoutVips(t: TenantState, vips: ReadonlySet<string>): TenantState {
  return { ...t, vips: t.vips.filter((v) => !vips.has(v.name)) };
}
