import {
  DEFAULT_CAPACITY_MODEL,
  toResourceVector,
  type CapacityModel,
  type ResourceVector,
} from '../domain/capacity.js';
import { computeAllocations } from '../domain/allocation/compute-allocations.js';
import type { Allocation, AllocationChange } from '../domain/allocation/allocation-types.js';
import type { TenantDemand } from '../domain/demand.js';
import { ConflictError, NotFoundError } from '../domain/errors.js';
import type { NodeKind, ProxyNode } from '../domain/node.js';
import { nodeHealth } from '../domain/node-health.js';
import type { Tenant } from '../domain/tenant.js';
import type { Db } from '../db/connect.js';
import * as repo from '../db/allocation-repository.js';
import type { AllocationHistoryEntry, StoredAllocation } from '../db/allocation-repository.js';
import { findTenant, listActiveTenants } from '../db/tenant-repository.js';
import { allNodes } from '../db/node-repository.js';
import { currentRevision } from '../db/revision-repository.js';
import type { Metrics } from '../metrics.js';
import { mutate, type AuditEntry, type WriteContext } from './mutation.js';
import { fetchSize, toPage, type Page } from './page.js';
import { listPlacements } from '../db/placement-repository.js';

/** Smoothed demand per tenant and node (the stats poller's); null: no signal, every tenant wants its reservation. */
export interface DemandSource {
  demand(db: Db): Promise<TenantDemand[] | null>;
}

export interface AllocationServiceOptions {
  /** The agents' heartbeat interval: a node silent for 3 of them is unhealthy. */
  readonly heartbeatIntervalMs: number;
  /** A node whose every cap change is a reload (no runtime address: NGINX without a runtime channel, HAProxy without a Runtime API) changes caps at most this often. */
  readonly reloadCadenceMs: number;
  readonly capacity?: CapacityModel;
  readonly demand?: DemandSource;
  readonly metrics?: Pick<Metrics, 'tenantAllocation'>;
  readonly now?: () => number;
}

export interface PlannedChange extends AllocationChange {
  readonly kind: NodeKind;
  /** Why the change waits (a node that reloads for it, inside its cadence); null: it goes out with the plan. */
  readonly deferred: string | null;
}

export interface PlannedNode {
  readonly node: string;
  readonly kind: NodeKind;
  readonly group: string;
  readonly zone: string;
  readonly healthy: boolean;
  /** Why the node takes no new caps (its stored caps stay as they are). */
  readonly unhealthyReason: string | null;
  readonly capacity: ResourceVector;
  readonly reserved: ResourceVector;
  /** Caps after the plan (unhealthy nodes: the stored ones). */
  readonly allocated: ResourceVector;
  readonly tenants: number;
  readonly overcommitted: boolean;
}

/** What a rebalance would do, with the reason for every change. Built by `plan()`, applied by `apply()`. */
export interface RebalancePlan {
  /** The desired-state revision the plan was computed at. */
  readonly revision: number;
  readonly computedAt: string;
  /** Where demand came from: the stats poller, or none (every tenant wants its reservation, idle capacity shared). */
  readonly demand: 'stats' | 'none';
  readonly allocations: readonly Allocation[];
  readonly changes: readonly PlannedChange[];
  /** Stored caps of tenants no longer served (suspended): removed on apply. */
  readonly removals: readonly { readonly tenantId: string; readonly node: string }[];
  readonly nodes: readonly PlannedNode[];
  readonly warnings: readonly string[];
  /** Applying would write something: a change that is not deferred, a removal, or a node weight or connection ceiling that moved. */
  readonly pending: boolean;
}

export type ItemStatus = 'applied' | 'not-executed';

export interface ApplyResult {
  /** The revision the caps were committed at (the current one when nothing changed). */
  readonly revision: number;
  readonly changed: boolean;
  /** One per planned change: applied, or not executed with the reason (deferred). */
  readonly items: readonly (PlannedChange & { readonly status: ItemStatus })[];
}

