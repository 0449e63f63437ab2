import type { NodeKind } from './node.js';
import type { Resources } from './tenant.js';

/**
 * Placement: which proxy nodes serve which tenant.
 *
 * Semantics chosen here:
 * - **A reservation is served per node.** Every node a tenant is placed on must be able to carry
 *   the tenant's whole reservation, so when one replica fails the others still honour the
 *   guarantee. A tenant reserving 2 vCPU on 2 nodes therefore holds 2 vCPU on each.
 * - **Node capacity is never overbooked:** the reservations placed on a node add up to at most its
 *   capacity, in vCPU and in memory.
 * - A tenant goes on `min(minReplicas, eligible hosts)` nodes, where eligible means healthy, of the
 *   tenant's kind and group, with non-zero capacity; replicas go to different zones when a node of
 *   an unused zone has room.
 * - **One node per host:** a tenant never goes on two nodes of one host (nor on a host its other
 *   proxy kinds already use, `avoidHosts`): both proxies would bind its VIP:port (HAProxy and NGINX
 *   with `reuseport` both do) and the kernel would silently share its connections between them.
 * - **Few moves:** a tenant stays on a node while the node is healthy, eligible and has room. New
 *   replicas go to the least-utilised node that fits (spreading load leaves each node spare
 *   capacity for bursts). A node that comes back is used for new replicas only; tenants move onto
 *   it only to restore zone spread (`restoreZoneSpread`, on by default).
 *
 * Everything is pure and deterministic: the same input, in any order, gives the same plan.
 */

export const DEFAULT_GROUP = 'default';
export const DEFAULT_MIN_REPLICAS = 2;

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

// ---- internal state: vCPU in milli-vCPU so that sums are exact integers ----

interface Need {
  readonly milli: number;
  readonly mb: number;
}

interface NodeState {
  readonly node: PlacementNode;
  /** Position by name: comparisons on numbers instead of strings. */
  readonly index: number;
  readonly cap: Need;
  readonly eligible: boolean;
  usedMilli: number;
  usedMb: number;
  count: number;
}

interface TenantState {
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
  readonly removed: { node: string; reason: MoveReason; detail: string }[];
  readonly added: { node: string; reason: MoveReason; detail: string }[];
}

/** The eligible nodes of one kind and group, sorted by name. */
interface Pool {
  readonly nodes: readonly NodeState[];
  /** Distinct zones among them. */
  readonly zones: number;
  /** Distinct hosts among them: the most replicas a tenant can have here (one per host). */
  readonly hosts: number;
}

interface Fleet {
  readonly nodes: ReadonlyMap<string, NodeState>;
  /** By `kind/group`. */
  readonly pools: ReadonlyMap<string, Pool>;
}

const EMPTY_POOL: Pool = { nodes: [], zones: 0, hosts: 0 };
const hostOf = (n: NodeState): string => n.node.host ?? n.node.name;

function toPool(nodes: readonly NodeState[]): Pool {
  return { nodes, zones: new Set(nodes.map((n) => n.node.zone)).size, hosts: new Set(nodes.map(hostOf)).size };
}

const toMilli = (vcpu: number): number => Math.round(vcpu * 1000);
const toNeed = (r: Resources): Need => ({ milli: toMilli(r.vcpu), mb: r.memoryMb });
const poolKey = (kind: NodeKind, group: string): string => `${kind}/${group}`;
const byString = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** A copy sorted by a string key. Rows read from the database usually arrive sorted: check first, in O(n). */
function sortedByKey<T>(items: readonly T[], key: (item: T) => string): T[] {
  for (let i = 1; i < items.length; i++) {
    if (key(items[i - 1]!) > key(items[i]!)) return [...items].sort((a, b) => byString(key(a), key(b)));
  }
  return [...items];
}

/**
 * Plans which nodes serve which tenant. Pure: returns the assignments, the replica moves with
 * their reasons, and the tenants that could not be (fully) placed with a message saying how much
 * is missing. Node capacity is in vCPU and MB, as declared.
 */
