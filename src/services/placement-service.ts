import { ConflictError, NotFoundError } from '../domain/errors.js';
import type { NodeKind, ProxyNode } from '../domain/node.js';
import { placementHealth } from '../domain/node-health.js';
import { DEFAULT_MIN_REPLICAS, planPlacement } from '../domain/placement/plan-placement.js';
import {
  DEFAULT_GROUP,
  type NodeUsage,
  type PlacementMove,
  type PlacementPlan,
  type PlacementShortfall,
  type TenantAssignment,
} from '../domain/placement/placement-types.js';
import { GROUP_LABEL, type Resources, type Tenant } from '../domain/tenant.js';
import type { Db } from '../db/connect.js';
import * as repo from '../db/placement-repository.js';
import type { StoredPlacement } from '../db/placement-repository.js';
import { allNodes } from '../db/node-repository.js';
import { findTenant, listActiveTenants } from '../db/tenant-repository.js';
import { mutate, type Tx, type WriteContext } from './mutation.js';

export interface PlacementServiceOptions {
  /** Nodes per tenant and proxy kind, where the fleet allows. Default 2. */
  readonly replicas?: number;
  /** The agents' heartbeat interval: a node silent for 3 of them is taken out of placement. */
  readonly heartbeatIntervalMs: number;
  readonly now?: () => number;
}

/** A tenant's nodes of one proxy kind. */
export interface KindAssignment {
  readonly tenantId: string;
  readonly kind: NodeKind;
  readonly nodes: readonly string[];
}

export interface PlacementView {
  readonly replicas: number;
  readonly assignments: readonly KindAssignment[];
  /** Active tenants no node of their kind and group has room for. */
  readonly unplaceable: readonly PlacementShortfall[];
  /** Placed, but on fewer nodes than wanted. */
  readonly degraded: readonly PlacementShortfall[];
  readonly nodes: readonly (NodeUsage & {
    readonly kind: NodeKind;
    readonly group: string;
    readonly zone: string;
    readonly excluded: ProxyNode['placementExcluded'];
  })[];
}

export interface TenantPlacement {
  readonly tenant: string;
  readonly state: string;
  readonly replicas: number;
  readonly nodes: readonly {
    readonly node: string;
    readonly kind: NodeKind;
    readonly group: string;
    readonly zone: string;
    readonly reservation: Resources;
    readonly reason: string;
    readonly placedAt: string;
  }[];
  /** Per proxy kind where the tenant has fewer nodes than wanted, with what is missing. */
  readonly shortfalls: readonly PlacementShortfall[];
}

export interface HealthPassResult {
  /** Nodes taken out of placement by this pass, with why. */
  readonly excluded: readonly { readonly node: string; readonly reason: string }[];
  /** Nodes brought back. */
  readonly included: readonly string[];
  /** Unhealthy nodes kept in because every other node of their kind and group is unhealthy too. */
  readonly keptForLackOfOthers: readonly string[];
  /** Replica moves the pass made. */
  readonly moves: number;
  /** The revision the pass committed (null: nothing changed). */
  readonly revision: number | null;
}

/** What placement is computed from: one consistent read. */
interface Fleet {
  readonly tenants: readonly Tenant[];
  readonly nodes: readonly ProxyNode[];
  readonly placements: readonly StoredPlacement[];
  /** Room held on each node by tenants not in `tenants` (see `placeOne`). */
  readonly booked?: ReadonlyMap<string, Resources>;
}

/** The rebalancer's identity for the writes of a health pass. */
const PLACEMENT_ACTOR: WriteContext = {
  actor: {
    principal: { tokenId: '', name: 'placement', role: 'admin', tenantId: null, nodeName: null },
    requestId: 'placement',
    sourceIp: null,
  },
};

const groupOf = (t: Tenant): string => t.labels[GROUP_LABEL] ?? DEFAULT_GROUP;

/**
 * Placement in force: which nodes serve which tenant. Computed by the pure `planPlacement` per
 * proxy kind (a tenant is served on its chosen kind, or without one on every kind its group has
 * nodes of, one node per host),
 * stored in `placements`, and kept current by every write that can change it (tenant activation,
 * reservation or group; node registration, capacity or removal) inside that write's transaction,
 * so the configs built from a revision always agree with its placement. A write that would leave a
 * tenant without the room it reserved is refused with 409 and says how much is missing.
 */
export class PlacementService {
  readonly replicas: number;
  private readonly now: () => number;

