import { sortedByKey } from '../../util/sort.js';
import type { NodeKind } from '../node.js';
import type { Resources } from '../tenant.js';
import { ratio, relativeSize, toNeed, type Need } from './need.js';
import {
  DEFAULT_GROUP,
  type MoveReason,
  type PlacementInput,
  type PlacementNode,
  type PlacementTenant,
  type TenantAssignment,
} from './placement-types.js';

// The planner's working state: each node with the room used so far, each tenant with the replicas
// kept, removed and added so far. Built once per plan, then changed in place by the steps.

export interface NodeState {
  readonly node: PlacementNode;
  /** Position by name: comparisons on numbers instead of strings. */
  readonly index: number;
  readonly cap: Need;
  readonly eligible: boolean;
  usedMilli: number;
  usedMb: number;
  count: number;
}

/** A replica dropped or added, with why. */
export interface ReplicaChange {
  readonly node: string;
  readonly reason: MoveReason;
  readonly detail: string;
}

export interface TenantState {
  readonly tenant: PlacementTenant;
  /** Position by id. */
  readonly index: number;
  readonly group: string;
  readonly pool: Pool;
  readonly need: Need;
  readonly grew: boolean;
  /** Reservation relative to the fleet's eligible capacity: the fill order, largest first. */
  readonly size: number;
  /** Node names of the placement in force. */
  readonly current: readonly string[];
  readonly kept: NodeState[];
  readonly removed: ReplicaChange[];
  readonly added: ReplicaChange[];
}

/** The eligible nodes of one kind and group, sorted by name. */
export interface Pool {
  readonly nodes: readonly NodeState[];
  /** Distinct zones among them. */
  readonly zones: number;
  /** Distinct hosts among them: the most replicas a tenant can have here (one per host). */
  readonly hosts: number;
}

export interface Fleet {
  readonly nodes: ReadonlyMap<string, NodeState>;
  /** By `kind/group`. */
  readonly pools: ReadonlyMap<string, Pool>;
}

const EMPTY_POOL: Pool = { nodes: [], zones: 0, hosts: 0 };
export const hostOf = (n: NodeState): string => n.node.host ?? n.node.name;

function toPool(nodes: readonly NodeState[]): Pool {
  return { nodes, zones: new Set(nodes.map((n) => n.node.zone)).size, hosts: new Set(nodes.map(hostOf)).size };
}

const poolKey = (kind: NodeKind, group: string): string => `${kind}/${group}`;

export function buildFleet(nodes: readonly PlacementNode[], booked?: ReadonlyMap<string, Resources>): Fleet {
  const sorted = sortedByKey(nodes, (n) => n.name);
  const map = new Map<string, NodeState>();
  const eligible = new Map<string, NodeState[]>();
  for (const node of sorted) {
    if (map.has(node.name)) continue; // a duplicate name is a caller bug; the first given wins
    const cap = toNeed(node.capacity);
    // Zero capacity means the node can carry nothing: treat it as drained, not as a place for tenants.
    const held = booked?.get(node.name);
    const used = held === undefined ? { milli: 0, mb: 0 } : toNeed(held);
    const state: NodeState = {
      node,
      index: map.size,
      cap,
      eligible: node.healthy && cap.milli > 0 && cap.mb > 0,
      usedMilli: used.milli,
      usedMb: used.mb,
      count: 0,
    };
    map.set(node.name, state);
    if (!state.eligible) continue;
    const key = poolKey(node.kind, node.group);
    const list = eligible.get(key) ?? [];
    list.push(state);
    eligible.set(key, list);
  }
  const pools = new Map<string, Pool>();
  for (const [key, list] of eligible) pools.set(key, toPool(list));
  return { nodes: map, pools };
}

export function buildTenants(input: PlacementInput, fleet: Fleet): TenantState[] {
  const current = new Map<string, TenantAssignment>();
  for (const a of input.current ?? []) current.set(a.tenantId, a);
  const seen = new Set<string>();
  const sorted = sortedByKey(input.tenants, (t) => t.id);
  const total = eligibleTotal(fleet);
  const out: TenantState[] = [];
  for (const tenant of sorted) {
    if (seen.has(tenant.id)) continue;
    seen.add(tenant.id);
    const need = toNeed(tenant.reservation);
    const before = current.get(tenant.id);
    const old = before?.reservation === undefined ? null : toNeed(before.reservation);
    const grew = old !== null && (need.milli > old.milli || need.mb > old.mb);
    const group = tenant.group ?? DEFAULT_GROUP;
    const shared = fleet.pools.get(poolKey(tenant.kind, group)) ?? EMPTY_POOL;
    const avoid = tenant.avoidHosts;
    // Hosts the tenant's other kinds use are not in its pool at all: it wants fewer replicas here.
    const pool =
      avoid === undefined || avoid.size === 0 ? shared : toPool(shared.nodes.filter((n) => !avoid.has(hostOf(n))));
    out.push({
      tenant,
      index: out.length,
      group,
      pool,
      need,
      grew,
      size: relativeSize(need, total),
      current: before?.nodes ?? [],
      kept: [],
      removed: [],
      added: [],
    });
  }
  return out;
}

function eligibleTotal(fleet: Fleet): Need {
  let milli = 0;
  let mb = 0;
  for (const n of fleet.nodes.values()) {
    if (!n.eligible) continue;
    milli += n.cap.milli;
    mb += n.cap.mb;
  }
  return { milli: Math.max(milli, 1), mb: Math.max(mb, 1) };
}

// ---- room on a node ----

export function fits(n: NodeState, need: Need): boolean {
  return n.usedMilli + need.milli <= n.cap.milli && n.usedMb + need.mb <= n.cap.mb;
}

export function occupy(n: NodeState, need: Need): void {
  n.usedMilli += need.milli;
  n.usedMb += need.mb;
  n.count += 1;
}

export function release(n: NodeState, need: Need): void {
  n.usedMilli -= need.milli;
  n.usedMb -= need.mb;
  n.count -= 1;
}

/** The larger of the two utilisation ratios once `extra` is added. */
export function utilisation(n: NodeState, extra: Need): number {
  return Math.max(ratio(n.usedMilli + extra.milli, n.cap.milli), ratio(n.usedMb + extra.mb, n.cap.mb));
}

// ---- replica lists ----

// Replica lists hold a handful of nodes: a scan beats building a Set.
export function zoneUsed(nodes: readonly NodeState[], zone: string): boolean {
  for (const n of nodes) if (n.node.zone === zone) return true;
  return false;
}

export function hostUsed(nodes: readonly NodeState[], host: string): boolean {
  for (const n of nodes) if (hostOf(n) === host) return true;
  return false;
}

export function distinctZones(nodes: readonly NodeState[]): number {
  let count = 0;
  for (let i = 0; i < nodes.length; i++) {
    let first = true;
    for (let j = 0; j < i && first; j++) first = nodes[j]!.node.zone !== nodes[i]!.node.zone;
    if (first) count += 1;
  }
  return count;
}