export function planPlacement(input: PlacementInput): PlacementPlan {
  const minReplicas = Math.max(1, Math.floor(input.minReplicas ?? DEFAULT_MIN_REPLICAS));
  const fleet = buildFleet(input.nodes, input.booked);
  const tenants = buildTenants(input, fleet);
  keepCurrent(tenants, fleet, minReplicas);
  const order = fillOrder(tenants);
  fill(order, minReplicas, input.restoreZoneSpread ?? true);
  const shortfalls: PlacementShortfall[] = [];
  for (const t of order) {
    const pool = t.pool.nodes;
    const wanted = Math.min(minReplicas, t.pool.hosts);
    // A tenant whose other proxy kind already uses every host here is served by that kind: no shortfall.
    if (pool.length === 0 && (t.tenant.avoidHosts?.size ?? 0) > 0) continue;
    // With no eligible node at all the message still names the replicas the rule asks for.
    if (pool.length === 0) shortfalls.push(shortfall(t, pool, minReplicas));
    else if (t.kept.length < wanted) shortfalls.push(shortfall(t, pool, wanted));
  }
  return {
    assignments: tenants.filter((t) => t.kept.length > 0).map(toAssignment),
    moves: tenants.flatMap(toMoves),
    unplaceable: shortfalls.filter((s) => s.replicasPlaced === 0).sort((a, b) => byString(a.tenantId, b.tenantId)),
    degraded: shortfalls.filter((s) => s.replicasPlaced > 0).sort((a, b) => byString(a.tenantId, b.tenantId)),
    nodes: [...fleet.nodes.values()].map(toUsage),
  };
}

