import {
  DEFAULT_CAPACITY_MODEL,
  RESOURCE_DIMENSIONS,
  toResourceVector,
  type CapacityModel,
  type ResourceDimension,
  type ResourceVector,
} from './capacity.js';
import type { NodeKind } from './node.js';
import type { Resources } from './tenant.js';

/**
 * Allocation: each tenant's connection cap and request-rate cap on each node it is placed on.
 *
 * Model, per node and per dimension (connections, requests/s), all in whole units:
 * 1. Every tenant gets its reservation, converted with the node kind's capacity factors.
 * 2. The node's spare capacity goes, by weighted max-min fairness (water-filling on the amount
 *    above the reservation), to tenants whose wanted cap exceeds their reservation. A tenant
 *    wants its smoothed demand plus `demandHeadroom` (so it can be seen to grow), never more than
 *    its limit. Usage never exceeds the cap that is enforced, so a tenant refused at its cap in
 *    the latest poll (429s, connections refused: `saturated`) wants at least twice its current
 *    cap: it probes upward, multiplicatively, until demand is met or its limit or fair share is
 *    reached.
 * 3. With `shareIdle` (default), capacity nobody wants is handed out the same way up to each
 *    tenant's limit: a cap is a ceiling, not a charge, and a tenant that bursts between two polls
 *    then is not refused while the node idles. Reservations stay whole in every case.
 * 4. Hysteresis keeps a cap unchanged while the new value (the target) is within
 *    max(10% of the current cap, 2 units) of it, but never below the reservation, above the
 *    limit, below a target that sits at the limit, below the target of a saturated tenant (a
 *    tenant refused at its cap is never frozen there), or past the node's capacity.
 * If a node's reservations exceed its capacity (placement prevents it; be total anyway), every
 * reservation is scaled down proportionally and the node is flagged `overcommitted`.
 *
 * Guarantees (property-tested). Always: reservation ≤ cap ≤ limit and Σ caps ≤ capacity per node
 * and dimension. Hysteresis off: work-conserving (no capacity idle while a tenant under its limit
 * wants more, or with `shareIdle` while any tenant is under its limit) and weighted max-min fair
 * to within one unit of rounding. Hysteresis on: every cap is its target or its current value
 * within the band above; capacity idle beyond the hysteresis-off plan is at most the sum of the
 * held-back increases; and feeding the plan back as the current caps changes nothing (no flapping).
 */

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

/** Smoothed demand of one tenant on one node, from `estimateDemand`. */
export interface TenantDemand {
  readonly tenantId: string;
  readonly node: string;
  /** Concurrent connections wanted: sessions plus queued. */
  readonly connections: number;
  /** Requests per second wanted: served plus refused with 429. */
  readonly requestsPerSecond: number;
  /**
   * Refused at its cap in the latest poll (429s; connections refused): the tenant wants more
   * than the cap lets it show. Absent: not saturated.
   */
  readonly saturated?: Readonly<Record<ResourceDimension, boolean>>;
}

/** The caps in force on a node, as last applied. */
export interface CurrentAllocation {
  readonly tenantId: string;
  readonly node: string;
  readonly maxConnections: number;
  readonly requestsPerSecond: number;
}

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

/** How much more than its current cap a saturated tenant asks for, each poll. */
export const SATURATED_GROWTH = 2;

export const DEFAULT_DEMAND_HEADROOM = 0.25;

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

// ---------------------------------------------------------------------------------------------

interface Options {
  readonly hysteresis: HysteresisOptions | null;
  readonly headroom: number;
  readonly shareIdle: boolean;
}

