/**
 * `npm run bench:alloc`: prints ONE JSON line of figures.
 *
 * Sections each return figures that are merged into that line, so a later section (the poll cycle
 * over real HAProxy processes) only has to be appended to SECTIONS.
 *
 * placement + allocation: 10,000 tenants on 100 HAProxy nodes in 3 zones, 2 replicas each, with
 * demand on every replica and the previous caps in force, as the rebalancer sees them each cycle
 * (`placement_allocation_ms`, target under 100 ms). `*_cold_ms` is the very first cycle: nothing
 * placed, no caps in force, so every replica and every cap is new. Each figure is the median of
 * RUNS after WARMUP runs.
 *
 * poll cycle: 20 real HAProxy processes on loopback, 500 tenants each (every tenant on 2 nodes),
 * registered in a scratch PostgreSQL database; one cold cycle of the real stats poller, then the
 * median and max of POLL_CYCLES cycles, each node's `show stat` read time in the cycle and alone,
 * and the samples stored (`poll_*`; see bench/poll-cycle-support.ts). Needs `haproxy` on the PATH
 * and PostgreSQL at 127.0.0.1:5432 (SWITCHYARD_TEST_PG overrides). Progress goes to stderr.
 */
import { performance } from 'node:perf_hooks';
import type { AllocationInput, CurrentAllocation } from '../src/domain/allocation/allocation-types.js';
import { computeAllocations } from '../src/domain/allocation/compute-allocations.js';
import type { TenantDemand } from '../src/domain/demand.js';
import { planPlacement } from '../src/domain/placement/plan-placement.js';
import type { PlacementInput, PlacementNode, PlacementTenant } from '../src/domain/placement/placement-types.js';
import { mulberry32 } from '../test/fixtures/random-snapshot.js';
import { pollCycle } from './poll-cycle-support.js';

type Figures = Record<string, number | string | boolean>;
type Section = () => Promise<Figures> | Figures;

const WARMUP = 3;
const RUNS = 9;
const POLL_NODES = Number(process.env.BENCH_POLL_NODES ?? 20);
const POLL_TENANTS_PER_NODE = Number(process.env.BENCH_POLL_TENANTS_PER_NODE ?? 500);
const POLL_CYCLES = Number(process.env.BENCH_POLL_CYCLES ?? 9);

/** Median wall time of `fn` in ms, after warm-up runs (JIT, caches). */
function time(fn: () => unknown): number {
  return measure(fn).wallMs;
}

/**
 * Median wall time and median CPU time (user + system, this process) in ms. On a shared machine
 * the CPU figure is the steadier one: it does not count time the process waited for a core.
 */
function measure(fn: () => unknown): { wallMs: number; cpuMs: number } {
  for (let i = 0; i < WARMUP; i++) fn();
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const cpuStart = process.cpuUsage();
    const start = performance.now();
    fn();
    wall.push(performance.now() - start);
    const used = process.cpuUsage(cpuStart);
    cpu.push((used.user + used.system) / 1000);
  }
  return { wallMs: median(wall), cpuMs: median(cpu) };
}

function median(samples: number[]): number {
  samples.sort((a, b) => a - b);
  return round(samples[Math.floor(samples.length / 2)] ?? Number.NaN);
}

const round = (ms: number): number => Math.round(ms * 100) / 100;

/** mulberry32: a fixed seed makes every run measure the same fleet. */
const prng = mulberry32;

