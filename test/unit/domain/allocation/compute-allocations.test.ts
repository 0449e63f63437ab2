import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type {
  AllocationInput,
  AllocationNode,
  AllocationPlan,
  AllocationTenant,
  CurrentAllocation,
} from '../../../../src/domain/allocation/allocation-types.js';
import { DEFAULT_DEMAND_HEADROOM, computeAllocations } from '../../../../src/domain/allocation/compute-allocations.js';
import { DEFAULT_HYSTERESIS } from '../../../../src/domain/allocation/hysteresis.js';
import type { CapacityModel } from '../../../../src/domain/capacity.js';
import type { TenantDemand } from '../../../../src/domain/demand.js';
import type { NodeKind } from '../../../../src/domain/node.js';
import { assertProperty, check, choices, scenario, type Rng } from '../../../support/property.js';

// Round factors for readable numbers: 1 MB is one connection and 0.001 vCPU one req/s, so a
// tenant or node of "N units" has N connections and N req/s.
const UNIT_FACTORS = { connectionsPerGb: 1024, requestsPerSecondPerVcpu: 1000 };
const UNIT_MODEL: CapacityModel = { haproxy: UNIT_FACTORS, nginx: UNIT_FACTORS };
const units = (n: number) => ({ vcpu: n / 1000, memoryMb: n });

const node = (name: string, capacity: number, kind: NodeKind = 'haproxy'): AllocationNode => ({
  name,
  kind,
  capacity: units(capacity),
});
const tenant = (id: string, reservation: number, limit: number, weight = 100): AllocationTenant => ({
  id,
  reservation: units(reservation),
  limit: units(limit),
  weight,
});
const demand = (tenantId: string, amount: number, nodeName = 'n1'): TenantDemand => ({
  tenantId,
  node: nodeName,
  connections: amount,
  requestsPerSecond: amount,
});
const onN1 = (...ids: string[]) => ids.map((tenantId) => ({ tenantId, nodes: ['n1'] }));

function run(input: Omit<AllocationInput, 'factors' | 'hysteresis'> & Partial<AllocationInput>): AllocationPlan {
  return computeAllocations({ factors: UNIT_MODEL, hysteresis: null, ...input });
}

/** Connection caps by tenant on one node. */
function caps(plan: AllocationPlan, nodeName = 'n1'): Record<string, number> {
  return Object.fromEntries(
    plan.allocations.filter((a) => a.node === nodeName).map((a) => [a.tenantId, a.maxConnections]),
  );
}

function asCurrent(plan: AllocationPlan): CurrentAllocation[] {
  return plan.allocations.map((a) => ({
    tenantId: a.tenantId,
    node: a.node,
    maxConnections: a.maxConnections,
    requestsPerSecond: a.requestsPerSecond,
  }));
}

