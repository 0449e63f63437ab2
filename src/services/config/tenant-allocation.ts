import { toResourceVector, type CapacityModel } from '../../domain/capacity.js';
import type { NodeSettings, TenantSnapshot } from '../../domain/snapshot.js';
import type { TenantState } from '../../db/desired-state-repository.js';

/** The tenant's caps on this node: its stored caps there (the rebalancer's), else what it reserved. */
export function tenantAllocation(
  t: TenantState,
  node: Pick<NodeSettings, 'name' | 'kind'>,
  capacity: CapacityModel,
): TenantSnapshot['allocation'] {
  const factors = capacity[node.kind];
  const stored = t.allocations?.find((a) => a.node === node.name);
  const converted = toResourceVector(t.tenant.reservation, factors);
  const maxConnections = Math.max(1, stored?.maxConnections ?? converted.connections);
  const requestsPerSecond = Math.max(1, stored?.requestsPerSecond ?? converted.requestsPerSecond);
  // The rebalancer's ceiling (capacity less the others' reservations); before its first pass, the limit.
  const ceiling = stored?.ceiling ?? toResourceVector(t.tenant.limit, factors).connections;
  return { maxConnections, requestsPerSecond, connectionLimit: Math.max(maxConnections, ceiling) };
}
