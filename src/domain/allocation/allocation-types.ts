import type { CapacityModel, ResourceDimension, ResourceVector } from '../capacity.js';
import type { TenantDemand } from '../demand.js';
import type { NodeKind } from '../node.js';
import type { Resources } from '../tenant.js';
import type { HysteresisOptions } from './hysteresis.js';

// What `computeAllocations` takes and gives; the model is described in compute-allocations.ts.

export interface AllocationNode {
  readonly name: string;
  readonly kind: NodeKind;
  readonly capacity: Resources;
}

export interface AllocationTenant {
  readonly id: string;
  readonly reservation: Resources;
  readonly limit: Resources;
  /** Share of spare capacity relative to other tenants; non-positive or non-finite counts as 1. */
  readonly weight: number;
}

/** Which nodes serve a tenant (a placement assignment). */
export interface AllocationAssignment {
  readonly tenantId: string;
  readonly nodes: readonly string[];
}

/** The caps in force on a node, as last applied. */
export interface CurrentAllocation {
  readonly tenantId: string;
  readonly node: string;
  readonly maxConnections: number;
  readonly requestsPerSecond: number;
}

export interface AllocationInput {
  readonly nodes: readonly AllocationNode[];
  readonly tenants: readonly AllocationTenant[];
  readonly assignments: readonly AllocationAssignment[];
  /** Missing for a tenant on a node: no demand signal, the tenant wants its reservation. */
  readonly demand?: readonly TenantDemand[];
  readonly current?: readonly CurrentAllocation[];
  readonly factors?: CapacityModel;
  /** `null` turns hysteresis off. */
  readonly hysteresis?: HysteresisOptions | null;
  /** Fraction added to demand to form the wanted cap. Default 0.25. */
  readonly demandHeadroom?: number;
  /** Hand out capacity nobody wants, up to limits. Default true. */
  readonly shareIdle?: boolean;
}

/** What bounds a cap. */
export type AllocationReason =
  | 'reservation' // no demand above the reservation (or none observed)
  | 'demand' // demand plus headroom fully met
  | 'limit' // at the tenant's limit
  | 'fair-share' // wanted more; got its weighted share of the node's spare capacity
  | 'idle-share' // beyond demand: capacity nobody wanted
  | 'overcommitted' // reservations exceed the node's capacity: scaled down
  | 'held'; // hysteresis kept the current value

export interface Allocation {
  readonly tenantId: string;
  readonly node: string;
  /** The tenant's connection cap on this node (all its VIPs together). */
  readonly maxConnections: number;
  /**
   * The most connections the tenant could ever be given here: the node's capacity less the other
   * tenants' reservations, never above its limit nor below its cap. Each of its frontends holds
   * this as `maxconn`, so connections past it wait in the kernel's backlog (costing nothing)
   * instead of being refused one by one, and it moves only when reservations or limits do.
   */
  readonly ceiling: number;
  /** Request-rate threshold (req/s) for the tenant on this node. */
  readonly requestsPerSecond: number;
  /**
   * This node's share of the tenant's connection capacity, 0–256 (HAProxy's weight range) with
   * 256 on the tenant's largest node: for whatever spreads the tenant's traffic over its nodes.
   */
  readonly weight: number;
  readonly reserved: ResourceVector;
  readonly limit: ResourceVector;
  /** Smoothed demand, or null without a signal. */
  readonly demand: ResourceVector | null;
  /** Refused at its cap in the latest poll, per dimension. */
  readonly saturated: Readonly<Record<ResourceDimension, boolean>>;
  /** What the model gives before hysteresis. */
  readonly target: ResourceVector;
  readonly reasons: Readonly<Record<ResourceDimension, AllocationReason>>;
}

export interface AllocationChange {
  readonly tenantId: string;
  readonly node: string;
  readonly dimension: ResourceDimension;
  /** Null for a tenant new on the node. */
  readonly from: number | null;
  readonly to: number;
  readonly reason: AllocationReason;
  readonly detail: string;
}

export interface NodeAllocationSummary {
  readonly node: string;
  readonly capacity: ResourceVector;
  readonly reserved: ResourceVector;
  readonly allocated: ResourceVector;
  readonly demand: ResourceVector;
  readonly tenants: number;
  /** Reservations exceeded capacity in at least one dimension and were scaled down. */
  readonly overcommitted: boolean;
}

export interface AllocationPlan {
  /** Sorted by tenant id, then node. */
  readonly allocations: readonly Allocation[];
  /** Caps that differ from `current` (or are new), sorted like allocations, connections first. */
  readonly changes: readonly AllocationChange[];
  /** Sorted by node name. */
  readonly nodes: readonly NodeAllocationSummary[];
  readonly warnings: readonly string[];
}