/**
 * A tenant's caps on a node as GET …/allocation shows them: stored by the rebalancer, or, where
 * none is stored yet, its reservation (stored ones alone, without `source`, for a tenant not active).
 */
export type CurrentAllocation =
  | (StoredAllocation & { readonly source?: 'rebalancer' })
  | (Omit<StoredAllocation, 'ceiling' | 'weight' | 'computedAt' | 'revision'> & {
      readonly weight: null;
      readonly computedAt: null;
      readonly revision: null;
      readonly source: 'reservation';
    });

export interface CapacityView {
  readonly revision: number;
  readonly nodes: readonly NodeCapacity[];
  readonly groups: readonly GroupCapacity[];
}

interface Totals {
  readonly capacity: ResourceVector;
  readonly reserved: ResourceVector;
  /** The caps the proxies are told to enforce: stored ones, else reservations. */
  readonly allocated: ResourceVector;
  /** Smoothed observed demand; null without a stats source. */
  readonly used: ResourceVector | null;
}

export interface NodeCapacity extends Totals {
  readonly node: string;
  readonly kind: NodeKind;
  readonly group: string;
  readonly zone: string;
  readonly healthy: boolean;
  readonly unhealthyReason: string | null;
  readonly vcpu: number;
  readonly memoryMb: number;
  readonly tenants: number;
}

export interface GroupCapacity extends Totals {
  readonly group: string;
  readonly nodes: number;
}

const ZERO: ResourceVector = Object.freeze({ connections: 0, requestsPerSecond: 0 });
const add = (a: ResourceVector, b: ResourceVector): ResourceVector => ({
  connections: a.connections + b.connections,
  requestsPerSecond: a.requestsPerSecond + b.requestsPerSecond,
});
const pair = (tenantId: string, node: string) => `${tenantId}\u0000${node}`;

/** What the rebalancer writes as: the system, not a token. */
export const REBALANCER_ACTOR: WriteContext = {
  actor: {
    principal: { tokenId: '', name: 'rebalancer', role: 'admin', tenantId: null, nodeName: null },
    requestId: 'rebalancer',
    sourceIp: null,
  },
};

/**
 * Reads the fleet (active tenants, their placement, nodes and their health, stored caps, demand),
 * computes every tenant's caps on the nodes it is placed on with the pure allocator, and stores
 * them with their history.
 */
export class AllocationService {
  private readonly capacityModel: CapacityModel;
  private readonly now: () => number;

  constructor(
    private readonly db: Db,
    private readonly options: AllocationServiceOptions,
  ) {
    this.capacityModel = options.capacity ?? DEFAULT_CAPACITY_MODEL;
    this.now = options.now ?? Date.now;
  }

  /** The plan with reasons; changes nothing. */
  async plan(db: Db = this.db): Promise<RebalancePlan> {
    const [revision, tenants, nodes, stored, lastChange, demand, placed] = await Promise.all([
      currentRevision(db),
      listActiveTenants(db),
      allNodes(db),
      repo.listAllocations(db),
      repo.lastChangePerNode(db),
      this.options.demand ? this.options.demand.demand(db) : Promise.resolve(null),
      placementPairs(db),
    ]);
    return this.planFrom({ revision, tenants, nodes, stored, lastChange, demand, placed });
  }