  constructor(
    private readonly db: Db,
    private readonly options: PlacementServiceOptions,
  ) {
    this.replicas = Math.max(1, Math.floor(options.replicas ?? DEFAULT_MIN_REPLICAS));
    this.now = options.now ?? Date.now;
  }

  /** The placement in force, with its shortfalls and per-node usage. */
  async view(db: Db = this.db): Promise<PlacementView> {
    const fleet = await readFleet(db);
    const plans = this.plans(fleet);
    const byNode = new Map(fleet.nodes.map((n) => [n.name, n]));
    const stored = groupStored(fleet);
    const assignments: KindAssignment[] = [];
    for (const [tenantId, nodes] of stored) {
      const kinds = new Map<NodeKind, string[]>();
      for (const name of nodes) {
        const kind = byNode.get(name)!.kind;
        kinds.set(kind, [...(kinds.get(kind) ?? []), name]);
      }
      for (const [kind, names] of [...kinds].sort(([a], [b]) => (a < b ? -1 : 1)))
        assignments.push({ tenantId, kind, nodes: names });
    }
    return {
      replicas: this.replicas,
      assignments,
      unplaceable: plans.flatMap(({ plan }) => plan.unplaceable),
      degraded: plans.flatMap(({ plan }) => plan.degraded),
      nodes: plans
        .flatMap(({ plan }) => plan.nodes)
        .map((u) => {
          const n = byNode.get(u.node)!;
          return { ...u, kind: n.kind, group: n.group, zone: n.zone, excluded: n.placementExcluded };
        })
        .sort((a, b) => (a.node < b.node ? -1 : 1)),
    };
  }

  /**
   * Where one tenant runs, why it went there, and what it lacks if it is short of replicas. Reads
   * only this tenant's placements and the room the others hold (per node), and plans this tenant
   * alone around that room, as a write that places one tenant does (`placeOne`): the other
   * tenants keep their nodes in a whole plan too, so it finds the same shortfall, and the answer
   * costs the same at 10 tenants as at 10,000.
   */
  async tenant(tenantId: string): Promise<TenantPlacement> {
    const tenant = await findTenant(this.db, tenantId);
    if (!tenant) throw new NotFoundError('tenant', tenantId);
    const [nodes, placements, booked] = await Promise.all([
      allNodes(this.db),
      repo.listPlacements(this.db, { tenantId }),
      repo.bookedPerNode(this.db, { except: tenantId }),
    ]);
    const fleet: Fleet = { tenants: [tenant], nodes, placements, booked };
    const byNode = new Map(fleet.nodes.map((n) => [n.name, n]));
    const shortfalls =
      tenant.state === 'active'
        ? this.plans(fleet)
            .flatMap(({ plan }) => [...plan.unplaceable, ...plan.degraded])
            .filter((s) => s.tenantId === tenantId)
        : [];
    return {
      tenant: tenantId,
      state: tenant.state,
      replicas: this.replicas,
      nodes: fleet.placements.map((p) => {
        const n = byNode.get(p.node)!;
        return {
          node: p.node,
          kind: n.kind,
          group: n.group,
          zone: n.zone,
          reservation: p.reservation,
          reason: p.reason,
          placedAt: p.placedAt,
        };
      }),
      shortfalls,
    };
  }

  /**
   * Re-places inside a write's transaction and stores the result, auditing every tenant whose
   * nodes changed. With `admit`, that tenant (just created, activated, or with a new reservation
   * or group) must get its replicas without taking room any other tenant holds: otherwise the
   * write is refused with 409 saying how much is missing, and the transaction rolls back.
   */
  async replace(tx: Tx, opts: { readonly admit?: string } = {}): Promise<void> {
    if (opts.admit !== undefined && (await this.placeOne(tx, opts.admit))) return;
    const fleet = await readFleet(tx.db);
    const plans = this.plans(fleet);
    if (opts.admit !== undefined) this.admit(fleet, plans, opts.admit);
    await this.store(tx, fleet, plans);
  }

