import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { planPlacement } from '../../../../src/domain/placement/plan-placement.js';
import type {
  PlacementInput,
  PlacementNode,
  PlacementPlan,
  PlacementTenant,
} from '../../../../src/domain/placement/placement-types.js';
import { assertProperty, check, choices, scenario, type Rng } from '../../../support/property.js';

const BIG = { vcpu: 8, memoryMb: 16_384 };

function node(name: string, zone: string, capacity = BIG, extra: Partial<PlacementNode> = {}): PlacementNode {
  return { name, kind: 'haproxy', group: 'default', zone, capacity, healthy: true, ...extra };
}

function tenant(id: string, vcpu: number, memoryMb: number, extra: Partial<PlacementTenant> = {}): PlacementTenant {
  return {
    id,
    reservation: { vcpu, memoryMb },
    limit: { vcpu: vcpu * 2, memoryMb: memoryMb * 2 },
    weight: 100,
    kind: 'haproxy',
    ...extra,
  };
}

function nodesOf(plan: PlacementPlan, tenantId: string): readonly string[] {
  return plan.assignments.find((a) => a.tenantId === tenantId)?.nodes ?? [];
}

function placed(plan: PlacementPlan): Record<string, readonly string[]> {
  return Object.fromEntries(plan.assignments.map((a) => [a.tenantId, a.nodes]));
}

