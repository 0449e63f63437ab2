// Pure shaping of API answers into what the tables and charts show. No DOM, no fetch.

/** Cap fields of an allocation entry, by the dimension name its history uses. */
const CAP_FIELD = { connections: 'maxConnections', requestsPerSecond: 'requestsPerSecond' };

/**
 * A tenant's traffic (GET /v1/tenants/{t}/stats) summed over its VIPs, one point per bucket,
 * oldest first: `{ t (ms), requestRate, sessions }`.
 */
export function trafficSeries(stats) {
  const buckets = new Map();
  for (const vip of stats?.vips ?? []) {
    for (const p of vip.points) {
      const t = Date.parse(p.at);
      const b = buckets.get(t) ?? { t, requestRate: 0, sessions: 0 };
      b.requestRate += p.requestRate;
      b.sessions += p.sessions;
      buckets.set(t, b);
    }
  }
  return [...buckets.values()].sort((a, b) => a.t - b.t);
}

/** The latest traffic point, or null when the window has none. */
export function latestTraffic(series) {
  return series.length === 0 ? null : series[series.length - 1];
}

/**
 * The caps in force now, summed over nodes (GET /v1/tenants/{t}/allocation `current`), and where
 * they come from: `rebalancer` (stored caps) or `reservation` (none stored yet). Null when the
 * tenant has none (not active, or no nodes).
 */
export function allocationTotals(current) {
  if (!current || current.length === 0) return null;
  let connections = 0;
  let requestsPerSecond = 0;
  const sources = new Set();
  for (const a of current) {
    connections += a.maxConnections;
    requestsPerSecond += a.requestsPerSecond;
    sources.add(a.source ?? 'rebalancer');
  }
  return { connections, requestsPerSecond, nodes: current.length, sources: [...sources].sort() };
}

/**
 * The tenant's cap in one dimension summed over nodes, as a step series over [fromMs, toMs]:
 * the value now is `current`; going back, each history entry (newest first, `from` → `to` at
 * `at`) is undone. A node whose value was null (no cap stored then) adds nothing; a time when no
 * node had a value is a gap (v: null). History older than what the API returned is unknown: the
 * series then starts with the oldest value known.
 */
export function allocationSeries(allocation, dimension, fromMs, toMs) {
  const field = CAP_FIELD[dimension];
  const now = new Map();
  for (const a of allocation?.current ?? []) now.set(a.node, a[field]);
  const changes = (allocation?.history ?? [])
    .filter((e) => e.dimension === dimension)
    .map((e) => ({ node: e.node, from: e.from, to: e.to, t: Date.parse(e.at) }))
    .sort((a, b) => a.t - b.t);
  const nodes = new Set([...now.keys(), ...changes.map((c) => c.node)]);
  if (nodes.size === 0) return [];

  // Value of each node just after time t: the `from` of its first change after t, else its value now.
  const totalAt = (t) => {
    let sum = 0;
    let any = false;
    for (const node of nodes) {
      const next = changes.find((c) => c.node === node && c.t > t);
      const v = next ? next.from : (now.get(node) ?? null);
      if (v !== null && v !== undefined) {
        sum += v;
        any = true;
      }
    }
    return any ? sum : null;
  };
  const points = [{ t: fromMs, v: totalAt(fromMs) }];
  for (const c of changes) {
    if (c.t > fromMs && c.t <= toMs && points[points.length - 1].t !== c.t) points.push({ t: c.t, v: totalAt(c.t) });
  }
  points.push({ t: toMs, v: totalAt(toMs) });
  return points;
}

// --- formatting -----------------------------------------------------------------------------------

const INT = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
const DEC = new Intl.NumberFormat('en-US', { maximumFractionDigits: 1 });

/** 12,345 for counts; one decimal under 100 (rates). */
export function formatNumber(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return '—';
  return Math.abs(v) < 100 ? DEC.format(v) : INT.format(v);
}

/** 12k, 1.5M: for chart axes. */
export function formatCompact(v) {
  const a = Math.abs(v);
  if (a >= 1e6) return `${DEC.format(v / 1e6)}M`;
  if (a >= 1e3) return `${DEC.format(v / 1e3)}k`;
  return DEC.format(v);
}

/** `{vcpu: 2, memoryMb: 4096}` → "2 vCPU / 4 GB". */
export function formatResources(r) {
  if (!r) return '—';
  const memory = r.memoryMb % 1024 === 0 ? `${r.memoryMb / 1024} GB` : `${INT.format(r.memoryMb)} MB`;
  return `${DEC.format(r.vcpu)} vCPU / ${memory}`;
}

/** Local wall-clock time, "17:42:05". */
export function formatClock(ms) {
  return new Date(ms).toLocaleTimeString('en-GB', { hour12: false });
}

/** "just now", "42 s ago", "5 min ago", "3 h ago". */
export function formatAgo(ms, nowMs) {
  const s = Math.max(0, Math.round((nowMs - ms) / 1000));
  if (s < 5) return 'just now';
  if (s < 120) return `${s} s ago`;
  if (s < 7200) return `${Math.round(s / 60)} min ago`;
  return `${Math.round(s / 3600)} h ago`;
}