/** A tenant's reservation and limit converted with one kind's factors. */
interface Bounds {
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

interface NodeResult {
  readonly name: string;
  readonly capacity: ResourceVector;
  /** Tenant indexes (id order) of the tenants on the node. */
  readonly ids: readonly number[];
  readonly bounds: readonly Bounds[];
  readonly signals: readonly (ResourceVector | null)[];
  readonly saturation: readonly Readonly<Record<ResourceDimension, boolean>>[];
  /** The caps in force, or null for tenants new on the node. */
  readonly before: readonly (ResourceVector | null)[];
  readonly connections: ColumnResult;
  readonly requestsPerSecond: ColumnResult;
}

const byString = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** A copy sorted by a string key. Rows read from the database usually arrive sorted: check first, in O(n). */
function sortedByKey<T>(items: readonly T[], key: (item: T) => string): T[] {
  for (let i = 1; i < items.length; i++) {
    if (key(items[i - 1]!) > key(items[i]!)) return [...items].sort((a, b) => byString(key(a), key(b)));
  }
  return [...items];
}

/** node name → tenant id → value: two lookups instead of building a key string per pair. */
type PairMap<T> = Map<string, Map<string, T>>;

function pairSet<T>(map: PairMap<T>, node: string, tenantId: string, value: T): void {
  let inner = map.get(node);
  if (inner === undefined) {
    inner = new Map();
    map.set(node, inner);
  }
  inner.set(tenantId, value);
}

/**
 * Computes every tenant's caps on every node it is placed on. Pure and deterministic (input order
 * does not matter). Caps are whole connections and whole requests per second.
 */
export function computeAllocations(input: AllocationInput): AllocationPlan {
  const options: Options = {
    hysteresis: input.hysteresis === undefined ? DEFAULT_HYSTERESIS : input.hysteresis,
    headroom: Math.max(0, input.demandHeadroom ?? DEFAULT_DEMAND_HEADROOM),
    shareIdle: input.shareIdle ?? true,
  };
  const model = input.factors ?? DEFAULT_CAPACITY_MODEL;
  const warnings: string[] = [];
  const tenants = uniqueById(input.tenants);
  const members = membersByNode(input.assignments, new Map(tenants.map((t, i) => [t.id, i])), warnings);
  const demand = indexDemand(input.demand ?? []);
  const saturation = indexSaturation(input.demand ?? []);
  const current = indexCurrent(input.current ?? []);
  const nodes = uniqueNodes(input.nodes);
  const bounds = boundsByKind(tenants, nodes, model);

  const results: NodeResult[] = [];
  const summaries: NodeAllocationSummary[] = [];
  for (const node of nodes) {
    const ids = members.get(node.name) ?? [];
    members.delete(node.name);
    const result = allocateNode(node, ids, tenants, bounds.get(node.kind) ?? [], model, demand.get(node.name), saturation.get(node.name), current.get(node.name), options);
    const summary = summarise(result);
    results.push(result);
    summaries.push(summary);
    if (summary.overcommitted) warnings.push(`node ${node.name}: reservations exceed capacity; scaled down proportionally`);
  }
  for (const [name, ids] of members) warnings.push(`node ${name} is assigned ${ids.length} tenant(s) but is not in the input; skipped`);

  const { allocations, changes } = toAllocations(tenants, results, options);
  // Warnings are collected in input order; sorted, the plan does not depend on it.
  return { allocations, changes, nodes: summaries, warnings: warnings.sort() };
}

function uniqueById(tenants: readonly AllocationTenant[]): AllocationTenant[] {
  const seen = new Set<string>();
  return sortedByKey(tenants, (t) => t.id).filter((t) => !seen.has(t.id) && seen.add(t.id));
}

function uniqueNodes(nodes: readonly AllocationNode[]): AllocationNode[] {
  const seen = new Set<string>();
  return sortedByKey(nodes, (n) => n.name).filter((n) => !seen.has(n.name) && seen.add(n.name));
}

/** Node name → indexes (in id order) of the tenants assigned to it. */
function membersByNode(assignments: readonly AllocationAssignment[], index: ReadonlyMap<string, number>, warnings: string[]): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (const a of assignments) {
    const i = index.get(a.tenantId);
    if (i === undefined) {
      warnings.push(`assignment for unknown tenant ${a.tenantId}; skipped`);
      continue;
    }
    for (const node of a.nodes) {
      const list = out.get(node);
      if (list === undefined) out.set(node, [i]);
      else list.push(i);
    }
  }
  for (const [node, list] of out) out.set(node, sortedUnique(list));
  return out;
}

