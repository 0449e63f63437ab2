import type { TenantState } from '../../db/desired-state-repository.js';

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
  retain(kind: string, current: Pick<ReadonlyMap<string, { readonly goodHash: string | null }>, 'get'>): void {
    const prefix = `${kind}\0`;
    for (const [key, { hash }] of this.states) {
      if (!key.startsWith(prefix)) continue;
      if (current.get(key.slice(prefix.length))?.goodHash !== hash) this.states.delete(key);
    }
  }
}