  /**
   * Stores the plan's caps and their history in one write (a revision, an audit event
   * 'rebalance' per tenant): the reconciler is woken by the commit like after any write and pushes
   * the caps through the Runtime API (no reload on HAProxy). Refused with 409 when the stored caps
   * changed since the plan. Deferred changes are reported as not executed.
   */
  async apply(plan: RebalancePlan, ctx: WriteContext = REBALANCER_ACTOR): Promise<ApplyResult> {
    const applying = plan.changes.filter((c) => c.deferred === null);
    const deferredNodes = new Set(plan.changes.filter((c) => c.deferred !== null).map((c) => c.node));
    const unhealthy = new Set(plan.nodes.filter((n) => !n.healthy).map((n) => n.node));
    const written = await mutate(this.db, ctx, async (tx) => {
      const stored = await repo.listAllocations(tx.db);
      const byPair = new Map(stored.map((s) => [pair(s.tenantId, s.node), s]));
      for (const c of applying) {
        const s = byPair.get(pair(c.tenantId, c.node));
        const now = s === undefined ? null : c.dimension === 'connections' ? s.maxConnections : s.requestsPerSecond;
        if (now !== c.from)
          throw new ConflictError(
            `the caps of tenant ${c.tenantId} on node ${c.node} changed since the plan; plan again`,
          );
      }
      const at = new Date(this.now());
      const before = new Map<string, Record<string, unknown>>();
      const after = new Map<string, Record<string, unknown>>();
      const note = (tenantId: string, node: string, was: StoredAllocation | undefined, next: unknown) => {
        before.set(tenantId, {
          ...before.get(tenantId),
          [node]:
            was === undefined
              ? null
              : {
                  maxConnections: was.maxConnections,
                  ceiling: was.ceiling,
                  requestsPerSecond: was.requestsPerSecond,
                  weight: was.weight,
                },
        });
        after.set(tenantId, { ...after.get(tenantId), [node]: next });
      };
      for (const a of plan.allocations) {
        if (deferredNodes.has(a.node) || unhealthy.has(a.node)) continue;
        const s = byPair.get(pair(a.tenantId, a.node));
        if (s !== undefined && sameStored(s, a)) continue;
        await repo.upsertAllocation(
          tx.db,
          {
            tenantId: a.tenantId,
            node: a.node,
            maxConnections: a.maxConnections,
            ceiling: a.ceiling,
            requestsPerSecond: a.requestsPerSecond,
            weight: a.weight,
            reason: a.reasons,
          },
          tx.revision,
          at,
        );
        note(a.tenantId, a.node, s, {
          maxConnections: a.maxConnections,
          ceiling: a.ceiling,
          requestsPerSecond: a.requestsPerSecond,
          weight: a.weight,
        });
      }
      const history: Omit<AllocationHistoryEntry, 'at'>[] = applying.map((c) => ({
        tenantId: c.tenantId,
        node: c.node,
        dimension: c.dimension,
        from: c.from,
        to: c.to,
        reason: c.reason,
        detail: c.detail,
        revision: tx.revision,
      }));
      for (const r of plan.removals) {
        const s = byPair.get(pair(r.tenantId, r.node));
        if (s === undefined) continue;
        await repo.deleteAllocation(tx.db, r.tenantId, r.node);
        note(r.tenantId, r.node, s, null);
        for (const [dimension, from] of [
          ['connections', s.maxConnections],
          ['requestsPerSecond', s.requestsPerSecond],
        ] as const) {
          history.push({
            tenantId: r.tenantId,
            node: r.node,
            dimension,
            from,
            to: null,
            reason: 'removed',
            detail: `${dimension} ${from} → none: the tenant is no longer served here (not active, or placed on other nodes)`,
            revision: tx.revision,
          });
        }
      }
      await repo.insertHistory(tx.db, history, at);
      for (const [tenantId, next] of after) {
        const entry: AuditEntry = {
          action: 'rebalance',
          resourceType: 'allocation',
          resourceId: `${tenantId}/allocation`,
          tenantId,
          before: before.get(tenantId),
          after: next,
        };
        tx.audit(entry);
      }
      return after.size > 0;
    });
    if (written.value) await this.refreshMetrics();
    return {
      revision: written.revision,
      changed: written.value,
      items: plan.changes.map((c) => ({ ...c, status: c.deferred === null ? 'applied' : 'not-executed' })),
    };
  }

  /** Every stored allocation, sorted by tenant, then node. */
  /** One page of every tenant's stored caps, by tenant then node; the cursor is the last `tenant/node` seen. */
  async list(q: { limit: number; cursor?: string | undefined }): Promise<Page<StoredAllocation>> {
    const [tenantId, node] = q.cursor === undefined ? [] : q.cursor.split('/');
    const after = tenantId === undefined || node === undefined ? undefined : { tenantId, node };
    const rows = await repo.listAllocations(this.db, { limit: fetchSize(q.limit), ...(after && { after }) });
    return toPage(rows, q.limit, (a) => `${a.tenantId}/${a.node}`);
  }