  /**
   * Places a tenant that has no placement yet (just created or activated) around the room the
   * others hold, which stay where they are: the cost of a write that registers one tenant then
   * does not grow with the fleet (the whole plan reads and plans every tenant, inside the write
   * lock). True when the tenant got all its replicas so; false leaves it to the whole plan, which
   * also says what is missing. Tenants short of replicas elsewhere get them at the leader's next
   * placement pass rather than in this write.
   */
  private async placeOne(tx: Tx, tenantId: string): Promise<boolean> {
    const tenant = await findTenant(tx.db, tenantId);
    if (tenant === undefined || tenant.state !== 'active') return false;
    if ((await repo.listPlacements(tx.db, { tenantId })).length > 0) return false;
    const nodes = await allNodes(tx.db);
    const booked = await repo.bookedPerNode(tx.db, { except: tenantId });
    const fleet: Fleet = { tenants: [tenant], nodes, placements: [], booked };
    checkKindServed(fleet, tenantId);
    const plans = this.plans(fleet);
    if (plans.some(({ plan }) => plan.unplaceable.length > 0 || plan.degraded.length > 0)) return false;
    await this.store(tx, fleet, plans);
    return true;
  }

  /**
   * The leader's pass: takes nodes that miss heartbeats or whose Runtime API pushes keep failing
   * out of placement (their tenants get replicas elsewhere; see `placementHealth`) and brings
   * healthy ones back. Nothing before `leaderSince` counts, so a control plane that was down
   * itself (and so heard no heartbeats) does not empty the fleet when it comes back. The last healthy-or-not node of a
   * kind and group is never taken out: a tenant is better served by a doubtful node than by none.
   */
  async healthPass(leaderSince: number): Promise<HealthPassResult> {
    const now = this.now();
    const nodes = await allNodes(this.db);
    const verdicts = new Map(
      nodes.map((n) => [n.name, placementHealth(n, now, this.options.heartbeatIntervalMs, leaderSince)]),
    );
    const pools = new Map<string, ProxyNode[]>();
    for (const n of nodes) pools.set(`${n.kind}/${n.group}`, [...(pools.get(`${n.kind}/${n.group}`) ?? []), n]);
    const excluded: { node: string; reason: string }[] = [];
    const included: string[] = [];
    const kept: string[] = [];
    for (const members of pools.values()) {
      const allDown = members.every((n) => !verdicts.get(n.name)!.healthy);
      for (const n of members) {
        const v = verdicts.get(n.name)!;
        if (v.healthy && n.placementExcluded !== null) included.push(n.name);
        else if (!v.healthy && n.placementExcluded === null) {
          if (allDown) kept.push(n.name);
          else excluded.push({ node: n.name, reason: v.reason! });
        }
      }
    }
    if (excluded.length === 0 && included.length === 0) {
      // Nothing about health changed; placement may still be short (room freed, a migrated fleet
      // serving every tenant everywhere): converge it, taking the write lock only when it moves.
      const fleet = await readFleet(this.db, nodes);
      const d = diff(fleet, this.plans(fleet));
      if (d.removed.length === 0 && d.added.length === 0)
        return { excluded, included, keptForLackOfOthers: kept.sort(), moves: 0, revision: null };
    }
    let moves = 0;
    const written = await mutate(this.db, PLACEMENT_ACTOR, async (tx) => {
      const at = new Date(now);
      for (const e of excluded) {
        await repo.setNodeExcluded(tx.db, e.node, e.reason, at);
        tx.audit({
          action: 'exclude',
          resourceType: 'node',
          resourceId: e.node,
          tenantId: null,
          before: { placementExcluded: null },
          after: { placementExcluded: e.reason },
        });
      }
      for (const name of included) {
        await repo.setNodeExcluded(tx.db, name, null, at);
        tx.audit({
          action: 'include',
          resourceType: 'node',
          resourceId: name,
          tenantId: null,
          before: { placementExcluded: nodes.find((n) => n.name === name)!.placementExcluded?.reason ?? null },
          after: { placementExcluded: null },
        });
      }
      const fleet = await readFleet(tx.db);
      moves = await this.store(tx, fleet, this.plans(fleet));
    });
    return { excluded, included, keptForLackOfOthers: kept.sort(), moves, revision: written.revision };
  }

