import { RELOADED_PREFIX } from './change-feed.js';
import { ConflictError, NotFoundError } from '../domain/errors.js';
import {
  createNodeSchema,
  formatRuntimeAddress,
  type CreateNode,
  type NodeReport,
  type PatchNode,
  type ProxyNode,
  type RuntimeAddress,
} from '../domain/node.js';
import { withConvergence, type NodeView } from '../domain/node-convergence.js';
import type { Db } from '../db/connect.js';
import { notifyChanges } from '../db/change-channel.js';
import { heldTenantsOfVersion, revisionsOfVersion } from '../db/config-repository.js';
import * as repo from '../db/node-repository.js';
import * as tokens from '../db/token-repository.js';
import * as holds from '../db/reload-hold-repository.js';
import { backoffDelay, type BackoffPolicy } from '../util/backoff.js';
import { describeBindFailure } from '../fleet/config-listeners.js';
import { REBUILD_PREFIX } from './change-feed.js';
import { checkIfMatch, mutate, type Tx, type WriteContext, type Written } from './mutation.js';
import { hashSecret, newSecret } from './token-service.js';
import { validate } from './validate.js';
import { fetchSize, toPage } from './page.js';
import type { PlacementService } from './placement-service.js';
import type { FleetPki } from './fleet-pki.js';

/** A registered node and the secret of its agent token, which this answer alone ever shows. */
export type RegisteredNode = NodeView & { readonly agentToken: string };

export interface NodePage {
  readonly items: NodeView[];
  readonly nextCursor: string | null;
}

/** The name of the agent token a node is registered with. */
export const agentTokenName = (node: string): string => `agent-${node}`;

/** The proxy fleet: admins register nodes; each node's agent authenticates with its own token. */
export class NodeService {
  constructor(
    private readonly db: Db,
    private readonly placement: Pick<PlacementService, 'replace'>,
    /** The agents' heartbeat interval: a node silent for 3 of them is not converged. */
    private readonly heartbeatIntervalMs: number,
    /** When a tenant held on a node for a listener that could not be bound is tried again. */
    private readonly holdRetry: BackoffPolicy = { initialMs: 10_000, factor: 2, maxMs: 300_000 },
    /** Issues a HAProxy node its Runtime API certificate when it is registered or its addresses change. */
    private readonly pki?: Pick<FleetPki, 'issueForNode'>,
  ) {}

  async get(name: string): Promise<NodeView> {
    const node = await repo.findNode(this.db, name);
    if (!node) throw new NotFoundError('node', name);
    return this.view(node);
  }

  /** Every node with its convergence verdict, by name (what the metrics export). */
  async all(): Promise<NodeView[]> {
    const out: NodeView[] = [];
    for (;;) {
      const page = await repo.listNodes(this.db, { limit: 500, after: out.at(-1)?.name });
      out.push(...page.map((n) => this.view(n)));
      if (page.length < 500) return out;
    }
  }

  /**
   * An agent's report on its node: heartbeat, applied config, or a failure with the proxy's own
   * message. An applied or failed report that names a version must name one built and still stored
   * for this node (ConflictError otherwise, and nothing is recorded).
   */
  async report(name: string, report: NodeReport): Promise<NodeView> {
    const node = await repo.findNode(this.db, name);
    if (!node) throw new NotFoundError('node', name);
    if (report.event !== 'heartbeat') await checkReportedVersion(this.db, name, report);
    await repo.recordReport(this.db, name, report, new Date());
    if (report.event === 'failed' && (report.failedListeners?.length ?? 0) > 0) await this.holdListeners(name, report);
    if (report.event === 'applied') await this.releaseHolds(name, report.contentHash!);
    if (report.event === 'applied' && report.reloaded) {
      // A reload forgets runtime changes pushed after the files were written: ask the leader's
      // reconciler to look at this node now rather than at its next timer pass.
      await notifyChanges(this.db, RELOADED_PREFIX + name);
    }
    return this.view((await repo.findNode(this.db, name))!);
  }

  /**
   * A reload the proxy refused because new listeners could not be bound: each listener's tenant is
   * held on this node at the state the node runs (the next build leaves its change out, so every
   * other tenant's changes go through) and tried again with backoff. A listener that belongs to
   * no VIP placed here blames nobody: the failure stays node-wide, in `status.lastError`.
   */
  private async holdListeners(node: string, report: NodeReport): Promise<void> {
    const failed = report.failedListeners ?? [];
    const owners = await holds.vipsBehind(this.db, node, failed);
    const byTenant = new Map<string, holds.HeldListener[]>();
    for (const f of failed) {
      const owner = owners.find((o) => o.address === f.address && o.port === f.port);
      if (owner === undefined) continue;
      byTenant.set(owner.tenant, [
        ...(byTenant.get(owner.tenant) ?? []),
        { vip: owner.vip, address: f.address, port: f.port, reason: f.reason },
      ]);
    }
    const now = new Date();
    for (const [tenant, listeners] of byTenant) {
      const words = listeners.map((l) => `VIP ${l.vip}: ${describeBindFailure(l)}`).join('; ');
      const reason = `held on node ${node}: ${words}; the node's reload failed, so the tenant stays at the state the node runs there and is tried again with backoff`;
      await holds.upsertHold(
        this.db,
        { node, tenant, listeners, reason },
        (attempts) => backoffDelay(this.holdRetry, attempts),
        now,
      );
    }
    // The leader's reconciler builds the node again now, without the held changes.
    if (byTenant.size > 0) await notifyChanges(this.db, REBUILD_PREFIX + node);
  }

