import type { NodeKind } from '../node.js';
import type { Resources } from '../tenant.js';

// What `planPlacement` and `checkReservationFits` take and give; the rules are described in plan-placement.ts.

/** The group of a tenant that names none. */
export const DEFAULT_GROUP = 'default';

export interface PlacementNode {
  readonly name: string;
  readonly kind: NodeKind;
  readonly group: string;
  readonly zone: string;
  /** The machine the node runs on; absent: its name (a host of its own). */
  readonly host?: string;
  readonly capacity: Resources;
  /** False when the node misses heartbeats or its Runtime API stops answering: it takes no tenants. */
  readonly healthy: boolean;
}

export interface PlacementTenant {
  readonly id: string;
  readonly reservation: Resources;
  readonly limit: Resources;
  readonly weight: number;
  /** The proxy kind the tenant's VIPs need. */
  readonly kind: NodeKind;
  /** The node group the tenant runs in; `'default'` when absent. */
  readonly group?: string;
  /** Hosts where the tenant already runs on a node of another kind: none of their nodes may take it. */
  readonly avoidHosts?: ReadonlySet<string>;
}

export interface TenantAssignment {
  readonly tenantId: string;
  /** Node names, sorted. */
  readonly nodes: readonly string[];
  /**
   * The reservation the tenant had when it was placed. Optional; when given, a tenant whose
   * reservation has grown since is the one that leaves a node that no longer has room for all,
   * rather than a neighbour that did not change. `planPlacement` fills it in; store it as is.
   */
  readonly reservation?: Resources;
}

export interface PlacementInput {
  readonly nodes: readonly PlacementNode[];
  readonly tenants: readonly PlacementTenant[];
  /** The placement in force, so that as few tenants as possible move. */
  readonly current?: readonly TenantAssignment[];
  /** Replicas wanted per tenant, capped by the number of eligible nodes. Default 2. */
  readonly minReplicas?: number;
  /** Move a replica to restore zone spread once a node of an unused zone has room. Default true. */
  readonly restoreZoneSpread?: boolean;
  /**
   * Room each node already gives tenants left out of `tenants`: placing a few tenants around the
   * rest, which stay where they are (admitting one new tenant without re-planning thousands).
   */
  readonly booked?: ReadonlyMap<string, Resources>;
}

export type MoveReason =
  | 'new-tenant'
  | 'replica-added'
  | 'node-unhealthy'
  | 'node-gone'
  | 'node-ineligible'
  | 'no-room'
  | 'zone-spread'
  | 'excess-replica'
  | 'host-shared';

/** One replica change: `from: null` adds a replica, `to: null` drops one, both set moves it. */
export interface PlacementMove {
  readonly tenantId: string;
  readonly from: string | null;
  readonly to: string | null;
  readonly reason: MoveReason;
  readonly detail: string;
}

/** A tenant placed on fewer nodes than it needs (none at all when unplaceable). */
export interface PlacementShortfall {
  readonly tenantId: string;
  readonly kind: NodeKind;
  readonly group: string;
  /** Reservation needed on each node. */
  readonly needed: Resources;
  readonly replicasWanted: number;
  readonly replicasPlaced: number;
  /** The eligible node (not already serving the tenant) closest to having room, or null if none. */
  readonly best: { readonly node: string; readonly free: Resources } | null;
  /** What `best` lacks to take a replica, per dimension (0 where it has enough). */
  readonly missing: Resources | null;
  /** One sentence for operators and for the API's 409. */
  readonly message: string;
}

export interface NodeUsage {
  readonly node: string;
  readonly healthy: boolean;
  readonly eligible: boolean;
  readonly capacity: Resources;
  readonly reserved: Resources;
  readonly free: Resources;
  readonly tenants: number;
}

export interface PlacementPlan {
  /** Placed tenants only, sorted by tenant id; each with its reservation as placed. */
  readonly assignments: readonly TenantAssignment[];
  /** Sorted by tenant id, then from, then to. */
  readonly moves: readonly PlacementMove[];
  /** Tenants that could not be placed on any node. */
  readonly unplaceable: readonly PlacementShortfall[];
  /** Tenants placed, but on fewer than `min(minReplicas, eligible nodes)` nodes. */
  readonly degraded: readonly PlacementShortfall[];
  readonly nodes: readonly NodeUsage[];
}
