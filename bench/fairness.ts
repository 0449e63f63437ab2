/**
 * bench:fairness — fair shares under overload (issue 11) on one real HAProxy node (loopback), the
 * scenario of test/integration/fairness.test.ts: a 0.04 vCPU / 32 MB node (400 req/s, 312
 * connections), tenants X and Y reserving 100 req/s and 78 connections each, limits the whole
 * node, stats polled every 5 s. Rate phases (open-loop, paced): idle; X at 250 req/s; both at 250;
 * idle. Then connections: Y keeps 150 slow requests open with X idle, then X comes with as many.
 * Prints one JSON line: polls to lend and to reclaim (counted from stored polls), served against
 * entitled (the cap read back from the proxy) per tenant and phase, utilisation when
 * over-subscribed, and `met` against the targets (lend ≤ 2 polls, reclaim ≤ 1 poll, served/entitled
 * ≥ 0.9, utilisation ≥ 0.9). Needs `haproxy` on the PATH and PostgreSQL at 127.0.0.1:5432.
 */
import {
  FAIRNESS_ENV,
  FAIR_NODE,
  NODE_CAPACITY,
  RESERVED,
  TENANTS,
  runConnectionScenario,
  runRateScenario,
  startFairnessNode,
  watchCaps,
  type CapsWatch,
  type FairnessNode,
  type RateWindow,
} from '../test/integration/fairness-support.js';
import { startScratchControlPlane, type ScratchControlPlane } from './scratch-control-plane.js';
import { round } from './support.js';

const log = (msg: string) => process.stderr.write(`bench:fairness: ${msg}\n`);

/** Per tenant over a phase's windows: means, and the worst window's served / min(offered, entitled). */
function servedVsEntitled(windows: readonly RateWindow[], tenant: string) {
  const busy = windows.filter((w) => w.tenants[tenant]!.offered > 0);
  if (busy.length === 0) return null;
  const mean = (f: (w: RateWindow) => number) => round(busy.reduce((n, w) => n + f(w), 0) / busy.length, 1);
  const ratios = busy.map(
    (w) => w.tenants[tenant]!.served / Math.min(w.tenants[tenant]!.offered, w.tenants[tenant]!.entitled),
  );
  return {
    windows: busy.length,
    offered: mean((w) => w.tenants[tenant]!.offered),
    entitled: mean((w) => w.tenants[tenant]!.entitled),
    served: mean((w) => w.tenants[tenant]!.served),
    limited: mean((w) => w.tenants[tenant]!.limited),
    errors: mean((w) => w.tenants[tenant]!.errors + w.tenants[tenant]!.other),
    ratioMin: round(Math.min(...ratios), 3),
  };
}

let plane: ScratchControlPlane | undefined;
let node: FairnessNode | undefined;
let watch: CapsWatch | undefined;
try {
  plane = await startScratchControlPlane('fairness', { ...FAIRNESS_ENV });
  const db = plane.cp.database.db;
  log('starting the node and both tenants');
  node = await startFairnessNode(plane.admin);
  watch = watchCaps(node.edge);
  log('rate phases');
  const rate = await runRateScenario(db, node, watch, log);
  log('connection phases');
  const conn = await runConnectionScenario(db, node, watch, log);

  const phases = ['x-busy', 'both-busy'] as const;
  const served = Object.fromEntries(
    phases.map((p) => [
      p,
      Object.fromEntries(
        TENANTS.map((t) => [
          t,
          servedVsEntitled(
            rate.windows.filter((w) => w.phase === p),
            t,
          ),
        ]),
      ),
    ]),
  );
  const over = rate.windows.filter((w) => w.phase === 'both-busy');
  const utilisation = over.map(
    (w) => TENANTS.reduce((n, t) => n + w.tenants[t]!.served, 0) / NODE_CAPACITY.requestsPerSecond,
  );
  const ratios = Object.values(served).flatMap((byTenant) =>
    Object.values(byTenant).flatMap((s) => (s === null ? [] : [s.ratioMin])),
  );
  const yFirstPoll = rate.early
    .filter((w) => w.phase === 'both-busy')
    .map((w) => round(w.tenants[TENANTS[1]]!.served, 1));

  const lend = { rate: rate.lend?.polls ?? null, connections: conn.lent?.polls ?? null };
  const reclaim = { rate: rate.reclaim?.polls ?? null, connections: conn.xReserved?.polls ?? null };
  const atMost = (v: number | null, n: number) => v !== null && v <= n;
  const line = {
    bench: 'fairness',
    node: { ...FAIR_NODE, ...NODE_CAPACITY },
    reserved: RESERVED,
    pollS: Number(FAIRNESS_ENV.SWITCHYARD_STATS_INTERVAL_S),
    pollsToLend: lend,
    lentCaps: { rate: rate.lend?.cap ?? null, connections: conn.lent?.cap ?? null },
    pollsToReclaim: reclaim,
    reclaimMs: { connections: conn.xReserved?.ms ?? null },
    pollsToFairShare: { rate: rate.fair?.polls ?? null, connections: conn.fair?.polls ?? null },
    fairCaps: { rate: rate.fair?.caps ?? null, connections: conn.fair?.caps ?? null },
    pollsToEvenWhenIdle: rate.even?.polls ?? null,
    servedVsEntitled: served,
    yServedFromFirstPoll: yFirstPoll,
    utilisationOverSubscribed: {
      min: round(Math.min(...utilisation), 3),
      mean: round(utilisation.reduce((a, b) => a + b, 0) / utilisation.length, 3),
    },
    connections: { yAlone: conn.yAlone, both: conn.both },
    target: 'lend <= 2 polls, reclaim <= 1 poll, served/entitled >= 0.9, utilisation >= 0.9',
    met:
      atMost(lend.rate, 2) &&
      atMost(lend.connections, 2) &&
      atMost(reclaim.rate, 1) &&
      atMost(reclaim.connections, 1) &&
      ratios.length > 0 &&
      ratios.every((r) => r >= 0.9) &&
      utilisation.length > 0 &&
      Math.min(...utilisation) >= 0.9,
  };
  process.stdout.write(`${JSON.stringify(line)}\n`);
} finally {
  await watch?.stop();
  await node?.close();
  await plane?.stop();
}
