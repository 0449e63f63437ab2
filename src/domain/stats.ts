/**
 * Traffic statistics, pure: proxy stat rows become samples, counters become per-second rates
 * against the previous sample of the same object, and samples fold into one-minute rollups.
 */

export const SAMPLE_KINDS = ['frontend', 'backend', 'member'] as const;
export type SampleKind = (typeof SAMPLE_KINDS)[number];

/** Whose a proxy object is, read back from its rendered name. */
export type ProxyOwner =
  | { readonly kind: 'frontend'; readonly tenant: string; readonly vip: string }
  | { readonly kind: 'backend'; readonly tenant: string; readonly pool: string };

/** The columns of one `show stat` row a sample needs (fleet/replies/show-stat.ts's StatRow has them all). */
export interface StatInput {
  readonly pxname: string;
  readonly svname: string;
  readonly type: 'frontend' | 'backend' | 'server' | 'listener';
  readonly scur: number | null;
  readonly slim: number | null;
  readonly rate: number | null;
  readonly stot: number | null;
  readonly req_tot: number | null;
  readonly hrsp_2xx: number | null;
  readonly hrsp_4xx: number | null;
  readonly hrsp_5xx: number | null;
  readonly dreq: number | null;
  /** Denied sessions: on a tenant frontend, new connections refused at its connection cap. */
  readonly dses: number | null;
  readonly status: string | null;
  readonly check_status: string | null;
  /** Bytes in (from clients, on a frontend) and out; absent: none. */
  readonly bin?: number | null;
  readonly bout?: number | null;
  /** Mean total time (ms) of the last 1024 requests: backends and servers only. */
  readonly ttime?: number | null;
}

/**
 * Monotonic counters since the proxy started counting: HAProxy's restart at 0 on a reload, NGINX's
 * survive reloads (shared dictionaries) and restart only when those are made anew.
 */
export interface Counters {
  /** HTTP requests (`req_tot`), or sessions (`stot`) where there are none (TCP, servers). */
  readonly requests: number;
  readonly responses2xx: number;
  readonly responses4xx: number;
  readonly responses5xx: number;
  /** Requests the frontend denied (`dreq`): the rate cap's 429s, the only request deny on a tenant frontend. */
  readonly denied: number;
  /** Connections refused at the tenant's connection cap (`dses`; the allowlist's refusals are `dcon`, not counted). */
  readonly refused: number;
  /** Bytes received from the clients' side (`bin`) and sent to it (`bout`). */
  readonly bytesIn: number;
  readonly bytesOut: number;
}

const COUNTER_KEYS = [
  'requests',
  'responses2xx',
  'responses4xx',
  'responses5xx',
  'denied',
  'refused',
  'bytesIn',
  'bytesOut',
] as const satisfies readonly (keyof Counters)[];

/** Counters built key by key: the one place that lists them, so a new counter is added once. */
export function countersOf(value: (key: keyof Counters) => number): Counters {
  // A plain loop: the poller builds rates for every object of every node each cycle (50,000 in bench:alloc).
  const out = {} as Record<keyof Counters, number>;
  for (const k of COUNTER_KEYS) out[k] = value(k);
  return out;
}

/** Per-second rates of the counters between two samples; null for the first one. */
export type Rates = { readonly [K in keyof Counters]: number } | null;

export interface StatSample {
  readonly kind: SampleKind;
  readonly tenant: string;
  /** The HAProxy proxy (frontend or backend) the row came from. */
  readonly proxy: string;
  /** VIP (frontend), pool (backend) or member (member). */
  readonly name: string;
  /** The pool of a backend or member; null for a frontend. */
  readonly pool: string | null;
  readonly sessions: number;
  /**
   * The enforced cap: for a frontend, its tenant's connection cap on the node (see
   * withConnectionCaps; else the frontend's maxconn); for a member, its maxconn; null when none.
   */
  readonly sessionLimit: number | null;
  /** New sessions per second over the proxy's last second (`rate`). */
  readonly sessionRate: number;
  readonly counters: Counters;
  readonly rates: Rates;
  /** UP, DOWN, MAINT, DRAIN, ... (first word of HAProxy's status); null for a frontend. */
  readonly status: string | null;
  readonly checkStatus: string | null;
  /**
   * Mean time to answer a request, in ms: NGINX's over the requests since the previous read,
   * HAProxy's `ttime` (its last 1024 requests; backends and members only). Null or absent: none.
   */
  readonly latencyMs?: number | null;
}

const n = (v: number | null): number => v ?? 0;

/**
 * Samples of the tenant objects in `rows`; proxies `ownerOf` does not know (internal `sy_*`,
 * the stats frontend) and listener rows are left out. Rates are null: see withRates.
 */