  /**
   * One plan per proxy kind the fleet has, over the active tenants of that kind (or of no chosen
   * kind) whose group has nodes of it. Kinds are planned in name order (haproxy, then nginx): a
   * tenant without a chosen kind takes, in each later kind, only hosts its earlier kinds do not
   * use, so two proxies on one host never both bind its VIPs.
   */
  private plans(fleet: Fleet): { kind: NodeKind; plan: PlacementPlan }[] {
    const kinds = [...new Set(fleet.nodes.map((n) => n.kind))].sort();
    const kindOf = new Map(fleet.nodes.map((n) => [n.name, n.kind]));
    const hostOf = new Map(fleet.nodes.map((n) => [n.name, n.host]));
    /** Per tenant, the hosts the kinds planned so far gave it. */
    const usedHosts = new Map<string, Set<string>>();
    return kinds.map((kind) => {
      const nodes = fleet.nodes.filter((n) => n.kind === kind);
      const groups = new Set(nodes.map((n) => n.group));
      const current = new Map<string, { nodes: string[]; reservation: Resources }>();
      for (const p of fleet.placements) {
        if (kindOf.get(p.node) !== kind) continue;
        const entry = current.get(p.tenantId) ?? { nodes: [], reservation: p.reservation };
        entry.nodes.push(p.node);
        current.set(p.tenantId, entry);
      }
      const plan = planPlacement({
        nodes: nodes.map((n) => ({
          name: n.name,
          kind,
          group: n.group,
          zone: n.zone,
          host: n.host,
          capacity: n.capacity,
          healthy: n.placementExcluded === null,
        })),
        tenants: fleet.tenants
          .filter((t) => groups.has(groupOf(t)) && (t.proxyKind === null || t.proxyKind === kind))
          .map((t) => {
            const avoid = usedHosts.get(t.id);
            return {
              id: t.id,
              reservation: t.reservation,
              limit: t.limit,
              weight: t.weight,
              kind,
              group: groupOf(t),
              ...(avoid !== undefined && { avoidHosts: avoid }),
            };
          }),
        current: [...current].map(
          ([tenantId, c]): TenantAssignment => ({ tenantId, nodes: c.nodes, reservation: c.reservation }),
        ),
        minReplicas: this.replicas,
        ...(fleet.booked !== undefined && { booked: fleet.booked }),
      });
      for (const a of plan.assignments) {
        const hosts = usedHosts.get(a.tenantId) ?? new Set<string>();
        for (const node of a.nodes) hosts.add(hostOf.get(node)!);
        usedHosts.set(a.tenantId, hosts);
      }
      return { kind, plan };
    });
  }

  /** Refuses (409) when the admitted tenant falls short, or fits only by pushing others off nodes they hold. */
  private admit(fleet: Fleet, plans: readonly { kind: NodeKind; plan: PlacementPlan }[], tenantId: string): void {
    checkKindServed(fleet, tenantId);
    for (const { plan } of plans) {
      const own = [...plan.unplaceable, ...plan.degraded].find((s) => s.tenantId === tenantId);
      if (own !== undefined)
        throw new ConflictError(`reservation cannot be placed: ${own.message}`, { placement: own });
    }
    // What would happen without this write: the tenant at the reservation it is placed with, or absent.
    const placedWith = fleet.placements.find((p) => p.tenantId === tenantId)?.reservation;
    const baseline = this.plans({
      ...fleet,
      tenants:
        placedWith === undefined
          ? fleet.tenants.filter((t) => t.id !== tenantId)
          : fleet.tenants.map((t) => (t.id === tenantId ? { ...t, reservation: placedWith } : t)),
    });
    const displaced = new Set<string>();
    for (const [i, { plan }] of plans.entries()) {
      const now = new Map(plan.assignments.map((a) => [a.tenantId, a.nodes.length]));
      for (const a of baseline[i]!.plan.assignments) {
        if (a.tenantId !== tenantId && (now.get(a.tenantId) ?? 0) < a.nodes.length) displaced.add(a.tenantId);
      }
    }
    if (displaced.size > 0) {
      const names = [...displaced].sort();
      throw new ConflictError(
        `reservation cannot be placed: tenant ${tenantId} fits only by taking the room tenant(s) ${names.join(', ')} hold; add node capacity or lower the reservation`,
        { displaced: names },
      );
    }
  }

  /** Writes the plans' assignments over the stored ones; returns how many replicas moved. */
  private async store(
    tx: Tx,
    fleet: Fleet,
    plans: readonly { kind: NodeKind; plan: PlacementPlan }[],
  ): Promise<number> {
    const { removed, upserts, added, desired } = diff(fleet, plans);
    await repo.deletePlacements(tx.db, removed);
    await repo.upsertPlacements(tx.db, upserts, tx.revision);
    const touched = new Set([...removed.map((p) => p.tenantId), ...added.map((p) => p.tenantId)]);
    const before = groupStored(fleet);
    const after = new Map<string, string[]>();
    for (const d of desired.values()) after.set(d.tenantId, [...(after.get(d.tenantId) ?? []), d.node]);
    const moves = new Map<string, PlacementMove[]>();
    for (const { plan } of plans)
      for (const m of plan.moves) moves.set(m.tenantId, [...(moves.get(m.tenantId) ?? []), m]);
    for (const tenantId of [...touched].sort()) {
      tx.audit({
        action: 'place',
        resourceType: 'placement',
        resourceId: `${tenantId}/placement`,
        tenantId,
        before: { nodes: before.get(tenantId) ?? [] },
        after: { nodes: (after.get(tenantId) ?? []).sort(), moves: moves.get(tenantId) ?? [] },
      });
    }
    return removed.length + added.length;
  }
}

