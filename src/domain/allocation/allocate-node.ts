import { toResourceVector, type CapacityModel, type ResourceDimension, type ResourceVector } from '../capacity.js';
import type { AllocationNode, AllocationReason, AllocationTenant, NodeAllocationSummary } from './allocation-types.js';
import { applyHysteresis, type HysteresisOptions } from './hysteresis.js';
import { waterFill } from './water-fill.js';

/**
 * One node's share-out: reservations first, the spare by weighted max-min fairness up to what each
 * tenant wants, then (with `shareIdle`) the idle rest up to limits, then hysteresis; each dimension
 * (connections, requests/s) on its own.
 */

/** How much more than its current cap a saturated tenant asks for, each poll. */
export const SATURATED_GROWTH = 2;

/** The input's options with their defaults applied. */
export interface AllocationOptions {
  readonly hysteresis: HysteresisOptions | null;
  readonly headroom: number;
  readonly shareIdle: boolean;
}

/** A tenant's reservation and limit converted with one kind's factors. */
export interface TenantBounds {
  readonly reserved: ResourceVector;
  readonly limit: ResourceVector;
}

/**
 * One node's tenants in one dimension, as parallel arrays indexed by the tenant's position on the
 * node (id order). Arrays rather than an object per tenant: a cycle handles 20,000 pairs.
 */
interface Column {
  readonly weight: readonly number[];
  readonly reserved: readonly number[];
  readonly limit: readonly number[];
  /** Smoothed demand, or null without a signal. */
  readonly demand: readonly (number | null)[];
  /** Refused at its cap in the latest poll. */
  readonly saturated: readonly boolean[];
  /** The cap in force, or null for a tenant new on the node. */
  readonly current: readonly (number | null)[];
}

interface ColumnResult {
  readonly caps: readonly number[];
  readonly targets: readonly number[];
  readonly reasons: readonly AllocationReason[];
  readonly overcommitted: boolean;
}

export interface NodeResult {
  readonly name: string;
  readonly capacity: ResourceVector;
  /** Tenant indexes (id order) of the tenants on the node. */
  readonly ids: readonly number[];
  readonly bounds: readonly TenantBounds[];
  readonly signals: readonly (ResourceVector | null)[];
  readonly saturation: readonly Readonly<Record<ResourceDimension, boolean>>[];
  /** The caps in force, or null for tenants new on the node. */
  readonly before: readonly (ResourceVector | null)[];
  readonly connections: ColumnResult;
  readonly requestsPerSecond: ColumnResult;
}

export const UNSATURATED: Readonly<Record<ResourceDimension, boolean>> = Object.freeze({
  connections: false,
  requestsPerSecond: false,
});

/** The caps on one node of the tenants `ids` (indexes into `tenants`, in id order), in both dimensions. */
export function allocateNode(
  node: AllocationNode,
  ids: readonly number[],
  tenants: readonly AllocationTenant[],
  kindBounds: readonly TenantBounds[],
  model: CapacityModel,
  demand: ReadonlyMap<string, ResourceVector> | undefined,
  saturated: ReadonlyMap<string, Readonly<Record<ResourceDimension, boolean>>> | undefined,
  current: ReadonlyMap<string, ResourceVector> | undefined,
  options: AllocationOptions,
): NodeResult {
  const factors = model[node.kind];
  const capacity = toResourceVector(node.capacity, factors);
  const bounds = ids.map((i) => kindBounds[i]!);
  const signals = ids.map((i) => demand?.get(tenants[i]!.id) ?? null);
  const saturation = ids.map((i) => saturated?.get(tenants[i]!.id) ?? UNSATURATED);
  const before = ids.map((i) => current?.get(tenants[i]!.id) ?? null);
  const weight = ids.map((i) => {
    const w = tenants[i]!.weight;
    return Number.isFinite(w) && w > 0 ? w : 1;
  });
  const column = (dim: ResourceDimension): Column => ({
    weight,
    reserved: bounds.map((b) => b.reserved[dim]),
    limit: bounds.map((b) => b.limit[dim]),
    demand: signals.map((s) => (s === null ? null : s[dim])),
    saturated: saturation.map((s) => s[dim]),
    current: before.map((c) => (c === null ? null : c[dim])),
  });
  return {
    name: node.name,
    capacity,
    ids,
    bounds,
    signals,
    saturation,
    before,
    connections: allocateDimension(
      column('connections'),
      capacity.connections,
      options,
      options.hysteresis?.absolute.connections,
    ),
    requestsPerSecond: allocateDimension(
      column('requestsPerSecond'),
      capacity.requestsPerSecond,
      options,
      options.hysteresis?.absolute.requestsPerSecond,
    ),
  };
}