export function toSamples(rows: readonly StatInput[], ownerOf: (proxy: string) => ProxyOwner | null): StatSample[] {
  const out: StatSample[] = [];
  for (const row of rows) {
    if (row.type === 'listener') continue;
    const owner = ownerOf(row.pxname);
    if (owner === null) continue;
    const base = {
      tenant: owner.tenant,
      proxy: row.pxname,
      sessions: n(row.scur),
      sessionLimit: row.slim,
      sessionRate: n(row.rate),
      counters: {
        requests: row.req_tot ?? n(row.stot),
        responses2xx: n(row.hrsp_2xx),
        responses4xx: n(row.hrsp_4xx),
        responses5xx: n(row.hrsp_5xx),
        denied: n(row.dreq),
        refused: n(row.dses),
        bytesIn: n(row.bin ?? null),
        bytesOut: n(row.bout ?? null),
      },
      rates: null,
    };
    if (owner.kind === 'frontend' && row.type === 'frontend') {
      out.push({
        ...base,
        kind: 'frontend',
        name: owner.vip,
        pool: null,
        status: null,
        checkStatus: null,
        latencyMs: null,
      });
    } else if (owner.kind === 'backend' && row.type === 'backend') {
      out.push({
        ...base,
        kind: 'backend',
        name: owner.pool,
        pool: owner.pool,
        status: statusWord(row.status),
        checkStatus: null,
        latencyMs: row.ttime ?? null,
      });
    } else if (owner.kind === 'backend' && row.type === 'server') {
      out.push({
        ...base,
        kind: 'member',
        name: row.svname,
        pool: owner.pool,
        status: statusWord(row.status),
        checkStatus: stripInProgressMark(row.check_status),
        latencyMs: row.ttime ?? null,
      });
    }
  }
  return out;
}

/** `UP 1/3` (going down) is still UP; `no check` means UP without checks. */
function statusWord(status: string | null): string | null {
  if (status === null) return null;
  if (status === 'no check') return 'UP';
  return status.split(' ')[0] ?? status;
}

/** HAProxy prefixes a check still in progress with `* `. */
function stripInProgressMark(status: string | null): string | null {
  return status === null ? null : status.replace(/^\* /, '');
}

/**
 * Frontend samples with `sessionLimit` set to their tenant's connection cap (`caps`: tenant →
 * connections, read back from the proxy): the cap a tenant is held to on the node, for all its
 * VIPs, rather than the frontend's `maxconn`, which is only the ceiling of its limit. Frontends of
 * tenants without an entry keep theirs.
 */
export function withConnectionCaps(samples: readonly StatSample[], caps: ReadonlyMap<string, number>): StatSample[] {
  if (caps.size === 0) return [...samples];
  return samples.map((s) => {
    const cap = s.kind === 'frontend' ? caps.get(s.tenant) : undefined;
    return cap === undefined ? s : { ...s, sessionLimit: cap };
  });
}

/** Identity of a sampled object within one node. */
export const sampleKey = (s: Pick<StatSample, 'kind' | 'proxy' | 'name'>): string =>
  `${s.kind}\u0000${s.proxy}\u0000${s.name}`;

/**
 * Per-second rates of each counter since `previous` (the same object's last sample), `elapsedS`
 * seconds earlier. A counter that went down was reset by a reload: it counted from 0 since.
 * Null without a previous sample or a positive elapsed time.
 */
export function ratesBetween(current: Counters, previous: Counters | undefined, elapsedS: number): Rates {
  if (previous === undefined || !(elapsedS > 0)) return null;
  return countersOf((k) => (current[k] >= previous[k] ? current[k] - previous[k] : current[k]) / elapsedS);
}

/** One node's samples with rates against its previous read (`previous`: counters by sampleKey). */
export function withRates(
  samples: readonly StatSample[],
  previous: ReadonlyMap<string, Counters>,
  elapsedS: number,
): StatSample[] {
  return samples.map((s) => ({ ...s, rates: ratesBetween(s.counters, previous.get(sampleKey(s)), elapsedS) }));
}

/** What one sample adds to its one-minute rollup: sums and a count, so averages stay exact. */
export interface RollupIncrement {
  readonly kind: SampleKind;
  readonly tenant: string;
  readonly proxy: string;
  readonly name: string;
  readonly minute: Date;
  readonly samples: number;
  readonly sessionsSum: number;
  readonly sessionsMax: number;
  /** Samples with rates (the first after a start has none). */
  readonly rated: number;
  readonly requestRateSum: number;
  readonly rate2xxSum: number;
  readonly rate4xxSum: number;
  readonly rate5xxSum: number;
  readonly deniedRateSum: number;
  readonly bytesInRateSum: number;
  readonly bytesOutRateSum: number;
  readonly latencyMsSum: number;
  /** Samples with a latency. */
  readonly latencySamples: number;
  /** The last cap seen in the minute. */
  readonly sessionLimit: number | null;
}

