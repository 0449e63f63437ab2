import { describe, expect, it } from 'vitest';
import { checkReservationFits } from '../../../../src/domain/placement/check-reservation-fits.js';
import { planPlacement } from '../../../../src/domain/placement/plan-placement.js';
import type {
  PlacementInput,
  PlacementNode,
  PlacementTenant,
} from '../../../../src/domain/placement/placement-types.js';

const BIG = { vcpu: 8, memoryMb: 16_384 };

function node(name: string, zone: string, capacity = BIG): PlacementNode {
  return { name, kind: 'haproxy', group: 'default', zone, capacity, healthy: true };
}

function tenant(id: string, vcpu: number, memoryMb: number): PlacementTenant {
  return {
    id,
    reservation: { vcpu, memoryMb },
    limit: { vcpu: vcpu * 2, memoryMb: memoryMb * 2 },
    weight: 100,
    kind: 'haproxy',
  };
}

describe('checkReservationFits', () => {
  const nodes = [node('a1', 'a'), node('b1', 'b'), node('c1', 'c', { vcpu: 2, memoryMb: 4096 })];
  const tenants = [tenant('x', 2, 4096), tenant('y', 4, 8192)];
  const input: PlacementInput = { nodes, tenants, current: planPlacement({ nodes, tenants }).assignments };

  it('accepts a reservation that fits and names the nodes it would use', () => {
    const check = checkReservationFits(input, 'x', { vcpu: 3, memoryMb: 4096 });
    expect(check).toMatchObject({ fits: true, nodes: ['a1', 'b1'] });
  });

  it('refuses a reservation with the 409 message saying how much is missing', () => {
    const check = checkReservationFits(input, 'y', { vcpu: 7, memoryMb: 8192 });
    expect(check.fits).toBe(false);
    if (check.fits) return;
    expect(check.message).toBe(
      'tenant y needs 7 vCPU / 8192 MB on 2 nodes of kind haproxy in group default; the best (a1) has 6 vCPU / 12288 MB free, 1 vCPU short',
    );
  });

  it('refuses a reservation that fits only by pushing another tenant out', () => {
    const two = [node('a1', 'a', { vcpu: 4, memoryMb: 4096 }), node('b1', 'b', { vcpu: 4, memoryMb: 4096 })];
    const ts = [tenant('x', 1, 1024), tenant('y', 3, 1024)];
    const cur = planPlacement({ nodes: two, tenants: ts }).assignments.map(({ tenantId, nodes: n }) => ({
      tenantId,
      nodes: n,
    }));
    const check = checkReservationFits({ nodes: two, tenants: ts, current: cur }, 'x', { vcpu: 2, memoryMb: 1024 });
    expect(check).toMatchObject({ fits: false, displaced: ['y'], shortfall: null });
  });

  it('admits a new tenant added to the input', () => {
    const check = checkReservationFits({ ...input, tenants: [...tenants, tenant('n', 1, 1024)] }, 'n', {
      vcpu: 1,
      memoryMb: 1024,
    });
    expect(check).toMatchObject({ fits: true });
  });

  it('throws for a tenant missing from the input, which is a caller bug', () => {
    expect(() => checkReservationFits(input, 'ghost', { vcpu: 1, memoryMb: 1 })).toThrow(/ghost/);
  });
});