function buildFleet(nodes: readonly PlacementNode[], booked?: ReadonlyMap<string, Resources>): Fleet {
  const sorted = sortedByKey(nodes, (n) => n.name);
  const map = new Map<string, NodeState>();
  const eligible = new Map<string, NodeState[]>();
  for (const node of sorted) {
    if (map.has(node.name)) continue; // a duplicate name is a caller bug; the first given wins
    const cap = toNeed(node.capacity);
    // Zero capacity means the node can carry nothing: treat it as drained, not as a place for tenants.
    const held = booked?.get(node.name);
    const used = held === undefined ? { milli: 0, mb: 0 } : toNeed(held);
    const state: NodeState = { node, index: map.size, cap, eligible: node.healthy && cap.milli > 0 && cap.mb > 0, usedMilli: used.milli, usedMb: used.mb, count: 0 };
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

function buildTenants(input: PlacementInput, fleet: Fleet): TenantState[] {
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
    const pool = avoid === undefined || avoid.size === 0 ? shared : toPool(shared.nodes.filter((n) => !avoid.has(hostOf(n))));
    out.push({
      tenant, index: out.length, group, pool, need, grew,
      size: relativeSize(need, total), current: before?.nodes ?? [], kept: [], removed: [], added: [],
    });
  }
  return out;
}

// ---- keep what can stay ----

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
function keepCurrent(tenants: TenantState[], fleet: Fleet, minReplicas: number): void {
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
    else t.removed.push({ node: n.node.name, reason: 'no-room', detail: `node ${n.node.name} no longer has room for ${formatNeed(t.need)}` });
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
function sharedHostReason(t: TenantState, n: NodeState, kept: readonly NodeState[]): TenantState['removed'][number] | null {
  const host = hostOf(n);
  if (t.tenant.avoidHosts?.has(host) === true) {
    return { node: n.node.name, reason: 'host-shared', detail: `host ${host} of node ${n.node.name} already serves the tenant with another proxy kind` };
  }
  const other = kept.find((k) => hostOf(k) === host);
  if (other !== undefined) return { node: n.node.name, reason: 'host-shared', detail: `node ${n.node.name} shares host ${host} with node ${other.node.name}, which serves the tenant` };
  return null;
}

function invalidReason(t: TenantState, n: NodeState | undefined, name: string): TenantState['removed'][number] | null {
  if (n === undefined) return { node: name, reason: 'node-gone', detail: `node ${name} no longer exists` };
  if (!n.node.healthy) return { node: name, reason: 'node-unhealthy', detail: `node ${name} is unhealthy` };
  if (n.node.kind !== t.tenant.kind || n.node.group !== t.group) {
    return { node: name, reason: 'node-ineligible', detail: `node ${name} is not of kind ${t.tenant.kind} in group ${t.group}` };
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
      t.removed.push({ node: n.node.name, reason: 'excess-replica', detail: `more replicas than the ${wanted} wanted` });
    }
  }
  return keep;
}

// ---- place what is missing ----

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

/** Largest reservations first (first-fit decreasing packs best), then by id for determinism. */
function fillOrder(tenants: readonly TenantState[]): TenantState[] {
  return [...tenants].sort((a, b) => b.size - a.size || a.index - b.index);
}

/**
 * Adds missing replicas and restores zone spread, tenant by tenant, until nothing changes: a
 * zone-spread move frees room on the node it leaves, which a tenant handled earlier may now use.
 * Every step adds a replica or a zone to some tenant, so the loop ends.
 */
function fill(order: readonly TenantState[], minReplicas: number, restoreZoneSpread: boolean): void {
  let changed = true;
  while (changed) {
    changed = false;
    for (const t of order) {
      addReplicas(t, t.pool.nodes, Math.min(minReplicas, t.pool.hosts));
      // Only a zone-spread move frees room; additions alone cannot help a tenant handled earlier.
      if (restoreZoneSpread && spreadZones(t, t.pool) > 0) changed = true;
    }
  }
}

function addReplicas(t: TenantState, pool: readonly NodeState[], wanted: number): void {
  while (t.kept.length < wanted) {
    const n = bestCandidate(t, pool, false);
    if (n === null) return;
    occupy(n, t.need);
    t.kept.push(n);
    t.added.push({
      node: n.node.name,
      reason: t.current.length > 0 ? 'replica-added' : 'new-tenant',
      detail: `node ${n.node.name} (zone ${n.node.zone}) has room for ${formatNeed(t.need)}`,
    });
  }
}

/** Moves one replica at a time out of a shared zone while a node of an unused zone has room. Returns the moves made. */
function spreadZones(t: TenantState, pool: Pool): number {
  let moves = 0;
  while (t.kept.length > 1 && distinctZones(t.kept) < Math.min(t.kept.length, pool.zones)) {
    const target = bestCandidate(t, pool.nodes, true);
    if (target === null) return moves;
    moves += 1;
    const victim = crowdedReplica(t.kept);
    release(victim, t.need);
    t.kept.splice(t.kept.indexOf(victim), 1);
    occupy(target, t.need);
    t.kept.push(target);
    const detail = `replicas shared zone ${victim.node.zone}; node ${target.node.name} in zone ${target.node.zone} has room`;
    t.removed.push({ node: victim.node.name, reason: 'zone-spread', detail });
    t.added.push({ node: target.node.name, reason: 'zone-spread', detail });
  }
  return moves;
}

/** Of the replicas in a zone that holds more than one, the one on the busiest node (then last by name). */
function crowdedReplica(kept: readonly NodeState[]): NodeState {
  const perZone = new Map<string, number>();
  for (const n of kept) perZone.set(n.node.zone, (perZone.get(n.node.zone) ?? 0) + 1);
  const crowded = kept.filter((n) => (perZone.get(n.node.zone) ?? 0) > 1);
  crowded.sort((a, b) => utilisation(b, ZERO_NEED) - utilisation(a, ZERO_NEED) || byString(b.node.name, a.node.name));
  const victim = crowded[0];
  if (victim === undefined) throw new Error('crowdedReplica called without a shared zone');
  return victim;
}

/**
 * The node a new replica should go to: it must fit; a zone the tenant does not use yet wins,
 * then the lowest utilisation after placing, then the fewest tenants, then the name.
 */
function bestCandidate(t: TenantState, pool: readonly NodeState[], newZoneOnly: boolean): NodeState | null {
  let best: NodeState | null = null;
  let bestSeen = 0;
  let bestUtil = 0;
  for (const n of pool) {
    if (!fits(n, t.need) || t.kept.includes(n) || hostUsed(t.kept, hostOf(n))) continue;
    const seen = zoneUsed(t.kept, n.node.zone) ? 1 : 0;
    if (newZoneOnly && seen === 1) continue;
    const util = utilisation(n, t.need);
    // Equal on every key: the earlier node by name wins, as pools are sorted by name.
    if (best === null || seen < bestSeen || (seen === bestSeen && (util < bestUtil || (util === bestUtil && n.count < best.count)))) {
      best = n;
      bestSeen = seen;
      bestUtil = util;
    }
  }
  return best;
}

// ---- arithmetic ----

const ZERO_NEED: Need = { milli: 0, mb: 0 };

function fits(n: NodeState, need: Need): boolean {
  return n.usedMilli + need.milli <= n.cap.milli && n.usedMb + need.mb <= n.cap.mb;
}

function occupy(n: NodeState, need: Need): void {
  n.usedMilli += need.milli;
  n.usedMb += need.mb;
  n.count += 1;
}

function release(n: NodeState, need: Need): void {
  n.usedMilli -= need.milli;
  n.usedMb -= need.mb;
  n.count -= 1;
}

/** The larger of the two utilisation ratios once `extra` is added. */
function utilisation(n: NodeState, extra: Need): number {
  return Math.max(ratio(n.usedMilli + extra.milli, n.cap.milli), ratio(n.usedMb + extra.mb, n.cap.mb));
}

function relativeSize(need: Need, cap: Need): number {
  return Math.max(ratio(need.milli, cap.milli), ratio(need.mb, cap.mb));
}

function ratio(x: number, cap: number): number {
  if (cap > 0) return x / cap;
  return x > 0 ? Number.POSITIVE_INFINITY : 0;
}

// Replica lists hold a handful of nodes: a scan beats building a Set.
function zoneUsed(nodes: readonly NodeState[], zone: string): boolean {
  for (const n of nodes) if (n.node.zone === zone) return true;
  return false;
}

function hostUsed(nodes: readonly NodeState[], host: string): boolean {
  for (const n of nodes) if (hostOf(n) === host) return true;
  return false;
}

function distinctZones(nodes: readonly NodeState[]): number {
  let count = 0;
  for (let i = 0; i < nodes.length; i++) {
    let first = true;
    for (let j = 0; j < i && first; j++) first = nodes[j]!.node.zone !== nodes[i]!.node.zone;
    if (first) count += 1;
  }
  return count;
}

// ---- output ----

function toAssignment(t: TenantState): TenantAssignment {
  return { tenantId: t.tenant.id, nodes: t.kept.map((n) => n.node.name).sort(byString), reservation: t.tenant.reservation };
}

/** Pairs each dropped replica with an added one, so a move reads "from X to Y because X ...". */
function toMoves(t: TenantState): PlacementMove[] {
  if (t.removed.length === 0 && t.added.length === 0) return [];
  const addedNames = new Set(t.added.map((a) => a.node));
  const removedNames = new Set(t.removed.map((r) => r.node));
  // A replica dropped and re-added in the same plan did not move.
  const removed = t.removed.filter((r) => !addedNames.has(r.node));
  const added = t.added.filter((a) => !removedNames.has(a.node));
  const moves: PlacementMove[] = [];
  const pairs = Math.max(removed.length, added.length);
  for (let i = 0; i < pairs; i++) {
    const r = removed[i];
    const a = added[i];
    const reason = r?.reason ?? a?.reason ?? 'replica-added';
    const detail = r === undefined ? (a?.detail ?? '') : a === undefined ? r.detail : r.reason === 'zone-spread' ? r.detail : `${r.detail}; ${a.detail}`;
    moves.push({ tenantId: t.tenant.id, from: r?.node ?? null, to: a?.node ?? null, reason, detail });
  }
  return moves;
}

function toUsage(n: NodeState): NodeUsage {
  return {
    node: n.node.name,
    healthy: n.node.healthy,
    eligible: n.eligible,
    capacity: n.node.capacity,
    reserved: fromNeed(n.usedMilli, n.usedMb),
    free: fromNeed(n.cap.milli - n.usedMilli, n.cap.mb - n.usedMb),
    tenants: n.count,
  };
}

function fromNeed(milli: number, mb: number): Resources {
  return { vcpu: milli / 1000, memoryMb: mb };
}

// ---- shortfall messages ----

function shortfall(t: TenantState, pool: readonly NodeState[], wanted: number): PlacementShortfall {
  const where = `of kind ${t.tenant.kind} in group ${t.group}`;
  const head = `tenant ${t.tenant.id} needs ${formatNeed(t.need)} on ${plural(wanted, 'node')} ${where}`;
  const best = closestNode(t, pool);
  const base = {
    tenantId: t.tenant.id, kind: t.tenant.kind, group: t.group, needed: t.tenant.reservation,
    replicasWanted: wanted, replicasPlaced: t.kept.length,
  };
  if (best === null) {
    const why = pool.length === 0 ? `there is no healthy node ${where}` : `every other node ${where} already serves it or shares a host with one that does`;
    const placed = t.kept.length > 0 ? `only ${t.kept.length} has room; ` : '';
    return { ...base, best: null, missing: null, message: `${head}; ${placed}${why}` };
  }
  const free = { milli: best.cap.milli - best.usedMilli, mb: best.cap.mb - best.usedMb };
  const missing = { milli: Math.max(0, t.need.milli - free.milli), mb: Math.max(0, t.need.mb - free.mb) };
  const which = t.kept.length > 0 ? `only ${t.kept.length} has room; the best of the others` : 'the best';
  return {
    ...base,
    best: { node: best.node.name, free: fromNeed(free.milli, free.mb) },
    missing: fromNeed(missing.milli, missing.mb),
    message: `${head}; ${which} (${best.node.name}) has ${formatNeed(free)} free, ${formatShort(missing)} short`,
  };
}

/** The eligible node not serving the tenant whose free space covers the largest share of its need. */
function closestNode(t: TenantState, pool: readonly NodeState[]): NodeState | null {
  let best: NodeState | null = null;
  let bestCover = -1;
  for (const n of pool) {
    if (t.kept.includes(n) || hostUsed(t.kept, hostOf(n))) continue;
    const cover = Math.min(coverage(n.cap.milli - n.usedMilli, t.need.milli), coverage(n.cap.mb - n.usedMb, t.need.mb));
    if (cover > bestCover) {
      best = n;
      bestCover = cover;
    }
  }
  return best;
}

function coverage(free: number, need: number): number {
  return need > 0 ? Math.max(0, free) / need : Number.POSITIVE_INFINITY;
}

function formatNeed(n: Need): string {
  return `${formatVcpu(n.milli)} vCPU / ${n.mb} MB`;
}

/** Only the dimensions that fall short: "1 vCPU", "2048 MB" or "1 vCPU / 2048 MB". */
function formatShort(n: Need): string {
  if (n.mb === 0) return `${formatVcpu(n.milli)} vCPU`;
  if (n.milli === 0) return `${n.mb} MB`;
  return formatNeed(n);
}

function formatVcpu(milli: number): string {
  return String(milli / 1000);
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

// ---- write-time admission ----

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
export function checkReservationFits(input: PlacementInput, tenantId: string, newReservation: Resources): ReservationCheck {
  if (!input.tenants.some((t) => t.id === tenantId)) throw new Error(`tenant ${tenantId} is not in the placement input`);
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
  return [...was].filter(([id, n]) => id !== except && (now.get(id) ?? 0) < n).map(([id]) => id).sort(byString);
}
