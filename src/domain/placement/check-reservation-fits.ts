import { byString } from '../../util/sort.js';
import type { Resources } from '../tenant.js';
import { formatNeed, toNeed } from './need.js';
import { planPlacement } from './plan-placement.js';
import type { PlacementInput, PlacementPlan, PlacementShortfall } from './placement-types.js';

export type ReservationCheck =
  | { readonly fits: true; readonly nodes: readonly string[]; readonly plan: PlacementPlan }
  | {
      readonly fits: false;
      /** For the API's 409. */
      readonly message: string;
      /** The tenant's own shortfall, or null when it fits but would push others out. */
      readonly shortfall: PlacementShortfall | null;
      /** Tenants that would lose replicas they have today. */
      readonly displaced: readonly string[];
    };

/**
 * Write-time admission for a reservation change (or a new tenant: add it to `input.tenants` first).
 * Fits when the tenant gets its full replica count and no other tenant ends up with fewer replicas
 * than it would without the change. Throws when `tenantId` is not in `input.tenants` (a caller bug).
 */
export function checkReservationFits(
  input: PlacementInput,
  tenantId: string,
  newReservation: Resources,
): ReservationCheck {
  if (!input.tenants.some((t) => t.id === tenantId))
    throw new Error(`tenant ${tenantId} is not in the placement input`);
  const changed: PlacementInput = {
    ...input,
    tenants: input.tenants.map((t) => (t.id === tenantId ? { ...t, reservation: newReservation } : t)),
  };
  const plan = planPlacement(changed);
  const own = [...plan.unplaceable, ...plan.degraded].find((s) => s.tenantId === tenantId);
  if (own !== undefined) return { fits: false, message: own.message, shortfall: own, displaced: [] };
  const displaced = displacedTenants(planPlacement(input), plan, tenantId);
  if (displaced.length > 0) {
    const message = `tenant ${tenantId} fits with ${formatNeed(toNeed(newReservation))}, but only by taking the room tenant(s) ${displaced.join(', ')} need`;
    return { fits: false, message, shortfall: null, displaced };
  }
  const nodes = plan.assignments.find((a) => a.tenantId === tenantId)?.nodes ?? [];
  return { fits: true, nodes, plan };
}

function displacedTenants(before: PlacementPlan, after: PlacementPlan, except: string): string[] {
  const count = (p: PlacementPlan) => new Map(p.assignments.map((a) => [a.tenantId, a.nodes.length]));
  const was = count(before);
  const now = count(after);
  return [...was]
    .filter(([id, n]) => id !== except && (now.get(id) ?? 0) < n)
    .map(([id]) => id)
    .sort(byString);
}