/** Ascending without repeats; assignments usually arrive in tenant order, so check before sorting. */
function sortedUnique(list: number[]): number[] {
  let ordered = true;
  for (let k = 1; k < list.length && ordered; k++) ordered = list[k - 1]! < list[k]!;
  if (ordered) return list;
  return [...new Set(list)].sort((a, b) => a - b);
}

/**
 * Duplicate entries for one tenant and node are added up. They are rare (a caller bug or several
 * frontends), so only they take the slow path: sorted, so that float sums repeat exactly.
 */
function indexDemand(demand: readonly TenantDemand[]): PairMap<ResourceVector> {
  const out: PairMap<ResourceVector> = new Map();
  let duplicated: PairMap<TenantDemand[]> | null = null;
  for (const d of demand) {
    if (out.get(d.node)?.has(d.tenantId) === true) {
      duplicated ??= new Map();
      pairSet(duplicated, d.node, d.tenantId, []);
    } else {
      pairSet(out, d.node, d.tenantId, { connections: nonNegative(d.connections), requestsPerSecond: nonNegative(d.requestsPerSecond) });
    }
  }
  if (duplicated === null) return out;
  for (const d of demand) duplicated.get(d.node)?.get(d.tenantId)?.push(d);
  for (const [node, byTenant] of duplicated) {
    for (const [tenantId, list] of byTenant) {
      list.sort((a, b) => nonNegative(a.connections) - nonNegative(b.connections) || nonNegative(a.requestsPerSecond) - nonNegative(b.requestsPerSecond));
      let connections = 0;
      let requestsPerSecond = 0;
      for (const d of list) {
        connections += nonNegative(d.connections);
        requestsPerSecond += nonNegative(d.requestsPerSecond);
      }
      pairSet(out, node, tenantId, { connections, requestsPerSecond });
    }
  }
  return out;
}

const UNSATURATED: Readonly<Record<ResourceDimension, boolean>> = Object.freeze({ connections: false, requestsPerSecond: false });

/** Saturation per pair; duplicate entries (several frontends) are saturated when any one is. */
function indexSaturation(demand: readonly TenantDemand[]): PairMap<Readonly<Record<ResourceDimension, boolean>>> {
  const out: PairMap<Readonly<Record<ResourceDimension, boolean>>> = new Map();
  for (const d of demand) {
    if (d.saturated === undefined || (!d.saturated.connections && !d.saturated.requestsPerSecond)) continue;
    const prev = out.get(d.node)?.get(d.tenantId) ?? UNSATURATED;
    pairSet(out, d.node, d.tenantId, {
      connections: prev.connections || d.saturated.connections,
      requestsPerSecond: prev.requestsPerSecond || d.saturated.requestsPerSecond,
    });
  }
  return out;
}

/** Duplicate entries are a caller bug; the lowest caps win, whatever the input order. */
function indexCurrent(current: readonly CurrentAllocation[]): PairMap<ResourceVector> {
  const out: PairMap<ResourceVector> = new Map();
  for (const c of current) {
    const prev = out.get(c.node)?.get(c.tenantId);
    const next = { connections: nonNegative(c.maxConnections), requestsPerSecond: nonNegative(c.requestsPerSecond) };
    pairSet(out, c.node, c.tenantId, prev === undefined ? next : {
      connections: Math.min(prev.connections, next.connections),
      requestsPerSecond: Math.min(prev.requestsPerSecond, next.requestsPerSecond),
    });
  }
  return out;
}

function nonNegative(x: number): number {
  return Number.isFinite(x) && x > 0 ? x : 0;
}