describe('planPlacement: behaviour', () => {
  it('never puts one tenant on two nodes of one host, and wants only as many replicas as there are hosts', () => {
    const plan = planPlacement({
      nodes: [
        node('a1', 'a', BIG, { host: 'm1' }),
        node('a2', 'a', BIG, { host: 'm1' }),
        node('b1', 'b', BIG, { host: 'm2' }),
      ],
      tenants: [tenant('x', 2, 4096)],
      minReplicas: 3,
    });
    expect(nodesOf(plan, 'x')).toEqual(['a1', 'b1']);
    expect(plan.degraded).toEqual([]);
  });

  it('keeps a tenant off the hosts its other proxy kind uses, drops a replica it has there, and is not short where every host is taken', () => {
    const nodes = [
      node('a1', 'a', BIG, { host: 'm1' }),
      node('b1', 'b', BIG, { host: 'm2' }),
      node('c1', 'c', BIG, { host: 'm3' }),
    ];
    const plan = planPlacement({
      nodes,
      tenants: [tenant('x', 2, 4096, { avoidHosts: new Set(['m1']) })],
      current: [{ tenantId: 'x', nodes: ['a1', 'b1'] }],
    });
    expect(nodesOf(plan, 'x')).toEqual(['b1', 'c1']);
    expect(plan.moves).toContainEqual(expect.objectContaining({ from: 'a1', to: 'c1', reason: 'host-shared' }));
    const none = planPlacement({
      nodes: nodes.slice(0, 1),
      tenants: [tenant('y', 1, 1024, { avoidHosts: new Set(['m1']) })],
    });
    // Every host here already serves y with its other kind: that kind serves it, and nothing is short.
    expect(nodesOf(none, 'y')).toEqual([]);
    expect([...none.unplaceable, ...none.degraded]).toEqual([]);
  });

  it('puts a new tenant on two nodes in different zones', () => {
    const plan = planPlacement({
      nodes: [node('a1', 'a'), node('a2', 'a'), node('b1', 'b')],
      tenants: [tenant('x', 2, 4096)],
    });
    expect(nodesOf(plan, 'x')).toEqual(['a1', 'b1']);
    expect(plan.moves.map((m) => [m.from, m.to, m.reason])).toEqual([
      [null, 'a1', 'new-tenant'],
      [null, 'b1', 'new-tenant'],
    ]);
  });

  it('holds the whole reservation on each node a tenant is placed on, so failover keeps the guarantee', () => {
    const plan = planPlacement({ nodes: [node('a1', 'a'), node('b1', 'b')], tenants: [tenant('x', 2, 4096)] });
    expect(plan.nodes.map((n) => [n.node, n.reserved, n.free])).toEqual([
      ['a1', { vcpu: 2, memoryMb: 4096 }, { vcpu: 6, memoryMb: 12_288 }],
      ['b1', { vcpu: 2, memoryMb: 4096 }, { vcpu: 6, memoryMb: 12_288 }],
    ]);
  });

  it('never books a node past its capacity: the tenant that does not fit goes elsewhere', () => {
    const nodes = [
      node('a1', 'a', { vcpu: 4, memoryMb: 8192 }),
      node('b1', 'b', { vcpu: 4, memoryMb: 8192 }),
      node('c1', 'c'),
    ];
    const plan = planPlacement({ nodes, tenants: [tenant('x', 3, 1024), tenant('y', 3, 1024)] });
    for (const n of plan.nodes) expect(n.reserved.vcpu).toBeLessThanOrEqual(n.capacity.vcpu);
    expect(placed(plan)).toEqual({ x: ['a1', 'c1'], y: ['b1', 'c1'] });
  });

  it('keeps a tenant where it is while its nodes are healthy and have room, even if a fresh plan would differ', () => {
    const input = {
      nodes: [node('a1', 'a'), node('a2', 'a'), node('b1', 'b'), node('b2', 'b')],
      tenants: [tenant('x', 2, 4096)],
    };
    const plan = planPlacement({ ...input, current: [{ tenantId: 'x', nodes: ['a2', 'b2'] }] });
    expect(nodesOf(plan, 'x')).toEqual(['a2', 'b2']);
    expect(plan.moves).toEqual([]);
  });

  it('when a node becomes unhealthy, only its tenants move, each to a node with room in the same zone if there is one', () => {
    const nodes = [node('a1', 'a'), node('a2', 'a'), node('b1', 'b'), node('b2', 'b')];
    const tenants = [tenant('x', 2, 4096), tenant('y', 1, 2048), tenant('z', 1, 2048)];
    const before = planPlacement({ nodes, tenants });
    const onB1 = before.assignments.filter((a) => a.nodes.includes('b1')).map((a) => a.tenantId);
    expect(onB1.length).toBeGreaterThan(0);
    const after = planPlacement({
      nodes: nodes.map((n) => (n.name === 'b1' ? { ...n, healthy: false } : n)),
      tenants,
      current: before.assignments,
    });
    expect(after.moves.map((m) => m.tenantId).sort()).toEqual(onB1.sort());
    for (const m of after.moves) {
      expect(m).toMatchObject({ from: 'b1', to: 'b2', reason: 'node-unhealthy' });
      expect(m.detail).toMatch(/^node b1 is unhealthy; node b2 \(zone b\) has room/);
    }
  });

  it('when an unhealthy node comes back, nothing moves back to it', () => {
    const nodes = [node('a1', 'a'), node('a2', 'a'), node('b1', 'b'), node('b2', 'b')];
    const tenants = [tenant('x', 2, 4096), tenant('y', 1, 2048)];
    const healthy = planPlacement({ nodes, tenants });
    const down = planPlacement({
      nodes: nodes.map((n) => (n.name === 'a1' ? { ...n, healthy: false } : n)),
      tenants,
      current: healthy.assignments,
    });
    const back = planPlacement({ nodes, tenants, current: down.assignments });
    expect(back.moves).toEqual([]);
    expect(back.nodes.find((n) => n.node === 'a1')).toMatchObject({ tenants: 0, eligible: true });
  });

  it('when a returning node restores a lost zone, one replica per tenant moves back to spread zones again', () => {
    const nodes = [node('a1', 'a'), node('a2', 'a'), node('b1', 'b')];
    const tenants = [tenant('x', 2, 4096)];
    const down = planPlacement({
      nodes: nodes.map((n) => (n.name === 'b1' ? { ...n, healthy: false } : n)),
      tenants,
      current: [{ tenantId: 'x', nodes: ['a1', 'b1'] }],
    });
    expect(nodesOf(down, 'x')).toEqual(['a1', 'a2']);
    const back = planPlacement({ nodes, tenants, current: down.assignments });
    expect(nodesOf(back, 'x')).toEqual(['a1', 'b1']);
    expect(back.moves).toEqual([
      {
        tenantId: 'x',
        from: 'a2',
        to: 'b1',
        reason: 'zone-spread',
        detail: 'replicas shared zone a; node b1 in zone b has room',
      },
    ]);
    expect(planPlacement({ nodes, tenants, current: down.assignments, restoreZoneSpread: false }).moves).toEqual([]);
  });

  it('reports a reservation that fits nowhere with how much the best node is missing', () => {
    const small = { vcpu: 4, memoryMb: 8192 };
    const nodes = [node('a1', 'a', small), node('b1', 'b', small)];
    const plan = planPlacement({
      nodes,
      tenants: [tenant('t', 4, 8192), tenant('u', 2.5, 6144)],
      current: [{ tenantId: 'u', nodes: ['a1', 'b1'] }],
    });
    expect(plan.unplaceable).toHaveLength(1);
    expect(plan.unplaceable[0]).toMatchObject({
      tenantId: 't',
      replicasWanted: 2,
      replicasPlaced: 0,
      best: { node: 'a1', free: { vcpu: 1.5, memoryMb: 2048 } },
      missing: { vcpu: 2.5, memoryMb: 6144 },
      message:
        'tenant t needs 4 vCPU / 8192 MB on 2 nodes of kind haproxy in group default; the best (a1) has 1.5 vCPU / 2048 MB free, 2.5 vCPU / 6144 MB short',
    });
    expect(nodesOf(plan, 't')).toEqual([]);
  });

  it('places a tenant on the one node that has room when the second has none, and reports it as degraded', () => {
    const nodes = [node('a1', 'a'), node('b1', 'b', { vcpu: 1, memoryMb: 1024 })];
    const plan = planPlacement({ nodes, tenants: [tenant('t', 2, 2048)] });
    expect(nodesOf(plan, 't')).toEqual(['a1']);
    expect(plan.degraded[0]?.message).toBe(
      'tenant t needs 2 vCPU / 2048 MB on 2 nodes of kind haproxy in group default; only 1 has room; the best of the others (b1) has 1 vCPU / 1024 MB free, 1 vCPU / 1024 MB short',
    );
  });

  it('with a single eligible node, a tenant goes on that one node and is not degraded', () => {
    const plan = planPlacement({
      nodes: [node('a1', 'a'), node('n1', 'a', BIG, { kind: 'nginx' })],
      tenants: [tenant('t', 1, 1024)],
    });
    expect(nodesOf(plan, 't')).toEqual(['a1']);
    expect(plan.degraded).toEqual([]);
  });

  it('only uses nodes of the tenant kind and group, and the group defaults to "default"', () => {
    const nodes = [
      node('a1', 'a'),
      node('b1', 'b'),
      node('e1', 'a', BIG, { group: 'edge' }),
      node('e2', 'b', BIG, { group: 'edge' }),
      node('g1', 'a', BIG, { kind: 'nginx', group: 'edge' }),
    ];
    const plan = planPlacement({
      nodes,
      tenants: [
        tenant('d', 1, 1024),
        tenant('e', 1, 1024, { group: 'edge' }),
        tenant('g', 1, 1024, { kind: 'nginx', group: 'edge' }),
      ],
    });
    expect(placed(plan)).toEqual({ d: ['a1', 'b1'], e: ['e1', 'e2'], g: ['g1'] });
  });

  it('says so when no healthy node of the kind and group exists', () => {
    const plan = planPlacement({
      nodes: [node('a1', 'a', BIG, { healthy: false })],
      tenants: [tenant('t', 1, 1024, { kind: 'haproxy', group: 'edge' })],
    });
    expect(plan.unplaceable[0]?.message).toBe(
      'tenant t needs 1 vCPU / 1024 MB on 2 nodes of kind haproxy in group edge; there is no healthy node of kind haproxy in group edge',
    );
  });

  it('moves the tenant whose reservation grew off a full node, not the neighbour that did not change', () => {
    const nodes = [node('a1', 'a'), node('b1', 'b'), node('c1', 'c'), node('d1', 'd')];
    const current = [
      { tenantId: 'x', nodes: ['a1', 'b1'], reservation: { vcpu: 2, memoryMb: 1024 } },
      { tenantId: 'y', nodes: ['a1', 'b1'], reservation: { vcpu: 5, memoryMb: 1024 } },
    ];
    const tenants = [tenant('x', 4, 1024), tenant('y', 5, 1024)];
    const plan = planPlacement({ nodes, tenants, current });
    expect(placed(plan)).toEqual({ x: ['c1', 'd1'], y: ['a1', 'b1'] });
    expect(plan.moves.every((m) => m.tenantId === 'x' && m.reason === 'no-room')).toBe(true);
    // Without the reservation as placed, the planner cannot tell who grew: the larger tenant yields.
    const blind = planPlacement({
      nodes,
      tenants,
      current: current.map(({ tenantId, nodes: n }) => ({ tenantId, nodes: n })),
    });
    expect(placed(blind)).toEqual({ x: ['a1', 'b1'], y: ['c1', 'd1'] });
  });

  it('spreads tenants without a reservation over nodes by tenant count', () => {
    const nodes = [node('a1', 'a'), node('a2', 'a'), node('b1', 'b'), node('b2', 'b')];
    const plan = planPlacement({ nodes, tenants: ['p', 'q', 'r', 's'].map((id) => tenant(id, 0, 0)) });
    expect(plan.nodes.map((n) => n.tenants)).toEqual([2, 2, 2, 2]);
  });

  it('drops replicas beyond the wanted count, keeping zones apart', () => {
    const nodes = [node('a1', 'a'), node('a2', 'a'), node('b1', 'b')];
    const plan = planPlacement({
      nodes,
      tenants: [tenant('x', 1, 1024)],
      current: [{ tenantId: 'x', nodes: ['a1', 'a2', 'b1'] }],
    });
    expect(nodesOf(plan, 'x')).toEqual(['a1', 'b1']);
    expect(plan.moves).toEqual([
      { tenantId: 'x', from: 'a2', to: null, reason: 'excess-replica', detail: 'more replicas than the 2 wanted' },
    ]);
  });

  it('honours minReplicas', () => {
    const nodes = [node('a1', 'a'), node('b1', 'b'), node('c1', 'c'), node('d1', 'd')];
    expect(nodesOf(planPlacement({ nodes, tenants: [tenant('x', 1, 1024)], minReplicas: 3 }), 'x')).toEqual([
      'a1',
      'b1',
      'c1',
    ]);
  });

  it('takes tenants off nodes with zero capacity or that are gone, and puts none there', () => {
    const nodes = [node('a1', 'a', { vcpu: 0, memoryMb: 0 }), node('b1', 'b'), node('c1', 'c')];
    const plan = planPlacement({
      nodes,
      tenants: [tenant('x', 0, 0)],
      current: [{ tenantId: 'x', nodes: ['a1', 'z9'] }],
    });
    expect(nodesOf(plan, 'x')).toEqual(['b1', 'c1']);
    expect(plan.moves.map((m) => [m.from, m.reason])).toEqual([
      ['a1', 'node-ineligible'],
      ['z9', 'node-gone'],
    ]);
  });
});

