import { createHash } from 'node:crypto';
import { tenantStructure } from '../../domain/structural.js';
import type { TenantState } from '../../db/desired-state-repository.js';

// A last good state comes back from a jsonb column, which reorders keys: compare canonical JSON.
import { canonicalJson } from '../../domain/canonical-json.js';

/** SHA-256 of a tenant's stored state as loaded: what render states record as `good_hash`. */
export function stateHash(t: TenantState): string {
  return createHash('sha256').update(JSON.stringify(t)).digest('hex');
}

/**
 * One tenant's structure as comparable text: equal for two states exactly when the Runtime API
 * turns one into the other. Read from the stored state, so no certificate key is opened for it.
 */
export function structureKey(t: TenantState): string {
  return canonicalJson(tenantStructure({ id: t.tenant.id, vips: t.vips, pools: t.pools, certificates: t.certificates, caBundles: t.caBundles ?? [] }));
}

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
  private readonly structures = new WeakMap<TenantState, string>();

  hash(t: TenantState): string {
    let h = this.hashes.get(t);
    if (h === undefined) {
      h = stateHash(t);
      this.hashes.set(t, h);
    }
    return h;
  }

  structure(t: TenantState): string {
    let s = this.structures.get(t);
    if (s === undefined) {
      s = structureKey(t);
      this.structures.set(t, s);
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

/**
 * The last validated state of each tenant per node kind (the good state of its render state),
 * by the hash it was recorded with: read from the database once per validated version (or
 * handed over by the build that validated it), not on every runtime pass.
 */
export class ValidatedStates {
  private readonly states = new Map<string, { readonly hash: string; readonly state: TenantState }>();

  get(kind: string, tenant: string, hash: string): TenantState | undefined {
    const known = this.states.get(`${kind}\0${tenant}`);
    return known?.hash === hash ? known.state : undefined;
  }

  remember(kind: string, tenant: string, hash: string, state: TenantState): void {
    this.states.set(`${kind}\0${tenant}`, { hash, state });
  }

  /** Drops what the database no longer names as the kind's good states (a newer version, a deleted tenant). */
  retain(kind: string, current: ReadonlyMap<string, { readonly goodHash: string | null }>): void {
    const prefix = `${kind}\0`;
    for (const [key, { hash }] of this.states) {
      if (!key.startsWith(prefix)) continue;
      if (current.get(key.slice(prefix.length))?.goodHash !== hash) this.states.delete(key);
    }
  }
}