describe('computeAllocations: behaviour', () => {
  const nodes = [node('n1', 1000)];
  const tenants = [tenant('a', 100, 800), tenant('b', 100, 800)];

  it('when both tenants flood, they split the spare capacity equally on top of their reservations', () => {
    const plan = run({ nodes, tenants, assignments: onN1('a', 'b'), demand: [demand('a', 5000), demand('b', 5000)] });
    expect(caps(plan)).toEqual({ a: 500, b: 500 });
    expect(plan.allocations.map((a) => a.reasons.connections)).toEqual(['fair-share', 'fair-share']);
  });

  it("when tenant B goes quiet, A's cap rises to its limit and B keeps its reservation", () => {
    const plan = run({
      nodes,
      tenants,
      assignments: onN1('a', 'b'),
      demand: [demand('a', 5000), demand('b', 0)],
      shareIdle: false,
    });
    expect(caps(plan)).toEqual({ a: 800, b: 100 });
    expect(plan.allocations[0]!.reasons.connections).toBe('limit');
    expect(plan.allocations[1]!.reasons.connections).toBe('reservation');
  });

  it('when B goes quiet, the capacity A cannot use is kept as idle share for B (shareIdle)', () => {
    const plan = run({ nodes, tenants, assignments: onN1('a', 'b'), demand: [demand('a', 5000), demand('b', 0)] });
    expect(caps(plan)).toEqual({ a: 800, b: 200 });
    expect(plan.allocations[1]!.reasons.connections).toBe('idle-share');
  });

  it('when B returns, B gets its demand back at once and A gives up what B takes', () => {
    const quiet = run({
      nodes,
      tenants,
      assignments: onN1('a', 'b'),
      demand: [demand('a', 5000), demand('b', 0)],
      shareIdle: false,
    });
    const back = run({
      nodes,
      tenants,
      assignments: onN1('a', 'b'),
      demand: [demand('a', 5000), demand('b', 300)],
      current: asCurrent(quiet),
      hysteresis: DEFAULT_HYSTERESIS,
      shareIdle: false,
    });
    // B wants 300 plus 25% headroom = 375 (below its equal share of 500): max-min gives it all of it.
    expect(caps(back)).toEqual({ a: 625, b: 375 });
  });

  it('a tenant with no demand signal still keeps its reservation', () => {
    const plan = run({ nodes, tenants, assignments: onN1('a', 'b'), demand: [demand('a', 5000)], shareIdle: false });
    expect(caps(plan)).toEqual({ a: 800, b: 100 });
    expect(plan.allocations[1]!.demand).toBeNull();
  });

  it('weights divide the spare capacity: weight 300 against 100 takes three quarters', () => {
    const plan = run({
      nodes,
      tenants: [tenant('a', 100, 1000, 300), tenant('b', 100, 1000, 100)],
      assignments: onN1('a', 'b'),
      demand: [demand('a', 5000), demand('b', 5000)],
    });
    expect(caps(plan)).toEqual({ a: 700, b: 300 });
  });

  it('a tenant that wants less than its fair share gets what it wants and the rest goes to the others (max-min)', () => {
    const plan = run({
      nodes,
      tenants: [tenant('a', 0, 1000), tenant('b', 0, 1000), tenant('c', 0, 1000)],
      assignments: onN1('a', 'b', 'c'),
      demand: [demand('a', 80), demand('b', 5000), demand('c', 5000)],
    });
    expect(caps(plan)).toEqual({ a: 100, b: 450, c: 450 });
    expect(plan.allocations[0]!.reasons.connections).toBe('demand');
  });

  it('a limit equal to the reservation pins the cap whatever the demand', () => {
    const plan = run({
      nodes,
      tenants: [tenant('a', 300, 300), tenant('b', 0, 0)],
      assignments: onN1('a', 'b'),
      demand: [demand('a', 9000)],
    });
    expect(caps(plan)).toEqual({ a: 300, b: 0 });
  });

  it('a tenant with reservation 0 and no demand gets nothing without idle sharing, and idle capacity with it', () => {
    const input = {
      nodes,
      tenants: [tenant('a', 0, 400), tenant('b', 100, 1000)],
      assignments: onN1('a', 'b'),
      demand: [demand('b', 80)],
    };
    expect(caps(run({ ...input, shareIdle: false }))).toEqual({ a: 0, b: 100 });
    expect(caps(run(input))).toEqual({ a: 400, b: 600 });
  });

  it('on a zero-capacity node every cap is 0 and reservations there are flagged as overcommitted', () => {
    const plan = run({ nodes: [node('n1', 0)], tenants, assignments: onN1('a', 'b'), demand: [demand('a', 10)] });
    expect(caps(plan)).toEqual({ a: 0, b: 0 });
    expect(plan.nodes[0]!.overcommitted).toBe(true);
    expect(plan.warnings.join()).toMatch(/n1: reservations exceed capacity/);
  });

  it('when reservations exceed capacity, they are scaled down proportionally and the node is flagged', () => {
    const plan = run({
      nodes: [node('n1', 600)],
      tenants: [tenant('a', 600, 900), tenant('b', 300, 900)],
      assignments: onN1('a', 'b'),
    });
    expect(caps(plan)).toEqual({ a: 400, b: 200 });
    expect(plan.allocations.map((a) => a.reasons.connections)).toEqual(['overcommitted', 'overcommitted']);
    expect(plan.nodes[0]).toMatchObject({ overcommitted: true, allocated: { connections: 600 } });
  });

  it('converts with the factors of the node kind', () => {
    const model: CapacityModel = {
      haproxy: UNIT_FACTORS,
      nginx: { connectionsPerGb: 512, requestsPerSecondPerVcpu: 500 },
    };
    const plan = computeAllocations({
      nodes: [node('n1', 1000), node('n2', 1000, 'nginx')],
      tenants: [tenant('a', 100, 100)],
      assignments: [{ tenantId: 'a', nodes: ['n1', 'n2'] }],
      factors: model,
    });
    expect(plan.allocations.map((a) => [a.node, a.maxConnections, a.requestsPerSecond])).toEqual([
      ['n1', 100, 100],
      ['n2', 50, 50],
    ]);
  });

  it('gives each node a weight for the tenant: 256 on its largest node, proportional elsewhere', () => {
    const plan = run({
      nodes: [node('n1', 1000), node('n2', 500)],
      tenants: [tenant('a', 100, 1000)],
      assignments: [{ tenantId: 'a', nodes: ['n1', 'n2'] }],
      demand: [demand('a', 5000, 'n1'), demand('a', 5000, 'n2')],
    });
    expect(plan.allocations.map((a) => [a.node, a.maxConnections, a.weight])).toEqual([
      ['n1', 1000, 256],
      ['n2', 500, 128],
    ]);
  });

  it('lists only caps that changed, each with a reason that names the demand and the bound', () => {
    const first = run({
      nodes,
      tenants,
      assignments: onN1('a', 'b'),
      demand: [demand('a', 5000), demand('b', 0)],
      shareIdle: false,
    });
    expect(first.changes).toHaveLength(4);
    expect(first.changes[0]).toMatchObject({
      tenantId: 'a',
      dimension: 'connections',
      from: null,
      to: 800,
      reason: 'limit',
    });
    expect(first.changes[0]!.detail).toBe(
      'connections new → 800: demand 5000 connections; capped at the limit of 800 connections',
    );
    const same = run({
      nodes,
      tenants,
      assignments: onN1('a', 'b'),
      demand: [demand('a', 5000), demand('b', 0)],
      shareIdle: false,
      current: asCurrent(first),
    });
    expect(same.changes).toEqual([]);
  });

  it('skips and reports assignments to unknown tenants or nodes', () => {
    const plan = run({
      nodes,
      tenants,
      assignments: [
        { tenantId: 'ghost', nodes: ['n1'] },
        { tenantId: 'a', nodes: ['n9'] },
      ],
    });
    expect(plan.allocations).toEqual([]);
    expect(plan.warnings).toEqual([
      'assignment for unknown tenant ghost; skipped',
      'node n9 is assigned 1 tenant(s) but is not in the input; skipped',
    ]);
  });
});