/** Each tenant's bounds converted once per node kind present, not once per node. */
function boundsByKind(tenants: readonly AllocationTenant[], nodes: readonly AllocationNode[], model: CapacityModel): Map<NodeKind, Bounds[]> {
  const out = new Map<NodeKind, Bounds[]>();
  for (const node of nodes) {
    if (out.has(node.kind)) continue;
    const factors = model[node.kind];
    out.set(node.kind, tenants.map((t) => {
      const reserved = toResourceVector(t.reservation, factors);
      const limit = toResourceVector(t.limit, factors);
      // A limit below the reservation is invalid input; the reservation is the stronger promise.
      return { reserved, limit: { connections: Math.max(limit.connections, reserved.connections), requestsPerSecond: Math.max(limit.requestsPerSecond, reserved.requestsPerSecond) } };
    }));
  }
  return out;
}

// ---- one node ----

function allocateNode(
  node: AllocationNode,
  ids: readonly number[],
  tenants: readonly AllocationTenant[],
  kindBounds: readonly Bounds[],
  model: CapacityModel,
  demand: ReadonlyMap<string, ResourceVector> | undefined,
  saturated: ReadonlyMap<string, Readonly<Record<ResourceDimension, boolean>>> | undefined,
  current: ReadonlyMap<string, ResourceVector> | undefined,
  options: Options,
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
    name: node.name, capacity, ids, bounds, signals, saturation, before,
    connections: allocateDimension(column('connections'), capacity.connections, options, options.hysteresis?.absolute.connections),
    requestsPerSecond: allocateDimension(column('requestsPerSecond'), capacity.requestsPerSecond, options, options.hysteresis?.absolute.requestsPerSecond),
  };
}

function summarise(r: NodeResult): NodeAllocationSummary {
  const sum = (values: readonly number[]): number => values.reduce((a, b) => a + b, 0);
  let demandConnections = 0;
  let demandRate = 0;
  for (const s of r.signals) {
    demandConnections += s?.connections ?? 0;
    demandRate += s?.requestsPerSecond ?? 0;
  }
  return {
    node: r.name, capacity: r.capacity, tenants: r.ids.length,
    overcommitted: r.connections.overcommitted || r.requestsPerSecond.overcommitted,
    reserved: { connections: sum(r.bounds.map((b) => b.reserved.connections)), requestsPerSecond: sum(r.bounds.map((b) => b.reserved.requestsPerSecond)) },
    allocated: { connections: sum(r.connections.caps), requestsPerSecond: sum(r.requestsPerSecond.caps) },
    demand: { connections: demandConnections, requestsPerSecond: demandRate },
  };
}

/** Divides one node's capacity in one dimension: reservations, fair share of the spare, hysteresis. */
function allocateDimension(col: Column, capacity: number, options: Options, absolute: number | undefined): ColumnResult {
  const cap = Math.max(0, Math.floor(capacity));
  const reserved = col.reserved.reduce((a, b) => a + b, 0);
  if (reserved > cap) {
    const scaled = scaleDown(col.reserved, cap);
    return { caps: scaled, targets: scaled, reasons: scaled.map(() => 'overcommitted'), overcommitted: true };
  }
  const wants = col.reserved.map((r, i) => wantOf(r, col.limit[i]!, col.demand[i]!, options.headroom, col.saturated[i]! ? (col.current[i] ?? r) : null));
  const targets = fairTargets(col, wants, cap - reserved, options.shareIdle);
  const caps = options.hysteresis === null ? targets : applyHysteresis(col, targets, cap, options.hysteresis.relative, absolute ?? 0);
  const reasons = caps.map((c, i) => (c !== targets[i] ? 'held' : reasonFor(col.reserved[i]!, col.limit[i]!, wants[i]!, c)));
  return { caps, targets, reasons, overcommitted: false };
}

/**
 * The cap a tenant asks for: demand plus headroom, rounded up, between reservation and limit.
 * `saturatedAt`: the cap at which the tenant was refused, or null; such a tenant asks for at
 * least SATURATED_GROWTH times it (what it was refused is demand its cap hid).
 */
function wantOf(reserved: number, limit: number, demand: number | null, headroom: number, saturatedAt: number | null): number {
  const observed = demand === null ? reserved : Math.ceil(demand * (1 + headroom) - 1e-9);
  const wanted = saturatedAt === null ? observed : Math.max(observed, SATURATED_GROWTH * Math.max(1, saturatedAt));
  return Math.min(limit, Math.max(reserved, wanted));
}