/** What a node gives and holds, for the plan's per-node summary. */
export function summariseNode(r: NodeResult): NodeAllocationSummary {
  const sum = (values: readonly number[]): number => values.reduce((a, b) => a + b, 0);
  let demandConnections = 0;
  let demandRate = 0;
  for (const s of r.signals) {
    demandConnections += s?.connections ?? 0;
    demandRate += s?.requestsPerSecond ?? 0;
  }
  return {
    node: r.name,
    capacity: r.capacity,
    tenants: r.ids.length,
    overcommitted: r.connections.overcommitted || r.requestsPerSecond.overcommitted,
    reserved: {
      connections: sum(r.bounds.map((b) => b.reserved.connections)),
      requestsPerSecond: sum(r.bounds.map((b) => b.reserved.requestsPerSecond)),
    },
    allocated: { connections: sum(r.connections.caps), requestsPerSecond: sum(r.requestsPerSecond.caps) },
    demand: { connections: demandConnections, requestsPerSecond: demandRate },
  };
}

/** Divides one node's capacity in one dimension: reservations, fair share of the spare, hysteresis. */
function allocateDimension(
  col: Column,
  capacity: number,
  options: AllocationOptions,
  absolute: number | undefined,
): ColumnResult {
  const cap = Math.max(0, Math.floor(capacity));
  const reserved = col.reserved.reduce((a, b) => a + b, 0);
  if (reserved > cap) {
    const scaled = scaleDown(col.reserved, cap);
    return { caps: scaled, targets: scaled, reasons: scaled.map(() => 'overcommitted'), overcommitted: true };
  }
  const wants = col.reserved.map((r, i) =>
    wantOf(r, col.limit[i]!, col.demand[i]!, options.headroom, col.saturated[i]! ? (col.current[i] ?? r) : null),
  );
  const targets = fairTargets(col, wants, cap - reserved, options.shareIdle);
  const caps =
    options.hysteresis === null
      ? targets
      : applyHysteresis(col, targets, cap, options.hysteresis.relative, absolute ?? 0);
  const reasons = caps.map((c, i) =>
    c !== targets[i] ? 'held' : reasonFor(col.reserved[i]!, col.limit[i]!, wants[i]!, c),
  );
  return { caps, targets, reasons, overcommitted: false };
}

/**
 * The cap a tenant asks for: demand plus headroom, rounded up, between reservation and limit.
 * `saturatedAt`: the cap at which the tenant was refused, or null; such a tenant asks for at
 * least SATURATED_GROWTH times it (what it was refused is demand its cap hid).
 */
function wantOf(
  reserved: number,
  limit: number,
  demand: number | null,
  headroom: number,
  saturatedAt: number | null,
): number {
  const observed = demand === null ? reserved : Math.ceil(demand * (1 + headroom) - 1e-9);
  const wanted = saturatedAt === null ? observed : Math.max(observed, SATURATED_GROWTH * Math.max(1, saturatedAt));
  return Math.min(limit, Math.max(reserved, wanted));
}

/** Reservations, then the spare by weighted max-min fairness up to wants, then (optionally) the idle rest up to limits. */
function fairTargets(col: Column, wants: readonly number[], spare: number, shareIdle: boolean): number[] {
  const toWant = waterFill(
    wants.map((w, i) => w - col.reserved[i]!),
    col.weight,
    spare,
  );
  const afterWant = toWant.map((x, i) => col.reserved[i]! + x);
  if (!shareIdle) return afterWant;
  const left = spare - toWant.reduce((a, b) => a + b, 0);
  const idle = waterFill(
    afterWant.map((v, i) => col.limit[i]! - v),
    col.weight,
    left,
  );
  return afterWant.map((v, i) => v + idle[i]!);
}

function reasonFor(reserved: number, limit: number, want: number, target: number): AllocationReason {
  if (target === limit && target > reserved) return 'limit';
  if (target < want) return 'fair-share';
  if (target > want) return 'idle-share';
  return want > reserved ? 'demand' : 'reservation';
}

/** Proportional integer scale-down of `values` to sum to `total` (largest remainder, ties to the lower index). */
function scaleDown(values: readonly number[], total: number): number[] {
  const sum = values.reduce((a, b) => a + b, 0);
  if (sum <= total) return [...values];
  const exact = values.map((v) => (v * total) / sum);
  const out = exact.map((x) => Math.floor(x));
  let left = total - out.reduce((a, b) => a + b, 0);
  const order = [...values.keys()].sort((a, b) => exact[b]! - out[b]! - (exact[a]! - out[a]!) || a - b);
  for (const i of order) {
    if (left <= 0) break;
    if (out[i]! < values[i]!) {
      out[i]! += 1;
      left -= 1;
    }
  }
  return out;
}
