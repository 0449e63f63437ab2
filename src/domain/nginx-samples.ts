import type { NginxCounters, NginxStats } from './nginx-runtime.js';
import { countersOf, type Counters, type Rates, type StatSample } from './stats.js';

/**
 * NGINX stats as the samples HAProxy's `show stat` gives, pure: a frontend per VIP, a backend per
 * pool and a member per peer, so demand, allocation, the stats API and /metrics read an NGINX
 * node like a HAProxy one. One pool may be several upstreams on a node (its persistence variants,
 * `t_<tenant>_<pool>_src`, `..._ck_<cookie>`): they fold into the pool's one backend, and a peer
 * into one member across them.
 *
 * Rates are taken per object the node reports (VIP, upstream, upstream/peer) and then summed, so
 * an upstream variant that appears or goes between two reads moves only its own share (a folded
 * sum that went down would read as a reset of the whole pool). NGINX counters live in shared
 * dictionaries and survive reloads; they start again at 0 only when a dictionary is made anew
 * (size changed, nginx restarted) or an entry was evicted: a counter that went down counted from 0
 * since, as on a HAProxy reload. An object absent from the previous read is new since then (its
 * counters started at 0 after it), so it is rated from zero.
 *
 * Member health is not here: the reconciler's NGINX pass stores it from the same reply, like
 * HAProxy's. Samples carry no status (nor the node's caps: `sessionLimit` is null; the stats
 * reply does not report them).
 */

/** One node's read: its clock and each reported object's counters, the baseline of the next read's rates. */
export interface NginxReading {
  /** The node's clock at the read (ms since the epoch), from the reply. */
  readonly now: number;
  readonly counters: ReadonlyMap<string, NginxCounters>;
}

export interface NginxSamples {
  readonly samples: StatSample[];
  /** Keep as the next read's `previous`. */
  readonly reading: NginxReading;
}

const NGINX_COUNTER_KEYS = [
  'requests',
  'responses2xx',
  'responses3xx',
  'responses4xx',
  'responses5xx',
  'denied',
  'refused',
  'bytesIn',
  'bytesOut',
  'latencyMsSum',
] as const satisfies readonly (keyof NginxCounters)[];

const nginxCounters = (value: (k: keyof NginxCounters) => number): NginxCounters => {
  const out = {} as Record<keyof NginxCounters, number>;
  for (const k of NGINX_COUNTER_KEYS) out[k] = value(k);
  return out;
};

const ZERO = nginxCounters(() => 0);

/** A finite, non-negative count (a reply that passed validation has them; this keeps a stray one from poisoning a sum). */
const count = (v: number): number => (Number.isFinite(v) && v > 0 ? v : 0);

/**
 * How much each counter grew since `before`: all of them from 0 when any went down (the object's
 * counters were made anew together, so one that went down means all restarted).
 */
function growth(now: NginxCounters, before: NginxCounters): NginxCounters {
  const reset = NGINX_COUNTER_KEYS.some((k) => count(now[k]) < count(before[k]));
  return nginxCounters((k) => (reset ? count(now[k]) : count(now[k]) - count(before[k])));
}

const sampleCounters = (c: NginxCounters): Counters => countersOf((k) => count(c[k]));

/** Sums of the objects folded into one sample: counters, what is active, and growth (null: no baseline). */
interface Fold {
  readonly tenant: string;
  readonly proxy: string;
  readonly name: string;
  readonly pool: string | null;
  readonly kind: StatSample['kind'];
  counters: NginxCounters;
  active: number;
  growth: NginxCounters | null;
}

const add = (a: NginxCounters, b: NginxCounters): NginxCounters => nginxCounters((k) => count(a[k]) + count(b[k]));

/**
 * The samples of one stats reply. `previous`: the node's last read (undefined the first time:
 * no rates yet, as on HAProxy). `elapsedS`: seconds since it by the control plane's clock, used
 * only when the node's own clocks do not give a positive interval. `poolProxy` names the backend
 * and member samples' proxy (the pool's base upstream name, as the renderer writes it); the
 * frontend's is the VIP's key in the reply (`<tenant>/<vip>`).
 */
export function nginxSamples(
  stats: NginxStats,
  previous: NginxReading | undefined,
  elapsedS: number,
  poolProxy: (tenant: string, pool: string) => string,
): NginxSamples {
  const counters = new Map<string, NginxCounters>();
  const folds = new Map<string, Fold>();
  const fold = (
    key: string,
    objectKey: string,
    c: NginxCounters,
    active: number,
    into: Omit<Fold, 'counters' | 'active' | 'growth'>,
  ) => {
    const own = nginxCounters((k) => count(c[k]));
    counters.set(objectKey, own);
    const grown = previous === undefined ? null : growth(own, previous.counters.get(objectKey) ?? ZERO);
    const f = folds.get(key);
    if (f === undefined) {
      folds.set(key, { ...into, counters: own, active: count(active), growth: grown });
      return;
    }
    f.counters = add(f.counters, own);
    f.active += count(active);
    f.growth = f.growth === null || grown === null ? null : add(f.growth, grown);
  };

  for (const [key, v] of Object.entries(stats.vips)) {
    fold(`frontend\u0000${v.tenant}\u0000${v.vip}`, `vip\u0000${key}`, v, v.active, {
      kind: 'frontend',
      tenant: v.tenant,
      proxy: key,
      name: v.vip,
      pool: null,
    });
  }
  for (const [name, u] of Object.entries(stats.upstreams)) {
    fold(`backend\u0000${u.tenant}\u0000${u.pool}`, `upstream\u0000${name}`, u, u.active, {
      kind: 'backend',
      tenant: u.tenant,
      proxy: poolProxy(u.tenant, u.pool),
      name: u.pool,
      pool: u.pool,
    });
  }
  for (const [key, p] of Object.entries(stats.peers)) {
    // A peer belongs to its upstream's pool; one whose upstream the reply does not list has no owner to count it under.
    const u = Object.hasOwn(stats.upstreams, p.upstream) ? stats.upstreams[p.upstream] : undefined;
    if (u === undefined) continue;
    fold(`member\u0000${u.tenant}\u0000${u.pool}\u0000${p.peer}`, `peer\u0000${key}`, p, p.active, {
      kind: 'member',
      tenant: u.tenant,
      proxy: poolProxy(u.tenant, u.pool),
      name: p.peer,
      pool: u.pool,
    });
  }

  const byNode = previous === undefined ? 0 : (stats.now - previous.now) / 1000;
  const seconds = byNode > 0 ? byNode : elapsedS;
  const samples: StatSample[] = [];
  for (const f of folds.values()) {
    const rates: Rates = f.growth === null || !(seconds > 0) ? null : countersOf((k) => count(f.growth![k]) / seconds);
    samples.push({
      kind: f.kind,
      tenant: f.tenant,
      proxy: f.proxy,
      name: f.name,
      pool: f.pool,
      // NGINX counts requests in flight (its connection cap counts those too): the sessions of its objects.
      sessions: f.active,
      sessionLimit: null,
      // A request is a session here: new ones per second are the request rate.
      sessionRate: rates?.requests ?? 0,
      counters: sampleCounters(f.counters),
      rates,
      status: null,
      checkStatus: null,
      // The mean over the requests since the previous read; none without requests (or a baseline).
      latencyMs: f.growth !== null && f.growth.requests > 0 ? f.growth.latencyMsSum / f.growth.requests : null,
    });
  }
  return { samples, reading: { now: stats.now, counters } };
}
