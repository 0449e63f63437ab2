import { listPlacements } from '../db/placement-repository.js';
import { NotFoundError } from '../domain/errors.js';
import type { MemberHealthStatus } from '../domain/member-health.js';
import type { ProxyNode } from '../domain/node.js';
import { decideConvergence, type NotConvergedCause } from '../domain/node-convergence.js';
import type { Db } from '../db/connect.js';
import { latestConfigVersion, type StoredConfigVersion } from '../db/config-repository.js';
import { listTenantHealth } from '../db/member-health-repository.js';
import { listNodes } from '../db/node-repository.js';
import { findTenant } from '../db/tenant-repository.js';
import { listVips } from '../db/vip-repository.js';

export interface NodeConvergence {
  readonly node: string;
  readonly kind: string;
  /** The node is converged (see domain/node-convergence.ts) and this tenant is not held on it. */
  readonly converged: boolean;
  readonly desiredRevision: number | null;
  readonly appliedRevision: number | null;
  readonly runtimePending: number;
  /** Why this node is not converged, in words, or null. */
  readonly waitingFor: string | null;
  /** The same as a code: the node's (see NotConvergedCause), `held`, or null when converged. */
  readonly cause: NotConvergedCause | 'held' | null;
  /**
   * This tenant is held at an older state on the node: its current state failed validation
   * (`cause: validation`), or the node could not bind its new listeners (`cause: reload`).
   */
  readonly held: {
    readonly error: string;
    readonly servingRevision: number | null;
    readonly cause: 'validation' | 'reload';
  } | null;
  readonly lastHeartbeatAt: string | null;
}

export interface TenantStatus {
  readonly tenant: string;
  readonly state: string;
  readonly converged: boolean;
  readonly nodes: readonly NodeConvergence[];
  readonly vips: readonly {
    readonly name: string;
    readonly address: string;
    readonly port: number;
    readonly converged: boolean;
  }[];
  readonly members: readonly {
    readonly pool: string;
    readonly member: string;
    readonly health: readonly {
      node: string;
      status: MemberHealthStatus;
      checkStatus: string | null;
      updatedAt: string;
    }[];
  }[];
}

/**
 * How far the fleet has converged on a tenant's desired state, and each member's health as the
 * proxies report it. The nodes that count are the ones the tenant is placed on.
 */
export class StatusService {
  constructor(
    private readonly db: Db,
    /** The agents' heartbeat interval: a node silent for 3 of them is not converged. */
    private readonly heartbeatIntervalMs: number,
  ) {}

  async tenant(tenantId: string): Promise<TenantStatus> {
    const tenant = await findTenant(this.db, tenantId);
    if (!tenant) throw new NotFoundError('tenant', tenantId);
    const placed = new Set((await listPlacements(this.db, { tenantId })).map((p) => p.node));
    const nodes = tenant.state === 'active' ? (await this.allNodes()).filter((n) => placed.has(n.name)) : [];
    const now = Date.now();
    const convergence = await Promise.all(
      nodes.map(async (n) =>
        nodeConvergence(
          n,
          await latestConfigVersion(this.db, n.name, { files: false }),
          tenantId,
          now,
          this.heartbeatIntervalMs,
        ),
      ),
    );
    const vips = await listVips(this.db, tenantId, { limit: 10_000 });
    const health = await listTenantHealth(this.db, tenantId);
    const members = new Map<string, TenantStatus['members'][number]>();
    for (const h of health) {
      const key = `${h.pool}/${h.member}`;
      const entry = members.get(key) ?? { pool: h.pool, member: h.member, health: [] };
      (entry.health as TenantStatus['members'][number]['health'][number][]).push({
        node: h.node,
        status: h.status,
        checkStatus: h.checkStatus,
        updatedAt: h.updatedAt,
      });
      members.set(key, entry);
    }
    const converged = convergence.every((c) => c.converged);
    return {
      tenant: tenantId,
      state: tenant.state,
      converged,
      nodes: convergence,
      vips: vips.map((v) => ({ name: v.name, address: v.address, port: v.port, converged })),
      members: [...members.values()],
    };
  }

  private async allNodes(): Promise<ProxyNode[]> {
    return listNodes(this.db, { limit: 10_000 });
  }
}

/**
 * Pure: whether a node runs what it should for this tenant, and if not, what it waits for: the
 * node-wide rule (decideConvergence), then whether this tenant is held at an older state on it.
 * `latest` is the node's newest stored config version (the one its status names).
 */
export function nodeConvergence(
  node: ProxyNode,
  latest: StoredConfigVersion | undefined,
  tenantId: string,
  now: number,
  heartbeatIntervalMs: number,
): NodeConvergence {
  const held = latest?.heldTenants.find((h) => h.tenant === tenantId);
  // The version read here may be newer than the one the node row was read with: judge against it.
  const verdict = decideConvergence(
    { ...node, status: { ...node.status, desiredHash: latest?.contentHash ?? null } },
    now,
    heartbeatIntervalMs,
  );
  const heldWaiting =
    !verdict.converged || !held
      ? null
      : held.cause === 'reload'
        ? "the tenant's listeners to bind on the node (held at the state the node runs; see held.error)"
        : 'a valid state for this tenant (held at its last good state)';
  return {
    node: node.name,
    kind: node.kind,
    converged: verdict.converged && heldWaiting === null,
    desiredRevision: latest?.revision ?? null,
    appliedRevision: node.appliedRevision,
    runtimePending: node.status.runtime.pending,
    waitingFor: verdict.waitingFor ?? heldWaiting,
    cause: verdict.cause ?? (heldWaiting === null ? null : 'held'),
    held: held ? { error: held.error, servingRevision: held.servingRevision, cause: held.cause ?? 'validation' } : null,
    lastHeartbeatAt: node.lastHeartbeatAt,
  };
}