export const minuteOf = (at: Date): Date => new Date(Math.floor(at.getTime() / 60_000) * 60_000);

/** Folds one node's samples taken `at` into rollup increments, one per object and minute. */
export function rollupIncrements(samples: readonly StatSample[], at: Date): RollupIncrement[] {
  const minute = minuteOf(at);
  return samples.map((s) => ({
    kind: s.kind,
    tenant: s.tenant,
    proxy: s.proxy,
    name: s.name,
    minute,
    samples: 1,
    sessionsSum: s.sessions,
    sessionsMax: s.sessions,
    rated: s.rates === null ? 0 : 1,
    requestRateSum: s.rates?.requests ?? 0,
    rate2xxSum: s.rates?.responses2xx ?? 0,
    rate4xxSum: s.rates?.responses4xx ?? 0,
    rate5xxSum: s.rates?.responses5xx ?? 0,
    deniedRateSum: s.rates?.denied ?? 0,
    bytesInRateSum: s.rates?.bytesIn ?? 0,
    bytesOutRateSum: s.rates?.bytesOut ?? 0,
    latencyMsSum: s.latencyMs ?? 0,
    latencySamples: s.latencyMs === null || s.latencyMs === undefined ? 0 : 1,
    sessionLimit: s.sessionLimit,
  }));
}

/** Merges two increments of the same object and minute (what the database upsert does). */
export function mergeIncrements(a: RollupIncrement, b: RollupIncrement): RollupIncrement {
  return {
    ...b,
    samples: a.samples + b.samples,
    sessionsSum: a.sessionsSum + b.sessionsSum,
    sessionsMax: Math.max(a.sessionsMax, b.sessionsMax),
    rated: a.rated + b.rated,
    requestRateSum: a.requestRateSum + b.requestRateSum,
    rate2xxSum: a.rate2xxSum + b.rate2xxSum,
    rate4xxSum: a.rate4xxSum + b.rate4xxSum,
    rate5xxSum: a.rate5xxSum + b.rate5xxSum,
    deniedRateSum: a.deniedRateSum + b.deniedRateSum,
    bytesInRateSum: a.bytesInRateSum + b.bytesInRateSum,
    bytesOutRateSum: a.bytesOutRateSum + b.bytesOutRateSum,
    latencyMsSum: a.latencyMsSum + b.latencyMsSum,
    latencySamples: a.latencySamples + b.latencySamples,
    sessionLimit: b.sessionLimit ?? a.sessionLimit,
  };
}

/** One point of a VIP's time series, summed over nodes. */
export interface StatPoint {
  readonly at: string;
  readonly requestRate: number;
  readonly sessions: number;
  readonly rate2xx: number;
  readonly rate4xx: number;
  readonly rate5xx: number;
  /** Requests answered 429 by the rate limiter, per second. */
  readonly rate429: number;
  /** Bytes per second received from clients and sent to them. */
  readonly bytesInRate: number;
  readonly bytesOutRate: number;
  /** Mean time to answer a request (ms), weighted by each node's request rate; null when no node reported one. */
  readonly latencyMs: number | null;
  /** The frontend caps (maxconn) summed over nodes; null when no node reported one. */
  readonly sessionLimit: number | null;
}

/** Most points one series request may ask for. */
export const MAX_SERIES_POINTS = 2000;
export const MIN_STEP_S = 10;

export interface SeriesWindow {
  readonly from: Date;
  readonly to: Date;
  readonly stepS: number;
}

/** What is wrong with a requested window, by field, or null when it is fine. */
export function windowProblem(w: SeriesWindow): { readonly field: 'from' | 'step'; readonly message: string } | null {
  if (!(w.from.getTime() < w.to.getTime())) return { field: 'from', message: 'must be before to' };
  const points = Math.ceil((w.to.getTime() - w.from.getTime()) / 1000 / w.stepS);
  if (points > MAX_SERIES_POINTS) {
    return {
      field: 'step',
      message: `gives ${points} points; at most ${MAX_SERIES_POINTS}: use a step of at least ${Math.ceil((w.to.getTime() - w.from.getTime()) / 1000 / MAX_SERIES_POINTS)} s`,
    };
  }
  return null;
}

/** Raw samples answer a window that starts within their retention; older windows read rollups. */
export function seriesSource(from: Date, now: Date, rawRetentionS: number): 'raw' | 'rollup' {
  return now.getTime() - from.getTime() <= rawRetentionS * 1000 ? 'raw' : 'rollup';
}