describe('computeAllocations: hysteresis', () => {
  const nodes = [node('n1', 10_000)];
  const base = { nodes, hysteresis: DEFAULT_HYSTERESIS, shareIdle: false } as const;

  it('keeps a cap whose new target is within 10% of it, so caps do not flap', () => {
    const plan = run({
      ...base,
      tenants: [tenant('a', 0, 10_000)],
      assignments: onN1('a'),
      demand: [demand('a', 1600)],
      current: [cur('a', 1900)],
    });
    expect(plan.allocations[0]).toMatchObject({
      maxConnections: 1900,
      target: { connections: 2000 },
      reasons: { connections: 'held' },
    });
    expect(plan.changes).toEqual([]);
  });

  it('moves a cap when the target differs by more than the threshold', () => {
    const plan = run({
      ...base,
      tenants: [tenant('a', 0, 10_000)],
      assignments: onN1('a'),
      demand: [demand('a', 1600)],
      current: [cur('a', 1500)],
    });
    expect(caps(plan)).toEqual({ a: 2000 });
  });

  it('uses a small absolute minimum so small caps do not move by a unit or two', () => {
    const plan = run({
      ...base,
      tenants: [tenant('a', 0, 10_000)],
      assignments: onN1('a'),
      demand: [demand('a', 1)],
      current: [cur('a', 3)],
    });
    expect(caps(plan)).toEqual({ a: 3 }); // target 2 is within 2 of 3
  });

  it('lets a small cap grow on demand: the band is relative, not a fixed 32 units', () => {
    const plan = run({
      ...base,
      tenants: [tenant('a', 0, 10_000)],
      assignments: onN1('a'),
      demand: [demand('a', 40)],
      current: [cur('a', 30)],
    });
    expect(caps(plan)).toEqual({ a: 50 });
  });

  it('never freezes a saturated tenant: a raise within the band still goes out', () => {
    const saturated = { ...demand('a', 100), saturated: { connections: true, requestsPerSecond: true } };
    const plan = run({
      ...base,
      nodes: [node('n1', 105)],
      tenants: [tenant('a', 0, 10_000)],
      assignments: onN1('a'),
      demand: [saturated],
      current: [cur('a', 100)],
    });
    expect(caps(plan)).toEqual({ a: 105 }); // 5 above 100 is within 10%, but the tenant was refused at 100
  });

  it('never holds a cap below a reservation that was raised', () => {
    const plan = run({
      ...base,
      tenants: [tenant('a', 2000, 10_000)],
      assignments: onN1('a'),
      current: [cur('a', 1950)],
    });
    expect(caps(plan)).toEqual({ a: 2000 });
  });

  it('never holds a cap above a limit that was lowered', () => {
    const plan = run({
      ...base,
      tenants: [tenant('a', 0, 1000)],
      assignments: onN1('a'),
      demand: [demand('a', 5000)],
      current: [cur('a', 1050)],
    });
    expect(caps(plan)).toEqual({ a: 1000 });
  });

  it('lets a tenant reach its limit even when the step is small', () => {
    const plan = run({
      ...base,
      tenants: [tenant('a', 0, 1000)],
      assignments: onN1('a'),
      demand: [demand('a', 5000)],
      current: [cur('a', 980)],
    });
    expect(caps(plan)).toEqual({ a: 1000 });
  });

  it('never takes a node past its capacity: caps held above their target are released', () => {
    const plan = run({
      ...base,
      tenants: [tenant('a', 0, 10_000), tenant('b', 0, 10_000)],
      assignments: onN1('a', 'b'),
      demand: [demand('a', 9000), demand('b', 9000)],
      current: [cur('a', 5400), cur('b', 5400)],
    });
    expect(caps(plan)).toEqual({ a: 5000, b: 5000 });
  });

  it('feeding a plan back as the current caps changes nothing', () => {
    const input = {
      ...base,
      tenants: [tenant('a', 100, 10_000), tenant('b', 0, 4000, 300)],
      assignments: onN1('a', 'b'),
      demand: [demand('a', 7000), demand('b', 3000)],
    };
    const first = run(input);
    expect(run({ ...input, current: asCurrent(first) }).changes).toEqual([]);
  });
});