// ---- properties ----------------------------------------------------------------------------

const ZONES = ['a', 'b', 'c', 'd'];

function randomNode(rng: Rng, name: string): PlacementNode {
  return {
    name,
    kind: rng.chance(0.85) ? 'haproxy' : 'nginx',
    group: rng.chance(0.85) ? 'default' : 'edge',
    zone: rng.pick(ZONES),
    capacity: rng.chance(0.05)
      ? { vcpu: 0, memoryMb: 0 }
      : { vcpu: rng.int(1000, 16_000) / 1000, memoryMb: rng.int(1024, 32_768) },
    healthy: rng.chance(0.85),
  };
}

function generateInput(rng: Rng): PlacementInput {
  const nodes = Array.from({ length: rng.int(1, 12) }, (_, i) => randomNode(rng, `n${String(i).padStart(2, '0')}`));
  const tenants: PlacementTenant[] = Array.from({ length: rng.int(0, 40) }, (_, i) => {
    const reservation = rng.chance(0.2)
      ? { vcpu: 0, memoryMb: 0 }
      : { vcpu: rng.int(0, 4000) / 1000, memoryMb: rng.int(0, 8192) };
    const group = rng.chance(0.85) ? (rng.chance(0.5) ? 'default' : undefined) : 'edge';
    return {
      id: `t${String(i).padStart(2, '0')}`,
      reservation,
      limit: reservation,
      weight: rng.int(1, 1000),
      kind: rng.chance(0.85) ? 'haproxy' : 'nginx',
      ...(group === undefined ? {} : { group }),
    };
  });
  // Arbitrary current placements (stale names, unhealthy nodes, overbooked) must be handled too.
  const names = [...nodes.map((n) => n.name), 'gone'];
  const current = rng.chance(0.5)
    ? []
    : tenants
        .filter(() => rng.chance(0.6))
        .map((t) => ({ tenantId: t.id, nodes: rng.shuffle(names).slice(0, rng.int(1, 3)) }));
  return {
    nodes,
    tenants,
    current,
    minReplicas: rng.chance(0.8) ? 2 : rng.int(1, 3),
    restoreZoneSpread: rng.chance(0.8),
  };
}

