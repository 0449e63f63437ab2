import type { CapacityModel } from '../../domain/capacity.js';
import type { NodeSettings, TenantSnapshot } from '../../domain/snapshot.js';
import type { SealedCertificate } from '../../db/certificate-repository.js';
import type { TenantState } from '../../db/desired-state-repository.js';
import type { SecretBox } from '../secret-box.js';
import { AlignedMemo } from '../../util/aligned.js';
import { tenantAllocation } from './tenant-allocation.js';

/**
 * Each tenant state as a node renders it: certificate keys opened, caps worked out for the node.
 * Snapshots are kept per stored state (a WeakMap: they go with the state), so a build's several
 * renders, and the next build while the tenant is unchanged, reuse them and the renderers'
 * fragment caches keyed by them.
 */
export class TenantSnapshots {
  /** Per state, its snapshot per kind and caps: nodes whose caps agree share one. */
  private readonly shared = new WeakMap<TenantState, Map<string, TenantSnapshot>>();
  /** Per node, each state's snapshot there (the caps depend on the node and its settings). */
  private readonly perNode = new Map<
    string,
    {
      readonly settingsKey: string;
      readonly byState: WeakMap<TenantState, TenantSnapshot>;
      /** The node's last whole list of snapshots, which the next one is lined up with. */
      readonly list: AlignedMemo<TenantState, TenantSnapshot>;
      readonly of: (t: TenantState) => TenantSnapshot;
    }
  >();

  constructor(
    private readonly box: SecretBox,
    private readonly capacity: CapacityModel,
  ) {}

  /** The tenant's snapshot on a node with these settings. */
  of(t: TenantState, node: NodeSettings): TenantSnapshot {
    return this.forNode(node)(t);
  }

  /**
   * `of` for the many tenants of one node: the node's table is found once, and each tenant costs
   * one lookup (a build asks for every tenant of the node, twice).
   */
  forNode(node: NodeSettings): (t: TenantState) => TenantSnapshot {
    return this.tableOf(node).of;
  }

  /**
   * The snapshots of a node's tenants, lined up with the last list asked for on that node
   * (`mapAligned`): a build's tenants that did not change cost a pointer comparison each.
   */
  listFor(node: NodeSettings, states: readonly TenantState[]): readonly TenantSnapshot[] {
    return this.tableOf(node).list.map(states).out;
  }

  private tableOf(node: NodeSettings) {
    // The same state on the same node is the same snapshot: one lookup, without working out its caps.
    const settingsKey = `${node.kind}\0${node.capacity.vcpu}\0${node.capacity.memoryMb}`;
    let perNode = this.perNode.get(node.name);
    if (perNode?.settingsKey !== settingsKey) {
      const byState = new WeakMap<TenantState, TenantSnapshot>();
      const of = (t: TenantState): TenantSnapshot => {
        const known = byState.get(t);
        if (known !== undefined) return known;
        const snapshot = this.sharedSnapshot(t, node);
        byState.set(t, snapshot);
        return snapshot;
      };
      perNode = { settingsKey, byState, list: new AlignedMemo(of), of };
      this.perNode.set(node.name, perNode);
    }
    return perNode;
  }

  private sharedSnapshot(t: TenantState, node: NodeSettings): TenantSnapshot {
    const byKind = this.shared.get(t) ?? new Map<string, TenantSnapshot>();
    this.shared.set(t, byKind);
    // Nodes of a kind whose caps agree share one snapshot (and so the renderers' fragment caches).
    const allocation = tenantAllocation(t, node, this.capacity);
    const key = `${node.kind}:${allocation.maxConnections}:${allocation.requestsPerSecond}:${allocation.connectionLimit}`;
    const cached = byKind.get(key);
    if (cached) return cached;
    const snapshot = this.build(t, allocation);
    byKind.set(key, snapshot);
    return snapshot;
  }

  private build(t: TenantState, allocation: TenantSnapshot['allocation']): TenantSnapshot {
    return {
      id: t.tenant.id,
      vips: t.vips,
      pools: t.pools,
      certificates: t.certificates.map((c: SealedCertificate) => ({
        name: c.name,
        chainPem: c.chainPem,
        keyPem: this.box.open(c.keyCiphertext, `certificate:${t.tenant.id}/${c.name}`),
        sans: c.sans,
      })),
      caBundles: t.caBundles ?? [],
      allocation,
    };
  }
}