function cur(tenantId: string, amount: number, nodeName = 'n1'): CurrentAllocation {
  return { tenantId, node: nodeName, maxConnections: amount, requestsPerSecond: amount };
}

describe('computeAllocations: demand seen through the caps', () => {
  // The node: 312 connections; X and Y reserve 78 each and may use the whole node.
  const nodes = [node('n1', 312)];
  const tenants = [tenant('x', 78, 312), tenant('y', 78, 312)];
  const full = (id: string, sessions: number): TenantDemand => ({
    ...demand(id, sessions),
    saturated: { connections: true, requestsPerSecond: true },
  });
  const current = (x: number, y: number): CurrentAllocation[] => [
    { tenantId: 'x', node: 'n1', maxConnections: x, requestsPerSecond: x },
    { tenantId: 'y', node: 'n1', maxConnections: y, requestsPerSecond: y },
  ];
  const plan = (d: TenantDemand[], cur: CurrentAllocation[]) =>
    computeAllocations({ factors: UNIT_MODEL, nodes, tenants, assignments: onN1('x', 'y'), demand: d, current: cur });

  it('when a tenant is refused at a cap below 128 while the node has room, then it grows: twice its cap, up to what the others leave', () => {
    // Y holds its 78 with 200 wanted; X idle. Y's sessions alone (78, +25%) would never clear the old 32-unit band.
    const first = plan([demand('x', 0), full('y', 78)], current(78, 78));
    // Y asks for 156; the 78 nobody asked for is shared evenly as idle share.
    expect(caps(first)).toEqual({ x: 117, y: 195 });
    expect(first.allocations.find((a) => a.tenantId === 'y')!.target.connections).toBe(195);
    expect(first.changes.find((c) => c.tenantId === 'y' && c.dimension === 'connections')!.detail).toMatch(
      /refused at its cap \(probing upward, ×2\)/,
    );
  });

  it('when both are refused at their caps, then they split the node evenly on the next plan', () => {
    expect(caps(plan([full('x', 234), full('y', 78)], current(234, 78)))).toEqual({ x: 156, y: 156 });
  });

  it('when a saturated tenant stops being refused, then it keeps what it uses plus headroom, and the rest is idle share', () => {
    const grown = plan([demand('x', 0), demand('y', 120)], current(117, 195));
    // Y wants 150, X its 78; the 84 left go half to each: 192 is within 10% of 195, so held.
    expect(caps(grown)).toEqual({ x: 117, y: 195 });
    expect(grown.allocations.map((a) => a.target.connections)).toEqual([120, 192]);
  });

  it("gives each tenant a ceiling of the node less the others' reservations, which demand does not move", () => {
    for (const d of [
      [demand('x', 0), demand('y', 0)],
      [full('x', 234), full('y', 78)],
    ]) {
      expect(plan(d, current(156, 156)).allocations.map((a) => a.ceiling)).toEqual([234, 234]);
    }
    const limited = computeAllocations({
      factors: UNIT_MODEL,
      nodes,
      tenants: [tenant('x', 78, 100), tenant('y', 78, 312)],
      assignments: onN1('x', 'y'),
    });
    expect(limited.allocations.map((a) => [a.maxConnections, a.ceiling])).toEqual([
      [100, 100],
      [212, 234],
    ]);
  });

  it('when every tenant goes idle, then their caps return to an even split of the node', () => {
    expect(caps(plan([demand('x', 0), demand('y', 0)], current(234, 78)))).toEqual({ x: 156, y: 156 });
  });
});

