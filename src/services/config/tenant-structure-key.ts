import type { NodeKind } from '../../domain/node.js';
import { tenantStructure } from '../../domain/structural.js';
import type { TenantState } from '../../db/desired-state-repository.js';
// A last good state comes back from a jsonb column, which reorders keys: compare canonical JSON.
import { canonicalJson } from '../../domain/canonical-json.js';

/**
 * One tenant's structure as comparable text: equal for two states exactly when the Runtime API
 * turns one into the other. Read from the stored state, so no certificate key is opened for it.
 */
export function tenantStructureKey(t: TenantState, kind: NodeKind = 'haproxy'): string {
  return canonicalJson(
    tenantStructure(
      {
        id: t.tenant.id,
        vips: t.vips,
        pools: t.pools,
        certificates: t.certificates,
        caBundles: t.caBundles ?? [],
      },
      kind,
    ),
  );
}