  /** An applied version serves its tenants at their current state except those it lists as held: their holds end. */
  private async releaseHolds(node: string, contentHash: string): Promise<void> {
    const stillHeld = await heldTenantsOfVersion(this.db, node, contentHash);
    if (stillHeld === undefined) return;
    await holds.releaseHolds(this.db, node, stillHeld);
  }

  async list(q: { limit: number; cursor?: string | undefined }): Promise<NodePage> {
    const items = await repo.listNodes(this.db, { limit: fetchSize(q.limit), after: q.cursor });
    return toPage(
      items.map((n) => this.view(n)),
      q.limit,
      (x) => x.name,
    );
  }

  private view(node: ProxyNode): NodeView {
    return withConvergence(node, Date.now(), this.heartbeatIntervalMs);
  }

  /** Registers the node and its agent token in one transaction: no node without a way to fetch its config. */
  async create(ctx: WriteContext, input: CreateNode): Promise<Written<RegisteredNode>> {
    return mutate(this.db, ctx, async (tx) => {
      if (await repo.findNode(tx.db, input.name)) throw new ConflictError(`node '${input.name}' already exists`);
      await checkRuntimeAddressFree(tx.db, input.runtimeAddress, input.name);
      await checkVrrpAddressFree(tx.db, input.vrrp?.address ?? null, input.name);
      const inserted = await repo.insertNode(tx.db, input, tx.revision);
      await this.pki?.issueForNode(tx.db, inserted);
      const node = (await repo.findNode(tx.db, inserted.name))!;
      tx.audit({
        action: 'create',
        resourceType: 'node',
        resourceId: node.name,
        tenantId: null,
        before: null,
        after: node,
      });
      const agentToken = await createAgentToken(tx, node.name);
      // Tenants short of replicas (or with none yet) get them on the new node.
      await this.placement.replace(tx);
      return { ...this.view(node), agentToken };
    });
  }

  async patch(ctx: WriteContext, name: string, patch: PatchNode): Promise<Written<NodeView>> {
    return mutate(this.db, ctx, async (tx) => {
      const before = await repo.findNode(tx.db, name);
      if (!before) throw new NotFoundError('node', name);
      checkIfMatch(tx, `node '${name}'`, before.revision);
      // Re-check the cross-field rules on the merged node (an nginx node has no runtime API).
      const next = validate(createNodeSchema, 'body', {
        name,
        kind: before.kind,
        group: patch.group ?? before.group,
        zone: patch.zone ?? before.zone,
        host: patch.host === undefined ? before.host : patch.host,
        runtimeAddress: patch.runtimeAddress === undefined ? before.runtimeAddress : patch.runtimeAddress,
        masterAddress: patch.masterAddress === undefined ? before.masterAddress : patch.masterAddress,
        capacity: patch.capacity ?? before.capacity,
        configDir: patch.configDir ?? before.configDir,
        socketDir: patch.socketDir ?? before.socketDir,
        vrrp: patch.vrrp === undefined ? before.vrrp : patch.vrrp,
      });
      if (sameSpec(before, next)) return this.view(before);
      await checkRuntimeAddressFree(tx.db, next.runtimeAddress, name);
      await checkVrrpAddressFree(tx.db, next.vrrp?.address ?? null, name);
      const updated = await repo.updateNode(tx.db, next, tx.revision);
      // New addresses need a certificate that names them.
      await this.pki?.issueForNode(tx.db, updated);
      const after = (await repo.findNode(tx.db, name))!;
      tx.audit({ action: 'update', resourceType: 'node', resourceId: name, tenantId: null, before, after });
      // Capacity, group, zone or host may no longer fit the tenants it serves (or may fit more).
      await this.placement.replace(tx);
      return this.view(after);
    });
  }

  /** Removes the node; its agent token goes with it (ON DELETE CASCADE), so the agent is locked out. */
  async delete(ctx: WriteContext, name: string): Promise<Written<null>> {
    return mutate(this.db, ctx, async (tx) => {
      const before = await repo.findNode(tx.db, name);
      if (!before) throw new NotFoundError('node', name);
      checkIfMatch(tx, `node '${name}'`, before.revision);
      await repo.deleteNode(tx.db, name);
      tx.audit({ action: 'delete', resourceType: 'node', resourceId: name, tenantId: null, before, after: null });
      // Its tenants' placements went with it (ON DELETE CASCADE): give them replicas elsewhere.
      await this.placement.replace(tx);
      return null;
    });
  }
}

