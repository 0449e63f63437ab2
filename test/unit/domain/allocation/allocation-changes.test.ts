import { describe, expect, it } from 'vitest';
import { addChanges } from '../../../../src/domain/allocation/allocation-changes.js';
import type {
  Allocation,
  AllocationChange,
  AllocationReason,
} from '../../../../src/domain/allocation/allocation-types.js';

function allocation(
  connections: number,
  rate: number,
  reason: AllocationReason,
  over: Partial<Allocation> = {},
): Allocation {
  return {
    tenantId: 'a',
    node: 'n1',
    maxConnections: connections,
    ceiling: 1000,
    requestsPerSecond: rate,
    weight: 256,
    reserved: { connections: 100, requestsPerSecond: 100 },
    limit: { connections: 1000, requestsPerSecond: 1000 },
    demand: { connections: 400, requestsPerSecond: 80 },
    saturated: { connections: false, requestsPerSecond: false },
    target: { connections, requestsPerSecond: rate },
    reasons: { connections: reason, requestsPerSecond: reason },
    ...over,
  };
}

function changes(a: Allocation, before: { connections: number; requestsPerSecond: number } | null): AllocationChange[] {
  const out: AllocationChange[] = [];
  addChanges(out, a, before, 0.25);
  return out;
}

describe('addChanges', () => {
  it('when a tenant is new on the node, then both caps are listed as changes from null, connections first', () => {
    expect(changes(allocation(500, 100, 'demand'), null).map((c) => [c.dimension, c.from, c.to])).toEqual([
      ['connections', null, 500],
      ['requestsPerSecond', null, 100],
    ]);
  });

  it('lists only the dimensions whose cap moved', () => {
    expect(
      changes(allocation(500, 100, 'demand'), { connections: 400, requestsPerSecond: 100 }).map((c) => c.dimension),
    ).toEqual(['connections']);
  });

  it('explains a change by its reason, the demand seen and the bound that applies', () => {
    const [c] = changes(allocation(500, 100, 'demand'), { connections: 400, requestsPerSecond: 100 });
    expect(c).toEqual({
      tenantId: 'a',
      node: 'n1',
      dimension: 'connections',
      from: 400,
      to: 500,
      reason: 'demand',
      detail: 'connections 400 → 500: demand 400 connections plus 25% headroom, within the limit of 1000 connections',
    });
    const held = changes(allocation(450, 100, 'held', { target: { connections: 480, requestsPerSecond: 100 } }), {
      connections: 400,
      requestsPerSecond: 100,
    });
    expect(held[0]!.detail).toBe("connections 400 → 450: kept by hysteresis; the model's target is 480 connections");
  });

  it('says when the tenant was refused at its cap, and when there is no demand signal', () => {
    const saturated = allocation(100, 200, 'fair-share', {
      saturated: { connections: false, requestsPerSecond: true },
    });
    expect(changes(saturated, { connections: 100, requestsPerSecond: 100 })[0]!.detail).toBe(
      "requestsPerSecond 100 → 200: demand 80 req/s, refused at its cap (probing upward, ×2) plus 25% headroom; the node's spare capacity is shared by weight",
    );
    const silent = allocation(100, 100, 'reservation', { demand: null });
    expect(changes(silent, null)[0]!.detail).toBe(
      'connections new → 100: no demand signal; the reservation of 100 connections stands',
    );
  });
});