const milli = (v: number) => Math.round(v * 1000);

interface PoolView {
  readonly pool: PlacementNode[];
  readonly free: Map<string, { milli: number; mb: number }>;
}

function poolView(input: PlacementInput, plan: PlacementPlan, t: PlacementTenant): PoolView {
  const pool = input.nodes.filter(
    (n) =>
      n.healthy &&
      n.kind === t.kind &&
      n.group === (t.group ?? 'default') &&
      n.capacity.vcpu > 0 &&
      n.capacity.memoryMb > 0,
  );
  const free = new Map(plan.nodes.map((u) => [u.node, { milli: milli(u.free.vcpu), mb: u.free.memoryMb }]));
  return { pool, free };
}

const roomFor = (view: PoolView, name: string, t: PlacementTenant): boolean => {
  const f = view.free.get(name);
  return f !== undefined && f.milli >= milli(t.reservation.vcpu) && f.mb >= t.reservation.memoryMb;
};

/** Everything a plan must satisfy, for any input. */
function checkPlan(input: PlacementInput, plan: PlacementPlan): void {
  const minReplicas = input.minReplicas ?? 2;
  const byName = new Map(input.nodes.map((n) => [n.name, n]));
  const assigned = new Map(plan.assignments.map((a) => [a.tenantId, a.nodes]));
  const unplaceable = new Set(plan.unplaceable.map((s) => s.tenantId));
  const degraded = new Set(plan.degraded.map((s) => s.tenantId));
  const used = new Map<string, { milli: number; mb: number }>();
  for (const t of input.tenants) {
    const nodes = assigned.get(t.id) ?? [];
    check(nodes.length > 0 !== unplaceable.has(t.id), () => `${t.id} is neither placed nor unplaceable, or both`);
    check(new Set(nodes).size === nodes.length, () => `${t.id} is on a node twice`);
    for (const name of nodes) {
      const n = byName.get(name);
      check(
        n?.healthy === true && n.kind === t.kind && n.group === (t.group ?? 'default') && n.capacity.vcpu > 0,
        () => `${t.id} on ineligible ${name}`,
      );
      const u = used.get(name) ?? { milli: 0, mb: 0 };
      used.set(name, { milli: u.milli + milli(t.reservation.vcpu), mb: u.mb + t.reservation.memoryMb });
    }
    const view = poolView(input, plan, t);
    const wanted = Math.min(minReplicas, view.pool.length);
    check(nodes.length <= wanted, () => `${t.id} on ${nodes.length} nodes, more than the ${wanted} wanted`);
    if (nodes.length < wanted) {
      check(degraded.has(t.id) || unplaceable.has(t.id), () => `${t.id} short of replicas is not reported`);
      const spare = view.pool.filter((n) => !nodes.includes(n.name) && roomFor(view, n.name, t)).map((n) => n.name);
      check(spare.length === 0, () => `${t.id} is short of replicas while ${spare.join(', ')} have room`);
    } else {
      check(!degraded.has(t.id), () => `${t.id} fully placed but reported degraded`);
    }
    if (input.restoreZoneSpread !== false) {
      const zones = new Set(nodes.map((n) => byName.get(n)?.zone));
      const reachable = new Set(view.pool.map((n) => n.zone)).size;
      if (zones.size < Math.min(nodes.length, reachable)) {
        const other = view.pool.filter((n) => !zones.has(n.zone) && roomFor(view, n.name, t)).map((n) => n.name);
        check(other.length === 0, () => `${t.id} shares a zone while ${other.join(', ')} in other zones have room`);
      }
    }
  }
  for (const u of plan.nodes) {
    const sum = used.get(u.node) ?? { milli: 0, mb: 0 };
    check(sum.milli <= milli(u.capacity.vcpu), () => `${u.node} vCPU booked past capacity`);
    check(sum.mb <= u.capacity.memoryMb, () => `${u.node} memory booked past capacity`);
    check(
      milli(u.reserved.vcpu) === sum.milli && u.reserved.memoryMb === sum.mb,
      () => `${u.node} reports wrong usage`,
    );
  }
  for (const s of [...plan.unplaceable, ...plan.degraded])
    check(s.message.startsWith(`tenant ${s.tenantId} needs `), () => s.message);
}

