import { DEFAULT_CAPACITY_MODEL } from '../capacity.js';
import { allocateNode, summariseNode, type AllocationOptions, type NodeResult } from './allocate-node.js';
import { addChanges } from './allocation-changes.js';
import type {
  Allocation,
  AllocationChange,
  AllocationInput,
  AllocationPlan,
  AllocationTenant,
  NodeAllocationSummary,
} from './allocation-types.js';
import { DEFAULT_HYSTERESIS } from './hysteresis.js';
import { normaliseInput } from './normalise-input.js';

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

/** Fraction added to smoothed demand to form the wanted cap, so that a tenant can be seen to grow. */
export const DEFAULT_DEMAND_HEADROOM = 0.25;

/**
 * Computes every tenant's caps on every node it is placed on. Pure and deterministic (input order
 * does not matter). Caps are whole connections and whole requests per second.
 */
export function computeAllocations(input: AllocationInput): AllocationPlan {
  const options: AllocationOptions = {
    hysteresis: input.hysteresis === undefined ? DEFAULT_HYSTERESIS : input.hysteresis,
    headroom: Math.max(0, input.demandHeadroom ?? DEFAULT_DEMAND_HEADROOM),
    shareIdle: input.shareIdle ?? true,
  };
  const model = input.factors ?? DEFAULT_CAPACITY_MODEL;
  const warnings: string[] = [];
  const { tenants, nodes, members, demand, saturation, current, bounds } = normaliseInput(input, model, warnings);

  const results: NodeResult[] = [];
  const summaries: NodeAllocationSummary[] = [];
  for (const node of nodes) {
    const ids = members.get(node.name) ?? [];
    members.delete(node.name);
    const result = allocateNode(
      node,
      ids,
      tenants,
      bounds.get(node.kind) ?? [],
      model,
      demand.get(node.name),
      saturation.get(node.name),
      current.get(node.name),
      options,
    );
    const summary = summariseNode(result);
    results.push(result);
    summaries.push(summary);
    if (summary.overcommitted)
      warnings.push(`node ${node.name}: reservations exceed capacity; scaled down proportionally`);
  }
  for (const [name, ids] of members)
    warnings.push(`node ${name} is assigned ${ids.length} tenant(s) but is not in the input; skipped`);

  const { allocations, changes } = toAllocations(tenants, results, options.headroom);
  // Warnings are collected in input order; sorted, the plan does not depend on it.
  return { allocations, changes, nodes: summaries, warnings: warnings.sort() };
}

// ---- the plan's rows: weights across nodes, ceilings, changes ----

/**
 * Builds the output in tenant id order, each tenant's nodes in name order (the order nodes were
 * visited), with each node's weight (its connection cap scaled to 0–256 against the tenant's
 * largest), and the caps that differ from those in force.
 */
function toAllocations(
  tenants: readonly AllocationTenant[],
  results: readonly NodeResult[],
  headroom: number,
): { allocations: Allocation[]; changes: AllocationChange[] } {
  const { start, node, position } = pairsByTenant(tenants.length, results);
  const reserved = results.map((r) => r.bounds.reduce((sum, b) => sum + b.reserved.connections, 0));
  const allocations: Allocation[] = [];
  const changes: AllocationChange[] = [];
  for (let t = 0; t < tenants.length; t++) {
    let top = 0;
    for (let p = start[t]!; p < start[t + 1]!; p++)
      top = Math.max(top, results[node[p]!]!.connections.caps[position[p]!]!);
    for (let p = start[t]!; p < start[t + 1]!; p++) {
      const r = results[node[p]!]!;
      const a = allocationAt(tenants[t]!.id, r, position[p]!, top, reserved[node[p]!]!);
      allocations.push(a);
      addChanges(changes, a, r.before[position[p]!]!, headroom);
    }
  }
  return { allocations, changes };
}

/** Which (node result, position) pairs each tenant has, as flat arrays indexed from `start[t]` (no array per tenant). */
function pairsByTenant(
  tenantCount: number,
  results: readonly NodeResult[],
): { start: Int32Array; node: Int32Array; position: Int32Array } {
  const start = new Int32Array(tenantCount + 1);
  for (const r of results) for (const t of r.ids) start[t + 1]! += 1;
  for (let t = 0; t < tenantCount; t++) start[t + 1]! += start[t]!;
  const fill = start.slice(0, tenantCount);
  const node = new Int32Array(start[tenantCount]!);
  const position = new Int32Array(start[tenantCount]!);
  results.forEach((r, n) => {
    r.ids.forEach((t, k) => {
      const at = fill[t]!++;
      node[at] = n;
      position[at] = k;
    });
  });
  return { start, node, position };
}

function allocationAt(
  tenantId: string,
  r: NodeResult,
  k: number,
  top: number,
  reservedConnections: number,
): Allocation {
  const connections = r.connections.caps[k]!;
  const own = r.bounds[k]!;
  const ceiling = Math.max(
    connections,
    Math.min(
      own.limit.connections,
      Math.floor(r.capacity.connections) - (reservedConnections - own.reserved.connections),
    ),
  );
  return {
    tenantId,
    node: r.name,
    maxConnections: connections,
    ceiling,
    requestsPerSecond: r.requestsPerSecond.caps[k]!,
    weight: top === 0 ? 0 : Math.max(connections > 0 ? 1 : 0, Math.round((256 * connections) / top)),
    reserved: r.bounds[k]!.reserved,
    limit: r.bounds[k]!.limit,
    demand: r.signals[k]!,
    saturated: r.saturation[k]!,
    target: { connections: r.connections.targets[k]!, requestsPerSecond: r.requestsPerSecond.targets[k]! },
    reasons: { connections: r.connections.reasons[k]!, requestsPerSecond: r.requestsPerSecond.reasons[k]! },
  };
}