// ---- properties ----------------------------------------------------------------------------

interface Scenario {
  readonly input: AllocationInput;
}

const wantOf = (reserved: number, limit: number, d: number | null): number =>
  d === null ? reserved : Math.min(limit, Math.max(reserved, Math.ceil(d * (1 + DEFAULT_DEMAND_HEADROOM) - 1e-9)));

function generateScenario(rng: Rng, options: { hysteresis: boolean; shareIdle: boolean }): Scenario {
  const nodes = Array.from({ length: rng.int(1, 4) }, (_, i) => ({
    name: `n${i}`,
    kind: rng.pick(['haproxy', 'nginx'] as const),
    capacity: rng.chance(0.08)
      ? { vcpu: 0, memoryMb: 0 }
      : { vcpu: rng.int(1, 16_000) / 1000, memoryMb: rng.int(1, 32_768) },
  }));
  // Reservations sized against the smallest node so most nodes fit them, with some that overbook.
  const tenants = Array.from({ length: rng.int(0, 10) }, (_, i) => {
    const reservation = rng.chance(0.25)
      ? { vcpu: 0, memoryMb: 0 }
      : { vcpu: rng.int(0, 2000) / 1000, memoryMb: rng.int(0, 4096) };
    const limit = rng.chance(0.2)
      ? reservation
      : { vcpu: reservation.vcpu + rng.int(0, 8000) / 1000, memoryMb: reservation.memoryMb + rng.int(0, 16_384) };
    return { id: `t${i}`, reservation, limit, weight: rng.chance(0.3) ? 100 : rng.int(1, 1000) };
  });
  const assignments = tenants.map((t) => ({
    tenantId: t.id,
    nodes: rng.shuffle(nodes.map((n) => n.name)).slice(0, rng.int(1, nodes.length)),
  }));
  const demand: TenantDemand[] = [];
  const current: CurrentAllocation[] = [];
  for (const a of assignments) {
    for (const n of a.nodes) {
      if (!rng.chance(0.2)) {
        const zero = rng.chance(0.15);
        demand.push({
          tenantId: a.tenantId,
          node: n,
          connections: zero ? 0 : rng.int(0, 200_000) / rng.int(1, 10),
          requestsPerSecond: zero ? 0 : rng.int(0, 100_000) / rng.int(1, 10),
        });
      }
      if (options.hysteresis && rng.chance(0.7))
        current.push({
          tenantId: a.tenantId,
          node: n,
          maxConnections: rng.int(0, 100_000),
          requestsPerSecond: rng.int(0, 100_000),
        });
    }
  }
  const input: AllocationInput = {
    nodes,
    tenants,
    assignments,
    demand,
    current,
    hysteresis: options.hysteresis ? DEFAULT_HYSTERESIS : null,
    shareIdle: options.shareIdle,
  };
  // Realistic previous caps: the plan for a nearby demand, so many targets fall inside the band.
  if (options.hysteresis && rng.chance(0.5)) {
    const nearby = demand.map((d) => ({
      ...d,
      connections: d.connections * (0.9 + rng.next() * 0.2),
      requestsPerSecond: d.requestsPerSecond * (0.9 + rng.next() * 0.2),
    }));
    return { input: { ...input, current: asCurrent(computeAllocations({ ...input, demand: nearby })) } };
  }
  return { input };
}

