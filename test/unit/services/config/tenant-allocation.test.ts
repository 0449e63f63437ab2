import { describe, expect, it } from 'vitest';
import type { TenantState } from '../../../../src/db/desired-state-repository.js';
import { DEFAULT_CAPACITY_MODEL, toResourceVector } from '../../../../src/domain/capacity.js';
import { tenantAllocation } from '../../../../src/services/config/tenant-allocation.js';

const reservation = { vcpu: 0.5, memoryMb: 256 };
const limit = { vcpu: 2, memoryMb: 1024 };
const tenant = (allocations?: TenantState['allocations']): TenantState =>
  ({
    tenant: { id: 't1', reservation, limit },
    vips: [],
    pools: [],
    certificates: [],
    allocations,
  }) as unknown as TenantState;
const node = { name: 'edge-1', kind: 'haproxy' as const };
const factors = DEFAULT_CAPACITY_MODEL.haproxy;

describe('tenantAllocation', () => {
  it('when the rebalancer stored caps for the node, then they apply, with its ceiling as the connection limit', () => {
    const t = tenant([
      { node: 'edge-1', maxConnections: 300, requestsPerSecond: 40, ceiling: 900 },
      { node: 'edge-2', maxConnections: 1, requestsPerSecond: 1, ceiling: 1 },
    ]);
    expect(tenantAllocation(t, node, DEFAULT_CAPACITY_MODEL)).toEqual({
      maxConnections: 300,
      requestsPerSecond: 40,
      connectionLimit: 900,
    });
  });

  it('when it has not (a first pass, another node), then the reservation applies, and the limit caps connections', () => {
    const reserved = toResourceVector(reservation, factors);
    expect(
      tenantAllocation(
        tenant([{ node: 'edge-2', maxConnections: 1, requestsPerSecond: 1 }]),
        node,
        DEFAULT_CAPACITY_MODEL,
      ),
    ).toEqual({
      maxConnections: reserved.connections,
      requestsPerSecond: reserved.requestsPerSecond,
      connectionLimit: toResourceVector(limit, factors).connections,
    });
  });

  it('never answers less than one connection or request per second, nor a limit below the cap', () => {
    const t = tenant([{ node: 'edge-1', maxConnections: 0, requestsPerSecond: 0, ceiling: 0 }]);
    expect(tenantAllocation(t, node, DEFAULT_CAPACITY_MODEL)).toEqual({
      maxConnections: 1,
      requestsPerSecond: 1,
      connectionLimit: 1,
    });
  });
});