function fleet(tenantCount: number, nodeCount: number): { nodes: PlacementNode[]; tenants: PlacementTenant[] } {
  const random = prng(5);
  const nodes = Array.from(
    { length: nodeCount },
    (_, i): PlacementNode => ({
      name: `node-${String(i).padStart(3, '0')}`,
      kind: 'haproxy',
      group: 'default',
      zone: `zone-${i % 3}`,
      capacity: { vcpu: 32, memoryMb: 65_536 },
      healthy: true,
    }),
  );
  // About 60% of the fleet reserved once each tenant holds its reservation on 2 nodes.
  const tenants = Array.from({ length: tenantCount }, (_, i): PlacementTenant => {
    const vcpu = Math.round(random() * 190) / 1000; // 0–0.19 vCPU
    const memoryMb = Math.round(random() * 384);
    return {
      id: `tenant-${String(i).padStart(5, '0')}`,
      kind: 'haproxy',
      reservation: { vcpu, memoryMb },
      limit: { vcpu: vcpu * 4 + 0.1, memoryMb: memoryMb * 4 + 128 },
      weight: 1 + Math.floor(random() * 200),
    };
  });
  return { nodes, tenants };
}

/**
 * Two consecutive rebalancer cycles: the caps in force come from the previous cycle's demand; the
 * new demand drifts by up to ±10%, and 2% of pairs swing hard (a tenant starts or stops flooding).
 */
function demandSeries(assignments: readonly { tenantId: string; nodes: readonly string[] }[]): {
  previous: TenantDemand[];
  next: TenantDemand[];
} {
  const random = prng(7);
  const previous = assignments.flatMap((a) =>
    a.nodes.map((node) => ({
      tenantId: a.tenantId,
      node,
      connections: random() * 6000,
      requestsPerSecond: random() * 3000,
    })),
  );
  const next = previous.map((d) => {
    const factor = random() < 0.02 ? random() * 5 : 0.9 + random() * 0.2;
    return { ...d, connections: d.connections * factor, requestsPerSecond: d.requestsPerSecond * factor };
  });
  return { previous, next };
}

function placementAndAllocation(): Figures {
  const { nodes, tenants } = fleet(10_000, 100);
  const cold: PlacementInput = { nodes, tenants };
  const steady: PlacementInput = { nodes, tenants, current: planPlacement(cold).assignments };
  const assignments = planPlacement(steady).assignments;
  const { previous, next } = demandSeries(assignments);
  const first: AllocationInput = { nodes, tenants, assignments, demand: previous };
  const current: CurrentAllocation[] = computeAllocations(first).allocations.map((a) => ({
    tenantId: a.tenantId,
    node: a.node,
    maxConnections: a.maxConnections,
    requestsPerSecond: a.requestsPerSecond,
  }));
  const cycle: AllocationInput = { ...first, demand: next, current };

  const placementColdMs = time(() => planPlacement(cold));
  const allocationColdMs = time(() => computeAllocations(first));
  const placementMs = time(() => planPlacement(steady));
  const allocationMs = time(() => computeAllocations(cycle));
  const both = measure(() => computeAllocations({ ...cycle, assignments: planPlacement(steady).assignments }));
  return {
    tenants: tenants.length,
    nodes: nodes.length,
    replicas: assignments.reduce((s, a) => s + a.nodes.length, 0),
    cap_changes: computeAllocations(cycle).changes.length,
    placement_cold_ms: placementColdMs,
    allocation_cold_ms: allocationColdMs,
    placement_ms: placementMs,
    allocation_ms: allocationMs,
    placement_allocation_ms: both.wallMs,
    placement_allocation_cpu_ms: both.cpuMs,
    placement_allocation_target_ms: 100,
    placement_allocation_ok: both.wallMs < 100,
  };
}

const pollFleet: Section = () =>
  pollCycle({
    nodes: POLL_NODES,
    tenantsPerNode: POLL_TENANTS_PER_NODE,
    cycles: POLL_CYCLES,
    log: (message) => process.stderr.write(`bench:alloc: ${message}\n`),
  });

/** Each section's figures join the same JSON line. */
const SECTIONS: readonly Section[] = [placementAndAllocation, pollFleet];

async function main(): Promise<void> {
  const figures: Figures = { bench: 'alloc', node: process.version, warmup: WARMUP, runs: RUNS };
  for (const section of SECTIONS) Object.assign(figures, await section());
  process.stdout.write(`${JSON.stringify(figures)}\n`);
}

await main();