const DIMS = [
  ['connections', (a: AllocationPlan['allocations'][number]) => a.maxConnections],
  ['requestsPerSecond', (a: AllocationPlan['allocations'][number]) => a.requestsPerSecond],
] as const;

type Row = AllocationPlan['allocations'][number];
const overbooked = (
  summary: AllocationPlan['nodes'][number],
  here: readonly Row[],
  dim: 'connections' | 'requestsPerSecond',
): boolean => here.reduce((s, a) => s + a.reserved[dim], 0) > summary.capacity[dim];

/** Checks the invariants that hold with or without hysteresis. */
function checkBounds(plan: AllocationPlan): void {
  for (const summary of plan.nodes) {
    const here = plan.allocations.filter((a) => a.node === summary.node);
    for (const [dim, capOf] of DIMS) {
      const total = here.reduce((s, a) => s + capOf(a), 0);
      const over = overbooked(summary, here, dim);
      check(
        total <= summary.capacity[dim],
        () => `node ${summary.node} ${dim}: ${total} exceeds capacity ${summary.capacity[dim]}`,
      );
      check(!over || summary.overcommitted, () => `node ${summary.node} is overbooked but not flagged`);
      for (const a of here) {
        const cap = capOf(a);
        const at = `${a.tenantId}@${a.node} ${dim} cap ${cap}`;
        check(Number.isInteger(cap) && cap >= 0, () => `${at} is not a whole number`);
        check(cap <= a.limit[dim], () => `${at} above its limit ${a.limit[dim]}`);
        if (over) {
          check(cap <= a.reserved[dim], () => `${at} above its reservation on an overbooked node`);
        } else {
          const floor = Math.min(a.reserved[dim], a.demand?.[dim] ?? a.reserved[dim]);
          check(cap >= floor, () => `${at} below min(reservation, demand) = ${floor}`);
          check(cap >= a.reserved[dim], () => `${at} below its reservation ${a.reserved[dim]}`);
        }
      }
      // Overbooked reservations are scaled down to exactly the capacity, never below it.
      check(
        !over || total === summary.capacity[dim],
        () => `node ${summary.node} ${dim}: overbooked reservations scaled to ${total}, not the capacity`,
      );
    }
  }
}

/** Work conservation and weighted max-min fairness, exact for hysteresis off (integer rounding: ±1 unit). */
function checkFairness(plan: AllocationPlan, shareIdle: boolean, weights: ReadonlyMap<string, number>): void {
  for (const summary of plan.nodes) {
    const here = plan.allocations.filter((a) => a.node === summary.node);
    for (const [dim, capOf] of DIMS) {
      if (overbooked(summary, here, dim)) continue;
      const total = here.reduce((s, a) => s + capOf(a), 0);
      const rows = here.map((a) => ({
        a,
        cap: capOf(a),
        want: wantOf(a.reserved[dim], a.limit[dim], a.demand?.[dim] ?? null),
      }));
      const hungry = rows.filter((r) => r.cap < r.want);
      if (hungry.length > 0 || (shareIdle && rows.some((r) => r.cap < r.a.limit[dim]))) {
        check(
          total === summary.capacity[dim],
          () =>
            `node ${summary.node} ${dim}: ${summary.capacity[dim] - total} idle while a tenant under its limit wants more`,
        );
      }
      if (!shareIdle)
        for (const r of rows)
          check(
            r.cap <= r.want,
            () => `${r.a.tenantId} got ${r.cap}, more than it wants (${r.want}) without idle sharing`,
          );
      for (const i of hungry) {
        for (const j of rows) {
          const wi = weights.get(i.a.tenantId) ?? 1;
          const wj = weights.get(j.a.tenantId) ?? 1;
          const levelI = (i.cap - i.a.reserved[dim] + 1) / wi;
          const levelJ = (Math.min(j.cap, j.want) - j.a.reserved[dim] - 1) / wj;
          check(
            levelJ <= levelI + 1e-9,
            () => `${j.a.tenantId} got more than the water level of unsatisfied ${i.a.tenantId} (${dim})`,
          );
        }
      }
    }
  }
}