/**
 * A tenant that chose a proxy kind its group has no node of would be served nowhere (and, moved
 * from another kind, would stop being served): refused, unless the group has no nodes at all yet
 * (a tenant registered before its fleet is placed when nodes register).
 */
function checkKindServed(fleet: Fleet, tenantId: string): void {
  const tenant = fleet.tenants.find((t) => t.id === tenantId);
  if (tenant === undefined || tenant.proxyKind === null) return;
  const group = groupOf(tenant);
  const inGroup = fleet.nodes.filter((n) => n.group === group);
  if (inGroup.length === 0 || inGroup.some((n) => n.kind === tenant.proxyKind)) return;
  const kinds = [...new Set(inGroup.map((n) => n.kind))].sort().join(', ');
  throw new ConflictError(
    `tenant ${tenantId} asks for proxy kind ${tenant.proxyKind}, but group ${group} has only ${kinds} nodes: register a ${tenant.proxyKind} node in the group first, or choose ${kinds}`,
    { field: 'proxyKind', group, kinds: kinds.split(', ') },
  );
}

interface PlacementDiff {
  /** Stored placements the plans drop. */
  readonly removed: readonly StoredPlacement[];
  /** New placements, and kept ones whose reservation changed. */
  readonly upserts: readonly repo.PlacementWrite[];
  /** The new ones among `upserts`. */
  readonly added: readonly repo.PlacementWrite[];
  readonly desired: ReadonlyMap<string, { tenantId: string; node: string; reservation: Resources }>;
}

/** What storing the plans would change. */
function diff(fleet: Fleet, plans: readonly { kind: NodeKind; plan: PlacementPlan }[]): PlacementDiff {
  const byTenant = new Map(fleet.tenants.map((t) => [t.id, t]));
  const reasons = new Map<string, PlacementMove>();
  for (const { plan } of plans) for (const m of plan.moves) if (m.to !== null) reasons.set(`${m.tenantId}\0${m.to}`, m);
  const desired = new Map<string, { tenantId: string; node: string; reservation: Resources }>();
  for (const { plan } of plans) {
    for (const a of plan.assignments) {
      const reservation = byTenant.get(a.tenantId)!.reservation;
      for (const node of a.nodes) desired.set(`${a.tenantId}\0${node}`, { tenantId: a.tenantId, node, reservation });
    }
  }
  const current = new Map(fleet.placements.map((p) => [`${p.tenantId}\0${p.node}`, p]));
  const removed = [...current].filter(([k]) => !desired.has(k)).map(([, p]) => p);
  const upserts: repo.PlacementWrite[] = [];
  for (const [k, d] of desired) {
    const was = current.get(k);
    if (was === undefined) upserts.push({ ...d, reason: reasons.get(k)?.detail ?? 'placed' });
    else if (was.reservation.vcpu !== d.reservation.vcpu || was.reservation.memoryMb !== d.reservation.memoryMb)
      upserts.push({ ...d, reason: was.reason });
  }
  const added = upserts.filter((u) => !current.has(`${u.tenantId}\0${u.node}`));
  return { removed, upserts, added, desired };
}

/**
 * Active tenants, nodes (unless just read) and stored placements: read together from the pool, one
 * after the other inside a transaction (its one connection runs one query at a time; pg deprecates
 * queueing several on it).
 */
async function readFleet(db: Db, knownNodes?: readonly ProxyNode[]): Promise<Fleet> {
  const reads = [
    () => listActiveTenants(db),
    () => (knownNodes ? Promise.resolve([...knownNodes]) : allNodes(db)),
    () => repo.listPlacements(db),
  ] as const;
  const [tenants, nodes, placements] = db.isTransaction
    ? [await reads[0](), await reads[1](), await reads[2]()]
    : await Promise.all([reads[0](), reads[1](), reads[2]()]);
  return { tenants, nodes, placements };
}

function groupStored(fleet: Fleet): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const p of fleet.placements) out.set(p.tenantId, [...(out.get(p.tenantId) ?? []), p.node]);
  return out;
}