function shuffledInput(input: PlacementInput, rng: Rng): PlacementInput {
  return {
    ...input,
    nodes: rng.shuffle(input.nodes),
    tenants: rng.shuffle(input.tenants),
    current: rng.shuffle((input.current ?? []).map((a) => ({ ...a, nodes: rng.shuffle(a.nodes) }))),
  };
}

/** Tenants that lose a node other than `except` (zone-spread moves excluded: they only improve spread). */
function losers(plan: PlacementPlan, except: string | null): string[] {
  return [
    ...new Set(
      plan.moves
        .filter((m) => m.from !== null && m.from !== except && m.reason !== 'zone-spread')
        .map((m) => m.tenantId),
    ),
  ];
}

describe('planPlacement: properties over random scenarios', () => {
  it('capacity is respected, every tenant gets min(minReplicas, eligible) nodes or a reason, zones are spread when possible, and the plan is the same for shuffled input', () => {
    assertProperty(
      fc.property(scenario(generateInput), choices(), (input, rng) => {
        const plan = planPlacement(input);
        checkPlan(input, plan);
        expect(planPlacement(shuffledInput(input, rng))).toEqual(plan);
      }),
      1000,
    );
  });

  it('a plan fed back is stable: no moves, same assignments', () => {
    assertProperty(
      fc.property(scenario(generateInput), (input) => {
        const plan = planPlacement(input);
        const again = planPlacement({ ...input, current: plan.assignments });
        expect(again.moves).toEqual([]);
        expect(again.assignments).toEqual(plan.assignments);
      }),
      1000,
    );
  });

  it('when a node leaves or fails, only the tenants on it lose a replica; others at most gain', () => {
    assertProperty(
      fc.property(scenario(generateInput), choices(), (input, rng) => {
        const stable = planPlacement(input);
        const victim = rng.pick(input.nodes).name;
        const nodes = rng.chance(0.5)
          ? input.nodes.filter((n) => n.name !== victim)
          : input.nodes.map((n) => (n.name === victim ? { ...n, healthy: false } : n));
        const next = { ...input, nodes, current: stable.assignments };
        const plan = planPlacement(next);
        checkPlan(next, plan);
        expect(losers(plan, victim), 'no tenant loses a node it was on, other than the one that left').toEqual([]);
        const onVictim = new Set(stable.assignments.filter((a) => a.nodes.includes(victim)).map((a) => a.tenantId));
        for (const m of plan.moves) {
          if (!onVictim.has(m.tenantId))
            expect(
              m.from === null || m.reason === 'zone-spread',
              `${m.tenantId} was not on ${victim}: only gains`,
            ).toBe(true);
        }
        if (input.restoreZoneSpread === false)
          expect(plan.moves.every((m) => onVictim.has(m.tenantId) || m.from === null)).toBe(true);
      }),
      1000,
    );
  });

  it('when a node joins or comes back, no tenant loses a replica except to restore zone spread', () => {
    assertProperty(
      fc.property(scenario(generateInput), choices(), (input, rng) => {
        const joining = rng.chance(0.5) && input.nodes.some((n) => !n.healthy);
        const before: PlacementInput = joining ? input : { ...input, nodes: input.nodes.slice(0, -1) };
        const stable = planPlacement(before);
        const nodes = joining ? input.nodes.map((n) => ({ ...n, healthy: true })) : input.nodes;
        const next = { ...input, nodes, current: stable.assignments };
        const plan = planPlacement(next);
        checkPlan(next, plan);
        expect(losers(plan, null)).toEqual([]);
        // Gains only: replicas for tenants that were short (or now have more eligible nodes), and zone spread.
        for (const m of plan.moves)
          expect(m.from === null || m.reason === 'zone-spread', `${m.tenantId} ${m.reason}`).toBe(true);
        if (input.restoreZoneSpread === false) expect(plan.moves.every((m) => m.from === null)).toBe(true);
      }),
      1000,
    );
  });
});
