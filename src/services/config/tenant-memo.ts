import type { TenantState } from '../../db/desired-state-repository.js';
import type { NodeKind } from '../../domain/node.js';
import { tenantStateHash } from './tenant-state-hash.js';
import { tenantStructureKey } from './tenant-structure-key.js';

/**
 * Per-tenant work that outlives one load of the desired state. Every load yields new objects,
 * even for tenants nothing touched; `intern` swaps each unchanged tenant for the object loaded
 * before (same content hash, so the same state), and everything memoized on that object (its
 * hash and structure here, its decrypted snapshot and runtime view elsewhere) carries over.
 * Loads are incremental (DesiredStateCache), so a change to one tenant among thousands costs
 * that tenant's work alone.
 */
export class TenantMemo {
  private readonly hashes = new WeakMap<TenantState, string>();
  private readonly structures: Record<NodeKind, WeakMap<TenantState, string>> = {
    haproxy: new WeakMap(),
    nginx: new WeakMap(),
  };

  hash(t: TenantState): string {
    let h = this.hashes.get(t);
    if (h === undefined) {
      h = tenantStateHash(t);
      this.hashes.set(t, h);
    }
    return h;
  }

  /** What a node of `kind` must reload for (see domain/structural.ts), as comparable text. */
  structure(t: TenantState, kind: NodeKind): string {
    let s = this.structures[kind].get(t);
    if (s === undefined) {
      s = tenantStructureKey(t, kind);
      this.structures[kind].set(t, s);
    }
    return s;
  }

  /** `tenants` with each one whose content equals its object in `previous` replaced by that object. */
  intern(tenants: readonly TenantState[], previous: Pick<ReadonlyMap<string, TenantState>, 'get'>): TenantState[] {
    return tenants.map((t) => {
      const before = previous.get(t.tenant.id);
      return before !== undefined && this.hash(before) === this.hash(t) ? before : t;
    });
  }
}