  /** A tenant's caps per node (stored, or its reservation where none is) and its recent changes, newest first. */
  async tenant(
    tenantId: string,
    historyLimit: number,
  ): Promise<{ tenant: string; current: CurrentAllocation[]; history: AllocationHistoryEntry[] }> {
    const tenant = await findTenant(this.db, tenantId);
    if (!tenant) throw new NotFoundError('tenant', tenantId);
    const [stored, nodes, history, placements] = await Promise.all([
      repo.listAllocations(this.db, { tenantId }),
      allNodes(this.db),
      repo.tenantHistory(this.db, tenantId, historyLimit),
      listPlacements(this.db, { tenantId }),
    ]);
    const byNode = new Map(stored.map((s) => [s.node, s]));
    const placed = new Set(placements.map((p) => p.node));
    const current: CurrentAllocation[] =
      tenant.state !== 'active'
        ? stored
        : nodes
            .filter((n) => placed.has(n.name))
            .map((n) => {
              const s = byNode.get(n.name);
              if (s !== undefined) return { ...s, source: 'rebalancer' };
              const r = this.reservedOn(tenant, n.kind);
              return {
                tenantId,
                node: n.name,
                maxConnections: Math.max(1, r.connections),
                requestsPerSecond: Math.max(1, r.requestsPerSecond),
                weight: null,
                reason: { connections: 'reservation', requestsPerSecond: 'reservation' },
                computedAt: null,
                revision: null,
                source: 'reservation',
              };
            });
    return { tenant: tenantId, current, history };
  }

  /** Per node and group: capacity, reservations, the caps enforced, and observed demand. */
  async capacity(): Promise<CapacityView> {
    const [revision, allTenants, nodes, stored, demand, placed] = await Promise.all([
      currentRevision(this.db),
      listActiveTenants(this.db),
      allNodes(this.db),
      repo.listAllocations(this.db),
      this.options.demand ? this.options.demand.demand(this.db) : Promise.resolve(null),
      placementPairs(this.db),
    ]);
    const now = this.now();
    const byPair = new Map(stored.map((s) => [pair(s.tenantId, s.node), s]));
    const out: NodeCapacity[] = nodes.map((n) => {
      const health = nodeHealth(n, now, this.options.heartbeatIntervalMs);
      const tenants = allTenants.filter((t) => placed.has(pair(t.id, n.name)));
      let reserved = ZERO;
      let allocated = ZERO;
      for (const t of tenants) {
        const r = this.reservedOn(t, n.kind);
        reserved = add(reserved, r);
        const s = byPair.get(pair(t.id, n.name));
        allocated = add(
          allocated,
          s
            ? { connections: s.maxConnections, requestsPerSecond: s.requestsPerSecond }
            : { connections: Math.max(1, r.connections), requestsPerSecond: Math.max(1, r.requestsPerSecond) },
        );
      }
      const used =
        demand === null
          ? null
          : demand
              .filter((d) => d.node === n.name)
              .reduce(
                (acc, d) => add(acc, { connections: d.connections, requestsPerSecond: d.requestsPerSecond }),
                ZERO,
              );
      return {
        node: n.name,
        kind: n.kind,
        group: n.group,
        zone: n.zone,
        healthy: health.healthy,
        unhealthyReason: health.reason,
        vcpu: n.capacity.vcpu,
        memoryMb: n.capacity.memoryMb,
        tenants: tenants.length,
        capacity: toResourceVector(n.capacity, this.capacityModel[n.kind]),
        reserved,
        allocated,
        used,
      };
    });
    const groups = new Map<string, GroupCapacity>();
    for (const n of out) {
      const g = groups.get(n.group);
      groups.set(n.group, {
        group: n.group,
        nodes: (g?.nodes ?? 0) + 1,
        capacity: add(g?.capacity ?? ZERO, n.capacity),
        reserved: add(g?.reserved ?? ZERO, n.reserved),
        allocated: add(g?.allocated ?? ZERO, n.allocated),
        used: n.used === null ? null : add(g?.used ?? ZERO, n.used),
      });
    }
    return { revision, nodes: out, groups: [...groups.values()].sort((a, b) => (a.group < b.group ? -1 : 1)) };
  }