function shuffled(input: AllocationInput, rng: Rng): AllocationInput {
  return {
    ...input,
    nodes: rng.shuffle(input.nodes),
    tenants: rng.shuffle(input.tenants),
    assignments: rng.shuffle(input.assignments.map((a) => ({ ...a, nodes: rng.shuffle(a.nodes) }))),
    demand: rng.shuffle(input.demand ?? []),
    current: rng.shuffle(input.current ?? []),
  };
}

describe('computeAllocations: properties over random scenarios', () => {
  it('hysteresis off: bounds hold, nothing idles while a tenant wants more, spare is max-min fair, same output for shuffled input', () => {
    for (const shareIdle of [true, false]) {
      assertProperty(
        fc.property(
          scenario((rng) => generateScenario(rng, { hysteresis: false, shareIdle })),
          choices(),
          ({ input }, rng) => {
            const plan = computeAllocations(input);
            checkBounds(plan);
            checkFairness(plan, shareIdle, new Map(input.tenants.map((t) => [t.id, t.weight])));
            expect(computeAllocations(shuffled(input, rng))).toEqual(plan);
          },
        ),
        1000,
      );
    }
  });

  it('hysteresis on: bounds still hold, each cap is its target or a held value within the band, idle capacity is bounded by held-back steps, and a plan fed back is stable', () => {
    assertProperty(
      fc.property(
        scenario((rng) => generateScenario(rng, { hysteresis: true, shareIdle: rng.chance(0.5) })),
        choices(),
        ({ input }, rng) => {
          const plan = computeAllocations(input);
          checkBounds(plan);
          const strict = computeAllocations({ ...input, hysteresis: null });
          const strictCaps = new Map(
            strict.allocations.flatMap((s) =>
              DIMS.map(([dim, capOf]) => [`${s.tenantId}/${s.node}/${dim}`, capOf(s)] as const),
            ),
          );
          const currentBy = new Map((input.current ?? []).map((c) => [`${c.tenantId}/${c.node}`, c]));
          for (const summary of plan.nodes) {
            const here = plan.allocations.filter((a) => a.node === summary.node);
            for (const [dim, capOf] of DIMS) {
              if (overbooked(summary, here, dim)) continue;
              let heldBack = 0;
              for (const a of here) {
                const cap = capOf(a);
                const target = a.target[dim];
                const model = strictCaps.get(`${a.tenantId}/${a.node}/${dim}`);
                check(
                  target === model,
                  () => `${a.tenantId}@${a.node} ${dim}: target ${target} is not the hysteresis-off cap ${model}`,
                );
                if (cap === target) continue;
                const c = currentBy.get(`${a.tenantId}/${a.node}`)!;
                const current = dim === 'connections' ? c.maxConnections : c.requestsPerSecond;
                const at = `${a.tenantId}@${a.node} ${dim} cap ${cap} target ${target}`;
                check(cap === current, () => `${at}: neither the target nor the current cap ${current}`);
                check(
                  Math.abs(cap - target) <=
                    Math.max(DEFAULT_HYSTERESIS.relative * cap, DEFAULT_HYSTERESIS.absolute[dim]),
                  () => `${at}: held outside the band`,
                );
                check(!(target === a.limit[dim] && cap < target), () => `${at}: held below a target at the limit`);
                heldBack += Math.max(0, target - cap);
              }
              const idle = summary.capacity[dim] - here.reduce((s, a) => s + capOf(a), 0);
              const idleStrict = summary.capacity[dim] - here.reduce((s, a) => s + a.target[dim], 0);
              check(
                idle <= idleStrict + heldBack,
                () => `node ${summary.node} ${dim}: ${idle} idle, more than ${idleStrict} + held-back ${heldBack}`,
              );
            }
          }
          const again = computeAllocations({ ...input, current: asCurrent(plan) });
          expect(again.changes, 'no flapping: the same input with the plan applied changes nothing').toEqual([]);
          expect(computeAllocations(shuffled(input, rng))).toEqual(plan);
        },
      ),
      1000,
    );
  });
});
