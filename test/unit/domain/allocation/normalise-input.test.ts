import { describe, expect, it } from 'vitest';
import type { AllocationInput } from '../../../../src/domain/allocation/allocation-types.js';
import { normaliseInput } from '../../../../src/domain/allocation/normalise-input.js';
import type { CapacityModel } from '../../../../src/domain/capacity.js';

const UNIT_FACTORS = { connectionsPerGb: 1024, requestsPerSecondPerVcpu: 1000 };
const UNIT_MODEL: CapacityModel = { haproxy: UNIT_FACTORS, nginx: UNIT_FACTORS };
const units = (n: number) => ({ vcpu: n / 1000, memoryMb: n });

function normalise(over: Partial<AllocationInput>) {
  const warnings: string[] = [];
  const input: AllocationInput = { nodes: [], tenants: [], assignments: [], ...over };
  return { ...normaliseInput(input, UNIT_MODEL, warnings), warnings };
}

describe('normaliseInput', () => {
  it('sorts tenants and nodes, keeps the first of each repeated id, and refers to tenants by index', () => {
    const out = normalise({
      nodes: [
        { name: 'n2', kind: 'haproxy', capacity: units(10) },
        { name: 'n1', kind: 'nginx', capacity: units(10) },
      ],
      tenants: [
        { id: 'b', reservation: units(1), limit: units(5), weight: 1 },
        { id: 'a', reservation: units(2), limit: units(5), weight: 1 },
        { id: 'a', reservation: units(3), limit: units(5), weight: 1 },
      ],
      assignments: [
        { tenantId: 'b', nodes: ['n1'] },
        { tenantId: 'a', nodes: ['n1', 'n9'] },
      ],
    });
    expect(out.tenants.map((t) => [t.id, t.reservation.memoryMb])).toEqual([
      ['a', 2],
      ['b', 1],
    ]);
    expect(out.nodes.map((n) => n.name)).toEqual(['n1', 'n2']);
    expect(out.members).toEqual(
      new Map([
        ['n1', [0, 1]],
        ['n9', [0]],
      ]),
    );
  });

  it('when an assignment names an unknown tenant, then it is skipped with a warning', () => {
    expect(normalise({ assignments: [{ tenantId: 'ghost', nodes: ['n1'] }] }).warnings).toEqual([
      'assignment for unknown tenant ghost; skipped',
    ]);
  });

  it('adds up repeated demand for a pair, is saturated when any entry is, and keeps the lowest repeated current caps', () => {
    const out = normalise({
      demand: [
        { tenantId: 'a', node: 'n1', connections: 10, requestsPerSecond: 1 },
        {
          tenantId: 'a',
          node: 'n1',
          connections: 5,
          requestsPerSecond: Number.NaN,
          saturated: { connections: false, requestsPerSecond: true },
        },
      ],
      current: [
        { tenantId: 'a', node: 'n1', maxConnections: 30, requestsPerSecond: 7 },
        { tenantId: 'a', node: 'n1', maxConnections: 20, requestsPerSecond: 9 },
      ],
    });
    expect(out.demand.get('n1')?.get('a')).toEqual({ connections: 15, requestsPerSecond: 1 });
    expect(out.saturation.get('n1')?.get('a')).toEqual({ connections: false, requestsPerSecond: true });
    expect(out.current.get('n1')?.get('a')).toEqual({ connections: 20, requestsPerSecond: 7 });
  });

  it('converts bounds once per node kind, and lifts a limit below the reservation up to it', () => {
    const out = normalise({
      nodes: [{ name: 'n1', kind: 'haproxy', capacity: units(10) }],
      tenants: [{ id: 'a', reservation: units(4), limit: units(2), weight: 1 }],
    });
    expect([...out.bounds.keys()]).toEqual(['haproxy']);
    expect(out.bounds.get('haproxy')).toEqual([
      { reserved: { connections: 4, requestsPerSecond: 4 }, limit: { connections: 4, requestsPerSecond: 4 } },
    ]);
  });
});
