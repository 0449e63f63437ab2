import type { NodeKind } from '../../domain/node.js';
import * as configs from '../../db/config-repository.js';
import type { Db } from '../../db/connect.js';
import type { TenantState } from '../../db/desired-state-repository.js';
import type { TenantMemo } from './tenant-memo.js';
import { ValidatedStates } from './validated-states.js';
import type { RenderStates } from './render-state-cache.js';

/**
 * The last validated state of tenants per node kind (what a held tenant is served at, and what
 * a runtime pass compares a changed tenant with): from memory when this version was seen before,
 * else read from the database in one round trip.
 */
export class LastGoodStates {
  private readonly validated = new ValidatedStates();

  constructor(
    private readonly db: Db,
    private readonly memo: TenantMemo,
  ) {}

  /** Those of these tenants that have a last validated state for the kind. */
  async of(kind: NodeKind, tenants: readonly string[], known: RenderStates): Promise<Map<string, TenantState>> {
    const out = new Map<string, TenantState>();
    const missing: string[] = [];
    for (const tenant of tenants) {
      const hash = known.get(tenant)?.goodHash ?? null;
      if (hash === null) continue;
      const good = this.validated.get(kind, tenant, hash);
      if (good === undefined) missing.push(tenant);
      else out.set(tenant, good);
    }
    for (const [tenant, { hash, state }] of await configs.goodStates(this.db, kind, missing)) {
      this.validated.remember(kind, tenant, hash, state as TenantState);
      out.set(tenant, state as TenantState);
    }
    return out;
  }

  /**
   * The last validated state of each served tenant whose current state differs from it (the
   * runtime snapshot compares their structures, or serves the validated one). Forgets what the
   * database no longer names. Throws when one was recorded again between the two reads.
   */
  async differingFrom(
    kind: NodeKind,
    served: readonly TenantState[],
    known: RenderStates,
  ): Promise<Map<string, TenantState>> {
    this.validated.retain(kind, known);
    const out = new Map<string, TenantState>();
    const missing: string[] = [];
    for (const t of served) {
      const goodHash = known.get(t.tenant.id)?.goodHash ?? null;
      if (goodHash === null || goodHash === this.memo.hash(t)) continue;
      const good = this.validated.get(kind, t.tenant.id, goodHash);
      if (good === undefined) missing.push(t.tenant.id);
      else out.set(t.tenant.id, good);
    }
    for (const [tenant, { hash, state: good }] of await configs.goodStates(this.db, kind, missing)) {
      this.validated.remember(kind, tenant, hash, good as TenantState);
      out.set(tenant, good as TenantState);
    }
    for (const tenant of missing) {
      // Recorded again between the two reads: the next pass, woken by that build's effects or the timer, sees it.
      if (!out.has(tenant))
        throw new Error(`the validated state of tenant ${tenant} changed while it was read; retrying`);
    }
    return out;
  }

  /** A state a committed build validated: runtime passes compare with it from memory instead of reading it back. */
  remember(kind: NodeKind, tenant: string, hash: string, state: TenantState): void {
    this.validated.remember(kind, tenant, hash, state);
  }
}
