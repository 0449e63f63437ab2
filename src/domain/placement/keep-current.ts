import { byString } from '../../util/sort.js';
import { formatNeed, relativeSize } from './need.js';
import {
  fits,
  hostOf,
  occupy,
  type Fleet,
  type NodeState,
  type ReplicaChange,
  type TenantState,
} from './placement-state.js';

interface Candidate {
  readonly t: TenantState;
  readonly n: NodeState;
  readonly size: number;
  readonly grew: number;
}

/**
 * Keeps current replicas that are still valid. On a node that no longer has room for all, tenants
 * whose reservation grew leave first, then the largest: keeping the small ones keeps the most.
 * Nodes with room for all keep all, whatever the order: only contested nodes need sorting.
 */
export function keepCurrent(tenants: TenantState[], fleet: Fleet, minReplicas: number): void {
  const pairs: Candidate[] = [];
  const booked = new Float64Array(fleet.nodes.size * 2);
  for (const t of tenants) {
    if (t.current.length === 0) continue;
    const valid = validCurrentNodes(t, fleet);
    for (const n of trimExcess(t, valid, Math.min(minReplicas, t.pool.hosts))) {
      pairs.push({ t, n, size: 0, grew: t.grew ? 1 : 0 });
      booked[2 * n.index]! += t.need.milli;
      booked[2 * n.index + 1]! += t.need.mb;
    }
  }
  const contested: Candidate[] = [];
  for (const c of pairs) {
    const i = c.n.index;
    if (booked[2 * i]! <= c.n.cap.milli && booked[2 * i + 1]! <= c.n.cap.mb) keep(c.t, c.n);
    else contested.push({ ...c, size: relativeSize(c.t.need, c.n.cap) });
  }
  contested.sort((a, b) => a.grew - b.grew || a.size - b.size || a.t.index - b.t.index || a.n.index - b.n.index);
  for (const { t, n } of contested) {
    if (fits(n, t.need)) keep(t, n);
    else
      t.removed.push({
        node: n.node.name,
        reason: 'no-room',
        detail: `node ${n.node.name} no longer has room for ${formatNeed(t.need)}`,
      });
  }
}

function keep(t: TenantState, n: NodeState): void {
  occupy(n, t.need);
  t.kept.push(n);
}

function validCurrentNodes(t: TenantState, fleet: Fleet): NodeState[] {
  const valid: NodeState[] = [];
  for (const name of [...new Set(t.current)].sort(byString)) {
    const n = fleet.nodes.get(name);
    const reason = invalidReason(t, n, name) ?? (n !== undefined ? sharedHostReason(t, n, valid) : null);
    if (reason === null && n !== undefined) valid.push(n);
    else if (reason !== null) t.removed.push(reason);
  }
  return valid;
}

/** A replica on a host the tenant already uses (another kind there, or an earlier node by name) must go. */
function sharedHostReason(t: TenantState, n: NodeState, kept: readonly NodeState[]): ReplicaChange | null {
  const host = hostOf(n);
  if (t.tenant.avoidHosts?.has(host) === true) {
    return {
      node: n.node.name,
      reason: 'host-shared',
      detail: `host ${host} of node ${n.node.name} already serves the tenant with another proxy kind`,
    };
  }
  const other = kept.find((k) => hostOf(k) === host);
  if (other !== undefined)
    return {
      node: n.node.name,
      reason: 'host-shared',
      detail: `node ${n.node.name} shares host ${host} with node ${other.node.name}, which serves the tenant`,
    };
  return null;
}

function invalidReason(t: TenantState, n: NodeState | undefined, name: string): ReplicaChange | null {
  if (n === undefined) return { node: name, reason: 'node-gone', detail: `node ${name} no longer exists` };
  if (!n.node.healthy) return { node: name, reason: 'node-unhealthy', detail: `node ${name} is unhealthy` };
  if (n.node.kind !== t.tenant.kind || n.node.group !== t.group) {
    return {
      node: name,
      reason: 'node-ineligible',
      detail: `node ${name} is not of kind ${t.tenant.kind} in group ${t.group}`,
    };
  }
  if (!n.eligible) return { node: name, reason: 'node-ineligible', detail: `node ${name} has no capacity` };
  return null;
}

/** More replicas than wanted (minReplicas lowered): keep a zone-diverse subset, by name. */
function trimExcess(t: TenantState, valid: NodeState[], wanted: number): NodeState[] {
  if (valid.length <= wanted) return valid;
  const keep: NodeState[] = [];
  const zones = new Set<string>();
  for (const n of valid) {
    if (keep.length < wanted && !zones.has(n.node.zone)) {
      keep.push(n);
      zones.add(n.node.zone);
    }
  }
  for (const n of valid) if (keep.length < wanted && !keep.includes(n)) keep.push(n);
  for (const n of valid) {
    if (!keep.includes(n)) {
      t.removed.push({
        node: n.node.name,
        reason: 'excess-replica',
        detail: `more replicas than the ${wanted} wanted`,
      });
    }
  }
  return keep;
}