/** Reservations, then the spare by weighted max-min fairness up to wants, then (optionally) the idle rest up to limits. */
function fairTargets(col: Column, wants: readonly number[], spare: number, shareIdle: boolean): number[] {
  const toWant = waterFill(wants.map((w, i) => w - col.reserved[i]!), col.weight, spare);
  const afterWant = toWant.map((x, i) => col.reserved[i]! + x);
  if (!shareIdle) return afterWant;
  const left = spare - toWant.reduce((a, b) => a + b, 0);
  const idle = waterFill(afterWant.map((v, i) => col.limit[i]! - v), col.weight, left);
  return afterWant.map((v, i) => v + idle[i]!);
}

function reasonFor(reserved: number, limit: number, want: number, target: number): AllocationReason {
  if (target === limit && target > reserved) return 'limit';
  if (target < want) return 'fair-share';
  if (target > want) return 'idle-share';
  return want > reserved ? 'demand' : 'reservation';
}

/**
 * Weighted max-min fair division of `amount` whole units: item i gets min(wants[i], w_i·λ) with λ
 * as large as the amount allows, rounded to whole units by largest remainder (ties to the lower
 * index). Gives out min(amount, Σ wants) exactly. Weights must be positive.
 */
export function waterFill(wants: readonly number[], weights: readonly number[], amount: number): number[] {
  const n = wants.length;
  const out = new Array<number>(n).fill(0);
  let remaining = Math.max(0, Math.floor(amount));
  if (n === 0 || remaining === 0) return out;
  const order = [...wants.keys()].filter((i) => wants[i]! > 0).sort((a, b) => wants[a]! / weights[a]! - wants[b]! / weights[b]! || a - b);
  let weightLeft = order.reduce((s, i) => s + weights[i]!, 0);
  let k = 0;
  // Satisfy, smallest level first, every item whose whole want fits under the current water level.
  for (; k < order.length; k++) {
    const i = order[k]!;
    if (wants[i]! * weightLeft > remaining * weights[i]!) break;
    out[i] = wants[i]!;
    remaining -= wants[i]!;
    weightLeft -= weights[i]!;
  }
  if (k === order.length || remaining === 0) return out;
  distributeLevel(order.slice(k), wants, weights, remaining, weightLeft, out);
  return out;
}

