import { nonNegative } from '../util/non-negative.js';
import { byString } from '../util/sort.js';
import type { ResourceDimension } from './capacity.js';

/**
 * Demand: what each tenant wants on each node, smoothed from the proxies' stats polls. Allocation
 * turns it into caps; this file only estimates it.
 */

/** Smoothed demand of one tenant on one node, from `estimateDemand`: what `computeAllocations` reads. */
export interface TenantDemand {
  readonly tenantId: string;
  readonly node: string;
  /** Concurrent connections wanted: sessions plus queued. */
  readonly connections: number;
  /** Requests per second wanted: served plus refused with 429. */
  readonly requestsPerSecond: number;
  /**
   * Refused at its cap in the latest poll (429s; connections refused): the tenant wants more
   * than the cap lets it show. Absent: not saturated.
   */
  readonly saturated?: Readonly<Record<ResourceDimension, boolean>>;
}

/** One poll of one tenant frontend/backend on one node. */
export interface StatsSample {
  readonly tenantId: string;
  readonly node: string;
  /** Current sessions on the tenant's frontend (HAProxy `scur`). */
  readonly sessions: number;
  /** Requests waiting for a server slot in the tenant's backend (HAProxy `qcur`). */
  readonly queued: number;
  /** Requests per second served over the interval (HAProxy `req_rate`, or Δ`req_tot` / interval). */
  readonly requestRate: number;
  /** Requests refused with 429 by the tenant's rate cap during the interval (a count). */
  readonly rejected: number;
  /**
   * Requests the sample's request rate already counts among `requestRate` (HAProxy's req_tot
   * counts denied requests too): `rejected` then only marks saturation, it is not added again.
   */
  readonly rejectedInRate?: boolean;
  /** New connections refused at the tenant's connection cap during the interval (a count). */
  readonly refusedConnections?: number;
  /** Length of the interval the counts cover, in seconds. */
  readonly intervalSeconds: number;
}

export interface DemandSmoothing {
  /** Weight of a new observation above the previous estimate: rise quickly when load grows. */
  readonly alphaUp: number;
  /** Weight of a new observation below the previous estimate: fall slowly so a pause is not a departure. */
  readonly alphaDown: number;
  /** Estimates below this (in connections or req/s) become 0, so decay ends. */
  readonly floor: number;
}

const pairKey = (tenantId: string, node: string): string => `${tenantId}\u0000${node}`;

/** Demand rises at once (a busy tenant is lent capacity on the next poll) and halves its excess per idle poll. */
export const DEFAULT_DEMAND_SMOOTHING: DemandSmoothing = Object.freeze({ alphaUp: 1, alphaDown: 0.5, floor: 0.5 });

/**
 * Smooths observed demand per tenant and node with an exponential moving average:
 * `next = previous + α·(observed − previous)`, α = alphaUp when rising, alphaDown when falling.
 * Observed connections = sessions + queued; observed req/s = request rate + 429s / interval
 * (refused requests are demand the cap turned away). Samples of one tenant on one node (one per
 * frontend or backend) are added up. A tenant refused at a cap in this round (429s, refused
 * connections) is `saturated` in that dimension: not smoothed, it says what the latest poll saw.
 * A pair with a previous estimate but no sample this round (a poll that failed) keeps its
 * estimate and saturation: no data is not zero demand. Drop pairs of tenants no longer placed
 * before calling. Output sorted by tenant id, then node.
 */
export function estimateDemand(
  samples: readonly StatsSample[],
  previous: readonly TenantDemand[],
  smoothing: DemandSmoothing = DEFAULT_DEMAND_SMOOTHING,
): TenantDemand[] {
  const observed = observe(samples);
  const prev = new Map<string, TenantDemand>();
  for (const d of [...previous].sort(compareDemand))
    if (!prev.has(pairKey(d.tenantId, d.node))) prev.set(pairKey(d.tenantId, d.node), d);
  const out = new Map<string, TenantDemand>(prev);
  for (const [key, o] of observed) {
    const p = prev.get(key);
    out.set(key, {
      tenantId: o.tenantId,
      node: o.node,
      connections: smooth(p?.connections, o.connections, smoothing),
      requestsPerSecond: smooth(p?.requestsPerSecond, o.requestsPerSecond, smoothing),
      ...(o.saturated !== undefined &&
        (o.saturated.connections || o.saturated.requestsPerSecond) && { saturated: o.saturated }),
    });
  }
  return [...out.values()].sort(compareDemand);
}

function observe(samples: readonly StatsSample[]): Map<string, TenantDemand> {
  const sorted = [...samples].sort(
    (a, b) =>
      byString(a.tenantId, b.tenantId) ||
      byString(a.node, b.node) ||
      a.sessions - b.sessions ||
      a.queued - b.queued ||
      a.requestRate - b.requestRate ||
      a.rejected - b.rejected ||
      a.intervalSeconds - b.intervalSeconds,
  );
  const out = new Map<string, TenantDemand>();
  for (const s of sorted) {
    const key = pairKey(s.tenantId, s.node);
    const prev = out.get(key);
    const interval = Number.isFinite(s.intervalSeconds) && s.intervalSeconds > 0 ? s.intervalSeconds : 1;
    const rejected = nonNegative(s.rejected);
    const refused = nonNegative(s.refusedConnections ?? 0);
    out.set(key, {
      tenantId: s.tenantId,
      node: s.node,
      connections: (prev?.connections ?? 0) + nonNegative(s.sessions) + nonNegative(s.queued),
      requestsPerSecond:
        (prev?.requestsPerSecond ?? 0) +
        nonNegative(s.requestRate) +
        (s.rejectedInRate === true ? 0 : rejected / interval),
      saturated: {
        connections: (prev?.saturated?.connections ?? false) || refused > 0,
        requestsPerSecond: (prev?.saturated?.requestsPerSecond ?? false) || rejected > 0,
      },
    });
  }
  return out;
}

function smooth(previous: number | undefined, observed: number, s: DemandSmoothing): number {
  const prev = previous === undefined || !Number.isFinite(previous) ? observed : Math.max(0, previous);
  const alpha = observed > prev ? s.alphaUp : s.alphaDown;
  const next = prev + alpha * (observed - prev);
  // Three decimals: enough for caps in whole units, and stored estimates stay short and exact-repeatable.
  return next < s.floor ? 0 : Math.round(next * 1000) / 1000;
}

function compareDemand(a: TenantDemand, b: TenantDemand): number {
  return (
    byString(a.tenantId, b.tenantId) ||
    byString(a.node, b.node) ||
    a.connections - b.connections ||
    a.requestsPerSecond - b.requestsPerSecond
  );
}