  /** Sets the tenant-allocation gauge from the stored caps (summed over nodes). */
  async refreshMetrics(): Promise<void> {
    const gauge = this.options.metrics?.tenantAllocation;
    if (!gauge) return;
    const totals = new Map<string, ResourceVector>();
    for (const s of await repo.listAllocations(this.db))
      totals.set(
        s.tenantId,
        add(totals.get(s.tenantId) ?? ZERO, { connections: s.maxConnections, requestsPerSecond: s.requestsPerSecond }),
      );
    gauge.reset();
    for (const [tenant, v] of totals) {
      gauge.set({ tenant, resource: 'connections' }, v.connections);
      gauge.set({ tenant, resource: 'requests_per_second' }, v.requestsPerSecond);
    }
  }

  private reservedOn(t: Tenant, kind: NodeKind): ResourceVector {
    return toResourceVector(t.reservation, this.capacityModel[kind]);
  }

  /** The pure part of `plan`: health, the allocator, the reload cadence. */
  private planFrom(input: {
    revision: number;
    tenants: Tenant[];
    nodes: ProxyNode[];
    stored: StoredAllocation[];
    lastChange: Map<string, Date>;
    demand: TenantDemand[] | null;
    /** Placed (tenant, node) pairs, as `pair()` keys. */
    placed: ReadonlySet<string>;
  }): RebalancePlan {
    const now = this.now();
    const health = new Map(input.nodes.map((n) => [n.name, nodeHealth(n, now, this.options.heartbeatIntervalMs)]));
    const healthy = input.nodes.filter((n) => health.get(n.name)!.healthy);
    const served = new Set(healthy.map((n) => n.name));
    const active = new Set(input.tenants.map((t) => t.id));
    const result = computeAllocations({
      nodes: healthy.map((n) => ({ name: n.name, kind: n.kind, capacity: n.capacity })),
      tenants: input.tenants.map((t) => ({ id: t.id, reservation: t.reservation, limit: t.limit, weight: t.weight })),
      // Where placement put each tenant, on the nodes healthy now.
      assignments: input.tenants.map((t) => ({
        tenantId: t.id,
        nodes: healthy.filter((n) => input.placed.has(pair(t.id, n.name))).map((n) => n.name),
      })),
      demand: (input.demand ?? []).filter((d) => served.has(d.node) && active.has(d.tenantId)),
      current: input.stored
        .filter((s) => served.has(s.node))
        .map((s) => ({
          tenantId: s.tenantId,
          node: s.node,
          maxConnections: s.maxConnections,
          requestsPerSecond: s.requestsPerSecond,
        })),
      factors: this.capacityModel,
    });
    const byName = new Map(input.nodes.map((n) => [n.name, n]));
    const allocByPair = new Map(result.allocations.map((a) => [pair(a.tenantId, a.node), a]));
    const deferral = new Map<string, string | null>();
    for (const n of healthy)
      deferral.set(
        n.name,
        this.deferral(
          n,
          result.changes.filter((c) => c.node === n.name),
          allocByPair,
          input.lastChange.get(n.name),
          now,
        ),
      );
    const changes: PlannedChange[] = result.changes.map((c) => ({
      ...c,
      kind: byName.get(c.node)!.kind,
      deferred: deferral.get(c.node) ?? null,
    }));
    const summaries = new Map(result.nodes.map((s) => [s.node, s]));
    const nodes: PlannedNode[] = input.nodes.map((n) => {
      const h = health.get(n.name)!;
      const s = summaries.get(n.name);
      const storedHere = input.stored.filter((x) => x.node === n.name);
      return {
        node: n.name,
        kind: n.kind,
        group: n.group,
        zone: n.zone,
        healthy: h.healthy,
        unhealthyReason: h.reason,
        capacity: s?.capacity ?? toResourceVector(n.capacity, this.capacityModel[n.kind]),
        reserved:
          s?.reserved ??
          input.tenants
            .filter((t) => input.placed.has(pair(t.id, n.name)))
            .reduce((acc, t) => add(acc, this.reservedOn(t, n.kind)), ZERO),
        allocated:
          s?.allocated ??
          storedHere.reduce(
            (acc, x) => add(acc, { connections: x.maxConnections, requestsPerSecond: x.requestsPerSecond }),
            ZERO,
          ),
        tenants: s?.tenants ?? storedHere.length,
        overcommitted: s?.overcommitted ?? false,
      };
    });
    const storedByPair = new Map(input.stored.map((x) => [pair(x.tenantId, x.node), x]));
    // Caps of a tenant no longer served on a node (not active, or placed elsewhere) go.
    const gone = input.stored.filter((x) => !active.has(x.tenantId) || !input.placed.has(pair(x.tenantId, x.node)));
    const pending =
      changes.some((c) => c.deferred === null) ||
      gone.length > 0 ||
      result.allocations.some((a) => {
        const s = storedByPair.get(pair(a.tenantId, a.node));
        return deferral.get(a.node) === null && (s?.weight !== a.weight || s.ceiling !== a.ceiling);
      });
    const warnings = [...result.warnings];
    for (const n of nodes)
      if (!n.healthy) warnings.push(`node ${n.node} is unhealthy (${n.unhealthyReason}); its caps are not recomputed`);
    return {
      revision: input.revision,
      computedAt: new Date(now).toISOString(),
      demand: input.demand === null ? 'none' : 'stats',
      allocations: result.allocations,
      changes,
      removals: gone.map((s) => ({ tenantId: s.tenantId, node: s.node })),
      nodes,
      warnings: warnings.sort(),
      pending,
    };
  }