/** Everyone left is capped by the level λ = remaining / weightLeft; round down, then hand out the rest. */
function distributeLevel(items: number[], wants: readonly number[], weights: readonly number[], remaining: number, weightLeft: number, out: number[]): void {
  const fraction = new Array<number>(items.length);
  let given = 0;
  for (let k = 0; k < items.length; k++) {
    const i = items[k]!;
    const share = (weights[i]! * remaining) / weightLeft;
    out[i] = Math.min(wants[i]!, Math.floor(share));
    fraction[k] = share - out[i]!;
    given += out[i]!;
  }
  let left = remaining - given;
  if (left === 0) return;
  const byRemainder = [...items.keys()].sort((a, b) => fraction[b]! - fraction[a]! || items[a]! - items[b]!).map((k) => items[k]!);
  // One pass suffices in exact arithmetic; the loop only guards against float rounding.
  while (left > 0) {
    let progressed = false;
    for (const i of byRemainder) {
      if (left === 0) break;
      if (out[i]! >= wants[i]!) continue;
      out[i]! += 1;
      left -= 1;
      progressed = true;
    }
    if (!progressed) break;
  }
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

// ---- hysteresis ----

/**
 * Keeps a tenant's current cap when the target is within max(relative·current, absolute) of it.
 * Never holds: a cap outside [reservation, limit], a cap below a target that sits at the limit
 * (so a tenant does reach its limit), or anything that would take the node past its capacity
 * (held caps above their target are released, largest excess first, until the node fits).
 */
function applyHysteresis(col: Column, targets: readonly number[], capacity: number, relative: number, absolute: number): number[] {
  const caps = targets.map((t, i) => {
    const cur = col.current[i]!;
    return cur !== null && !(col.saturated[i]! && t > cur) && holds(cur, col.reserved[i]!, col.limit[i]!, t, relative, absolute) ? cur : t;
  });
  let total = caps.reduce((a, b) => a + b, 0);
  if (total <= capacity) return caps;
  const excess = [...caps.keys()].filter((i) => caps[i]! > targets[i]!).sort((a, b) => caps[b]! - targets[b]! - (caps[a]! - targets[a]!) || a - b);
  for (const i of excess) {
    if (total <= capacity) break;
    total -= caps[i]! - targets[i]!;
    caps[i] = targets[i]!;
  }
  return caps;
}

function holds(cur: number, reserved: number, limit: number, target: number, relative: number, absolute: number): boolean {
  if (cur === target || cur < reserved || cur > limit) return false;
  if (target === limit && cur < target) return false;
  return Math.abs(target - cur) <= Math.max(relative * cur, absolute);
}

// ---- weights across nodes, and changes ----

/**
 * Builds the output in tenant id order, each tenant's nodes in name order (the order nodes were
 * visited), with each node's weight (its connection cap scaled to 0–256 against the tenant's
 * largest), and the caps that differ from those in force.
 */
function toAllocations(tenants: readonly AllocationTenant[], results: readonly NodeResult[], options: Options): { allocations: Allocation[]; changes: AllocationChange[] } {
  const { start, node, position } = pairsByTenant(tenants.length, results);
  const reserved = results.map((r) => r.bounds.reduce((sum, b) => sum + b.reserved.connections, 0));
  const allocations: Allocation[] = [];
  const changes: AllocationChange[] = [];
  for (let t = 0; t < tenants.length; t++) {
    let top = 0;
    for (let p = start[t]!; p < start[t + 1]!; p++) top = Math.max(top, results[node[p]!]!.connections.caps[position[p]!]!);
    for (let p = start[t]!; p < start[t + 1]!; p++) {
      const r = results[node[p]!]!;
      const a = allocationAt(tenants[t]!.id, r, position[p]!, top, reserved[node[p]!]!);
      allocations.push(a);
      addChanges(changes, a, r.before[position[p]!]!, options);
    }
  }
  return { allocations, changes };
}

/** Which (node result, position) pairs each tenant has, as flat arrays indexed from `start[t]` (no array per tenant). */
function pairsByTenant(tenantCount: number, results: readonly NodeResult[]): { start: Int32Array; node: Int32Array; position: Int32Array } {
  const start = new Int32Array(tenantCount + 1);
  for (const r of results) for (const t of r.ids) start[t + 1]! += 1;
  for (let t = 0; t < tenantCount; t++) start[t + 1]! += start[t]!;
  const fill = start.slice(0, tenantCount);
  const node = new Int32Array(start[tenantCount]!);
  const position = new Int32Array(start[tenantCount]!);
  results.forEach((r, n) => r.ids.forEach((t, k) => {
    const at = fill[t]!++;
    node[at] = n;
    position[at] = k;
  }));
  return { start, node, position };
}

function allocationAt(tenantId: string, r: NodeResult, k: number, top: number, reservedConnections: number): Allocation {
  const connections = r.connections.caps[k]!;
  const own = r.bounds[k]!;
  const ceiling = Math.max(connections, Math.min(own.limit.connections, Math.floor(r.capacity.connections) - (reservedConnections - own.reserved.connections)));
  return {
    tenantId, node: r.name, maxConnections: connections, ceiling, requestsPerSecond: r.requestsPerSecond.caps[k]!,
    weight: top === 0 ? 0 : Math.max(connections > 0 ? 1 : 0, Math.round((256 * connections) / top)),
    reserved: r.bounds[k]!.reserved, limit: r.bounds[k]!.limit, demand: r.signals[k]!, saturated: r.saturation[k]!,
    target: { connections: r.connections.targets[k]!, requestsPerSecond: r.requestsPerSecond.targets[k]! },
    reasons: { connections: r.connections.reasons[k]!, requestsPerSecond: r.requestsPerSecond.reasons[k]! },
  };
}

function addChanges(out: AllocationChange[], a: Allocation, before: ResourceVector | null, options: Options): void {
  for (const dim of RESOURCE_DIMENSIONS) {
    const to = dim === 'connections' ? a.maxConnections : a.requestsPerSecond;
    const from = before === null ? null : before[dim];
    if (from === to) continue;
    out.push({ tenantId: a.tenantId, node: a.node, dimension: dim, from, to, reason: a.reasons[dim], detail: explain(a, dim, from, to, options) });
  }
}

const UNIT: Record<ResourceDimension, string> = { connections: 'connections', requestsPerSecond: 'req/s' };

function explain(a: Allocation, dim: ResourceDimension, from: number | null, to: number, options: Options): string {
  const u = UNIT[dim];
  const head = `${dim} ${from === null ? 'new' : from} → ${to}`;
  const demand = (a.demand === null ? 'no demand signal' : `demand ${round(a.demand[dim])} ${u}`)
    + (a.saturated[dim] ? `, refused at its cap (probing upward, ×${SATURATED_GROWTH})` : '');
  const headroom = `${Math.round(options.headroom * 100)}% headroom`;
  switch (a.reasons[dim]) {
    case 'reservation': return `${head}: ${demand}; the reservation of ${a.reserved[dim]} ${u} stands`;
    case 'demand': return `${head}: ${demand} plus ${headroom}, within the limit of ${a.limit[dim]} ${u}`;
    case 'limit': return `${head}: ${demand}; capped at the limit of ${a.limit[dim]} ${u}`;
    case 'fair-share': return `${head}: ${demand} plus ${headroom}; the node's spare capacity is shared by weight`;
    case 'idle-share': return `${head}: ${demand}; idle capacity shared by weight, up to the limit of ${a.limit[dim]} ${u}`;
    case 'overcommitted': return `${head}: reservations on node ${a.node} exceed its capacity; scaled down from ${a.reserved[dim]} ${u}`;
    case 'held': return `${head}: kept by hysteresis; the model's target is ${a.target[dim]} ${u}`;
  }
}

function round(x: number): number {
  return Math.round(x * 10) / 10;
}

// ---- demand ----

/** One poll of one tenant frontend/backend on one node. */
export interface StatsSample {
  readonly tenantId: string;
  readonly node: string;
  /** Current sessions on the tenant's frontend (HAProxy `scur`). */
  readonly sessions: number;
  /** Requests waiting for a server slot in the tenant's backend (HAProxy `qcur`). */
  readonly queued: number;
  /** Requests per second served over the interval (HAProxy `req_rate`, or Δ`req_tot` / interval). */
  readonly requestRate: number;
  /** Requests refused with 429 by the tenant's rate cap during the interval (a count). */
  readonly rejected: number;
  /**
   * Requests the sample's request rate already counts among `requestRate` (HAProxy's req_tot
   * counts denied requests too): `rejected` then only marks saturation, it is not added again.
   */
  readonly rejectedInRate?: boolean;
  /** New connections refused at the tenant's connection cap during the interval (a count). */
  readonly refusedConnections?: number;
  /** Length of the interval the counts cover, in seconds. */
  readonly intervalSeconds: number;
}

export interface DemandSmoothing {
  /** Weight of a new observation above the previous estimate: rise quickly when load grows. */
  readonly alphaUp: number;
  /** Weight of a new observation below the previous estimate: fall slowly so a pause is not a departure. */
  readonly alphaDown: number;
  /** Estimates below this (in connections or req/s) become 0, so decay ends. */
  readonly floor: number;
}

const pairKey = (tenantId: string, node: string): string => `${tenantId}\u0000${node}`;

/** Demand rises at once (a busy tenant is lent capacity on the next poll) and halves its excess per idle poll. */
export const DEFAULT_DEMAND_SMOOTHING: DemandSmoothing = Object.freeze({ alphaUp: 1, alphaDown: 0.5, floor: 0.5 });

/**
 * Smooths observed demand per tenant and node with an exponential moving average:
 * `next = previous + α·(observed − previous)`, α = alphaUp when rising, alphaDown when falling.
 * Observed connections = sessions + queued; observed req/s = request rate + 429s / interval
 * (refused requests are demand the cap turned away). Samples of one tenant on one node (one per
 * frontend or backend) are added up. A tenant refused at a cap in this round (429s, refused
 * connections) is `saturated` in that dimension: not smoothed, it says what the latest poll saw.
 * A pair with a previous estimate but no sample this round (a poll that failed) keeps its
 * estimate and saturation: no data is not zero demand. Drop pairs of tenants no longer placed
 * before calling. Output sorted by tenant id, then node.
 */
export function estimateDemand(
  samples: readonly StatsSample[],
  previous: readonly TenantDemand[],
  smoothing: DemandSmoothing = DEFAULT_DEMAND_SMOOTHING,
): TenantDemand[] {
  const observed = observe(samples);
  const prev = new Map<string, TenantDemand>();
  for (const d of [...previous].sort(compareDemand)) if (!prev.has(pairKey(d.tenantId, d.node))) prev.set(pairKey(d.tenantId, d.node), d);
  const out = new Map<string, TenantDemand>(prev);
  for (const [key, o] of observed) {
    const p = prev.get(key);
    out.set(key, {
      tenantId: o.tenantId,
      node: o.node,
      connections: smooth(p?.connections, o.connections, smoothing),
      requestsPerSecond: smooth(p?.requestsPerSecond, o.requestsPerSecond, smoothing),
      ...(o.saturated !== undefined && (o.saturated.connections || o.saturated.requestsPerSecond) && { saturated: o.saturated }),
    });
  }
  return [...out.values()].sort(compareDemand);
}

function observe(samples: readonly StatsSample[]): Map<string, TenantDemand> {
  const sorted = [...samples].sort(
    (a, b) => byString(a.tenantId, b.tenantId) || byString(a.node, b.node) || a.sessions - b.sessions || a.queued - b.queued
      || a.requestRate - b.requestRate || a.rejected - b.rejected || a.intervalSeconds - b.intervalSeconds,
  );
  const out = new Map<string, TenantDemand>();
  for (const s of sorted) {
    const key = pairKey(s.tenantId, s.node);
    const prev = out.get(key);
    const interval = Number.isFinite(s.intervalSeconds) && s.intervalSeconds > 0 ? s.intervalSeconds : 1;
    const rejected = nonNegative(s.rejected);
    const refused = nonNegative(s.refusedConnections ?? 0);
    out.set(key, {
      tenantId: s.tenantId,
      node: s.node,
      connections: (prev?.connections ?? 0) + nonNegative(s.sessions) + nonNegative(s.queued),
      requestsPerSecond: (prev?.requestsPerSecond ?? 0) + nonNegative(s.requestRate) + (s.rejectedInRate === true ? 0 : rejected / interval),
      saturated: {
        connections: (prev?.saturated?.connections ?? false) || refused > 0,
        requestsPerSecond: (prev?.saturated?.requestsPerSecond ?? false) || rejected > 0,
      },
    });
  }
  return out;
}

function smooth(previous: number | undefined, observed: number, s: DemandSmoothing): number {
  const prev = previous === undefined || !Number.isFinite(previous) ? observed : Math.max(0, previous);
  const alpha = observed > prev ? s.alphaUp : s.alphaDown;
  const next = prev + alpha * (observed - prev);
  // Three decimals: enough for caps in whole units, and stored estimates stay short and exact-repeatable.
  return next < s.floor ? 0 : Math.round(next * 1000) / 1000;
}

function compareDemand(a: TenantDemand, b: TenantDemand): number {
  return byString(a.tenantId, b.tenantId) || byString(a.node, b.node) || a.connections - b.connections || a.requestsPerSecond - b.requestsPerSecond;
}
