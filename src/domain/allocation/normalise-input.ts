import { nonNegative } from '../../util/non-negative.js';
import { sortedByKey } from '../../util/sort.js';
import { toResourceVector, type CapacityModel, type ResourceDimension, type ResourceVector } from '../capacity.js';
import type { TenantDemand } from '../demand.js';
import type { NodeKind } from '../node.js';
import { UNSATURATED, type TenantBounds } from './allocate-node.js';
import type {
  AllocationAssignment,
  AllocationInput,
  AllocationNode,
  AllocationTenant,
  CurrentAllocation,
} from './allocation-types.js';

/** node name → tenant id → value: two lookups instead of building a key string per pair. */
export type PairMap<T> = Map<string, Map<string, T>>;

/**
 * The input as `computeAllocations` walks it: tenants and nodes sorted and without repeats,
 * tenants referred to by their index in that order, and the per-pair signals in pair maps.
 */
export interface NormalisedInput {
  readonly tenants: readonly AllocationTenant[];
  /** Sorted by name. */
  readonly nodes: readonly AllocationNode[];
  /** Node name → indexes (in id order) of the tenants assigned to it, including nodes not in `nodes`. */
  readonly members: Map<string, number[]>;
  readonly demand: PairMap<ResourceVector>;
  readonly saturation: PairMap<Readonly<Record<ResourceDimension, boolean>>>;
  readonly current: PairMap<ResourceVector>;
  /** Each tenant's bounds (by index), per node kind present. */
  readonly bounds: Map<NodeKind, TenantBounds[]>;
}

/** Input that cannot be used (assignments to unknown tenants) is skipped with a line in `warnings`. */
export function normaliseInput(input: AllocationInput, model: CapacityModel, warnings: string[]): NormalisedInput {
  const tenants = uniqueById(input.tenants);
  const members = membersByNode(input.assignments, new Map(tenants.map((t, i) => [t.id, i])), warnings);
  const demand = indexDemand(input.demand ?? []);
  const saturation = indexSaturation(input.demand ?? []);
  const current = indexCurrent(input.current ?? []);
  const nodes = uniqueNodes(input.nodes);
  const bounds = boundsByKind(tenants, nodes, model);
  return { tenants, nodes, members, demand, saturation, current, bounds };
}

function pairSet<T>(map: PairMap<T>, node: string, tenantId: string, value: T): void {
  let inner = map.get(node);
  if (inner === undefined) {
    inner = new Map();
    map.set(node, inner);
  }
  inner.set(tenantId, value);
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
function membersByNode(
  assignments: readonly AllocationAssignment[],
  index: ReadonlyMap<string, number>,
  warnings: string[],
): Map<string, number[]> {
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
      pairSet(out, d.node, d.tenantId, {
        connections: nonNegative(d.connections),
        requestsPerSecond: nonNegative(d.requestsPerSecond),
      });
    }
  }
  if (duplicated === null) return out;
  for (const d of demand) duplicated.get(d.node)?.get(d.tenantId)?.push(d);
  for (const [node, byTenant] of duplicated) {
    for (const [tenantId, list] of byTenant) {
      list.sort(
        (a, b) =>
          nonNegative(a.connections) - nonNegative(b.connections) ||
          nonNegative(a.requestsPerSecond) - nonNegative(b.requestsPerSecond),
      );
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
    pairSet(
      out,
      c.node,
      c.tenantId,
      prev === undefined
        ? next
        : {
            connections: Math.min(prev.connections, next.connections),
            requestsPerSecond: Math.min(prev.requestsPerSecond, next.requestsPerSecond),
          },
    );
  }
  return out;
}

/** Each tenant's bounds converted once per node kind present, not once per node. */
function boundsByKind(
  tenants: readonly AllocationTenant[],
  nodes: readonly AllocationNode[],
  model: CapacityModel,
): Map<NodeKind, TenantBounds[]> {
  const out = new Map<NodeKind, TenantBounds[]>();
  for (const node of nodes) {
    if (out.has(node.kind)) continue;
    const factors = model[node.kind];
    out.set(
      node.kind,
      tenants.map((t) => {
        const reserved = toResourceVector(t.reservation, factors);
        const limit = toResourceVector(t.limit, factors);
        // A limit below the reservation is invalid input; the reservation is the stronger promise.
        return {
          reserved,
          limit: {
            connections: Math.max(limit.connections, reserved.connections),
            requestsPerSecond: Math.max(limit.requestsPerSecond, reserved.requestsPerSecond),
          },
        };
      }),
    );
  }
  return out;
}