  /**
   * Every cap change on a node without a runtime path (no runtimeAddress: NGINX without its Lua
   * runtime channel, HAProxy without a Runtime API) is a reload; with one, NGINX takes caps at run
   * time like HAProxy and its changes go out with the plan. A reloading node's changes go out
   * together, at most once per cadence, unless one is urgent
   * (a tenant new on the node, a cap below the reservation being restored, a cap over the limit or
   * the node's capacity coming down).
   */
  private deferral(
    node: ProxyNode,
    changes: readonly AllocationChange[],
    allocs: Map<string, Allocation>,
    last: Date | undefined,
    now: number,
  ): string | null {
    if (changes.length === 0) return null;
    const reloads = node.runtimeAddress === null;
    if (!reloads || last === undefined) return null;
    const next = last.getTime() + this.options.reloadCadenceMs;
    if (now >= next) return null;
    const urgent = changes.some((c) => {
      const reserved = allocs.get(pair(c.tenantId, c.node))?.reserved[c.dimension] ?? 0;
      return (
        c.from === null ||
        c.from < reserved ||
        ((c.reason === 'limit' || c.reason === 'overcommitted') && c.to < c.from)
      );
    });
    if (urgent) return null;
    return `node ${node.name} reloads for every cap change (${node.kind === 'nginx' ? 'NGINX' : 'no Runtime API'}); changes are coalesced and go out at ${new Date(next).toISOString()} at the earliest`;
  }
}

/** A stored row already says what the plan's allocation says: nothing to write. */
function sameStored(s: StoredAllocation, a: Allocation): boolean {
  return (
    s.maxConnections === a.maxConnections &&
    s.requestsPerSecond === a.requestsPerSecond &&
    s.weight === a.weight &&
    s.ceiling === a.ceiling
  );
}

async function placementPairs(db: Db): Promise<Set<string>> {
  return new Set((await listPlacements(db)).map((p) => pair(p.tenantId, p.node)));
}
