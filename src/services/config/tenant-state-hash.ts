import { createHash } from 'node:crypto';
import type { TenantState } from '../../db/desired-state-repository.js';

/** SHA-256 of a tenant's stored state as loaded: what render states record as `good_hash`. */
export function tenantStateHash(t: TenantState): string {
  return createHash('sha256').update(JSON.stringify(t)).digest('hex');
}