/**
 * A report may only name a config version that was built for this node and is still stored (the
 * newest 20 and the one the node runs, see pruneConfigVersions): its content hash, at a revision
 * from the one it was first built at to the newest that version stands for (an agent that fetched
 * it before an unrelated write advanced it reports the lower one). Anything else is made up, or about a version so old it
 * was pruned: it is refused, and the agent's next poll fetches and reports the current version.
 */
async function checkReportedVersion(db: Db, node: string, r: NodeReport): Promise<void> {
  if (r.contentHash === undefined && r.revision === undefined) return;
  if (r.contentHash !== undefined) {
    const revisions = await revisionsOfVersion(db, node, r.contentHash);
    if (revisions === undefined) {
      throw new ConflictError(
        `contentHash ${r.contentHash} is not a config version built for node '${node}' (or it is so old it was pruned); report what GET /v1/nodes/${node}/config served`,
        { field: 'contentHash' },
      );
    }
    if (r.revision !== undefined && r.revision > revisions.newest) {
      throw new ConflictError(
        `revision ${r.revision} is above ${revisions.newest}, the newest revision config version ${r.contentHash.slice(0, 12)} of node '${node}' was served at`,
        { field: 'revision' },
      );
    }
    if (r.revision !== undefined && revisions.first !== null && r.revision < revisions.first) {
      throw new ConflictError(
        `revision ${r.revision} is below ${revisions.first}, the revision config version ${r.contentHash.slice(0, 12)} of node '${node}' was first built at`,
        { field: 'revision' },
      );
    }
    return;
  }
  const latest = (await repo.findNode(db, node))?.status.desiredRevision ?? null;
  if (latest === null || r.revision! > latest) {
    throw new ConflictError(
      latest === null
        ? `revision ${r.revision}: no config version was built for node '${node}' yet`
        : `revision ${r.revision} is above ${latest}, the newest revision of a config version built for node '${node}'`,
      { field: 'revision' },
    );
  }
}

/** Two nodes on one Runtime API address would have one node's commands land on the other. */
async function checkRuntimeAddressFree(db: Db, address: RuntimeAddress | null, self: string): Promise<void> {
  if (address === null) return;
  const holder = await repo.findNodeByRuntimeAddress(db, address);
  if (holder && holder.name !== self) {
    throw new ConflictError(
      `runtime address ${formatRuntimeAddress(address)} is already used by node '${holder.name}'`,
      {
        node: holder.name,
      },
    );
  }
}

/** Peers tell each other apart by their unicast addresses: two nodes on one would take each other's adverts for their own. */
async function checkVrrpAddressFree(db: Db, address: string | null, self: string): Promise<void> {
  if (address === null) return;
  const holder = await repo.findNodeByVrrpAddress(db, address);
  if (holder && holder.name !== self) {
    throw new ConflictError(`vrrp.address ${address} is already the VRRP address of node '${holder.name}'`, {
      field: 'vrrp.address',
      node: holder.name,
    });
  }
}

/** The agent's token, scoped to its node; the secret is returned once and stored only as a hash. */
async function createAgentToken(tx: Tx, node: string): Promise<string> {
  const name = agentTokenName(node);
  if (await tokens.findTokenByName(tx.db, name)) {
    throw new ConflictError(`a token named '${name}' already exists; revoke it before registering node '${node}'`);
  }
  const secret = newSecret();
  const row = await tokens.insertToken(tx.db, {
    name,
    role: 'agent',
    tenantId: null,
    nodeName: node,
    secretHash: hashSecret(secret),
    expiresAt: null,
  });
  const token = tokens.toApiToken(row);
  tx.audit({
    action: 'create',
    resourceType: 'token',
    resourceId: token.id,
    tenantId: null,
    before: null,
    after: token,
  });
  return secret;
}

function sameSpec(a: ProxyNode, b: CreateNode): boolean {
  return (
    a.group === b.group &&
    a.zone === b.zone &&
    a.host === (b.host ?? a.name) &&
    a.capacity.vcpu === b.capacity.vcpu &&
    a.capacity.memoryMb === b.capacity.memoryMb &&
    a.configDir === b.configDir &&
    a.socketDir === b.socketDir &&
    formatRuntimeAddress(a.runtimeAddress) === formatRuntimeAddress(b.runtimeAddress) &&
    formatRuntimeAddress(a.masterAddress) === formatRuntimeAddress(b.masterAddress) &&
    JSON.stringify(a.vrrp) === JSON.stringify(b.vrrp)
  );
}
