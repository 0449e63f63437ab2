import { describe, expect, it } from 'vitest';
import { nginxSamples } from '../../../src/domain/nginx-samples.js';
import type { NginxCounters, NginxStats } from '../../../src/domain/nginx-runtime.js';
import { sampleKey, type StatSample } from '../../../src/domain/stats.js';
import { upstreamName } from '../../../src/render/nginx-names.js';

/**
 * NGINX stats become the samples HAProxy's show stat gives: one frontend per VIP, one backend per
 * pool (its persistence-variant upstreams folded in), one member per peer; rates per object
 * against the previous read, resets counted from zero.
 */

const counters = (requests: number, over: Partial<NginxCounters> = {}): NginxCounters => ({
  requests,
  responses2xx: requests,
  responses3xx: 0,
  responses4xx: 0,
  responses5xx: 0,
  denied: 0,
  refused: 0,
  bytesIn: 0,
  bytesOut: 0,
  latencyMsSum: 0,
  ...over,
});

interface Traffic {
  /** Requests per object since the dictionaries were made. */
  readonly vip: number;
  readonly base: number;
  readonly cookie: number;
  /** Of `base`, `cookie`: on peer m1 (the rest on m2). */
  readonly baseM1: number;
  readonly cookieM1: number;
}

/**
 * Tenant t1: VIP `web` reaches pool `web` through its cookie variant, VIP `api` through the base
 * upstream; both pools' peers m1 and m2. Tenant t2 is idle.
 */
function reply(now: number, t: Traffic, over: Partial<NginxStats> = {}): NginxStats {
  const base = upstreamName('t1', 'web');
  const cookie = `${base}_ck_sid`;
  const peer = (upstream: string, name: string, requests: number, active = 0) => ({
    [`${upstream}/${name}`]: {
      ...counters(requests),
      upstream,
      peer: name,
      active,
      health: 'up' as const,
      lastCheck: 'HTTP 200',
    },
  });
  return {
    now,
    vips: {
      't1/web': {
        ...counters(t.vip, { responses2xx: t.vip - 10, responses4xx: 10, denied: 6, refused: 0 }),
        tenant: 't1',
        vip: 'web',
        active: 4,
      },
      't1/api': { ...counters(t.base), tenant: 't1', vip: 'api', active: 1 },
      't2/web': { ...counters(0), tenant: 't2', vip: 'web', active: 0 },
    },
    upstreams: {
      [base]: { ...counters(t.base), tenant: 't1', pool: 'web', active: 1 },
      [cookie]: { ...counters(t.cookie), tenant: 't1', pool: 'web', active: 3 },
    },
    peers: {
      ...peer(base, 'm1', t.baseM1, 1),
      ...peer(base, 'm2', t.base - t.baseM1),
      ...peer(cookie, 'm1', t.cookieM1, 2),
      ...peer(cookie, 'm2', t.cookie - t.cookieM1, 1),
    },
    tenants: { t1: { active: 5, requestsPerSecond: 0 }, t2: { active: 0, requestsPerSecond: 0 } },
    ...over,
  };
}

const find = (samples: readonly StatSample[], kind: StatSample['kind'], tenant: string, name: string) => {
  const found = samples.filter((s) => s.kind === kind && s.tenant === tenant && s.name === name);
  expect(found, `${kind} ${tenant}/${name}`).toHaveLength(1);
  return found[0]!;
};

const T0 = Date.parse('2026-03-01T12:00:00Z');
const first: Traffic = { vip: 100, base: 40, cookie: 60, baseM1: 30, cookieM1: 50 };

describe('nginxSamples', () => {
  it('when a node is read, then each VIP is a frontend, each pool one backend, each peer one member, as HAProxy samples are', () => {
    const { samples } = nginxSamples(reply(T0, first), undefined, 0, upstreamName);
    expect(samples.map((s) => `${s.kind} ${s.tenant} ${s.proxy} ${s.name} ${s.pool}`).sort()).toEqual([
      'backend t1 t_t1_web web web',
      'frontend t1 t1/api api null',
      'frontend t1 t1/web web null',
      'frontend t2 t2/web web null',
      'member t1 t_t1_web m1 web',
      'member t1 t_t1_web m2 web',
    ]);
    // Keys are unique per node, as the stats tables' primary key needs.
    expect(new Set(samples.map(sampleKey)).size).toBe(samples.length);
    const web = find(samples, 'frontend', 't1', 'web');
    expect(web).toMatchObject({
      sessions: 4,
      sessionLimit: null,
      rates: null,
      status: null,
      checkStatus: null,
      counters: { requests: 100, responses2xx: 90, responses4xx: 10, responses5xx: 0, denied: 6, refused: 0 },
    });
  });

  it("when a pool is reached through persistence variants, then its upstreams fold into one backend and a peer's into one member", () => {
    const { samples } = nginxSamples(reply(T0, first), undefined, 0, upstreamName);
    expect(find(samples, 'backend', 't1', 'web')).toMatchObject({ sessions: 4, counters: { requests: 100 } });
    expect(find(samples, 'member', 't1', 'm1')).toMatchObject({ sessions: 3, counters: { requests: 80 } });
    expect(find(samples, 'member', 't1', 'm2')).toMatchObject({ sessions: 1, counters: { requests: 20 } });
  });

  it("when read again, then rates are each object's growth per second of the node's clock, summed over variants", () => {
    const a = nginxSamples(reply(T0, first), undefined, 0, upstreamName);
    // 10 s later by the node's clock; the control plane's 12 s (a slow reply) is not used.
    const b = nginxSamples(
      reply(T0 + 10_000, { vip: 300, base: 90, cookie: 210, baseM1: 60, cookieM1: 150 }),
      a.reading,
      12,
      upstreamName,
    );
    const web = find(b.samples, 'frontend', 't1', 'web');
    expect(web.rates).toEqual({
      requests: 20,
      responses2xx: 20,
      responses4xx: 0,
      responses5xx: 0,
      denied: 0,
      refused: 0,
      bytesIn: 0,
      bytesOut: 0,
    });
    expect(web.sessionRate).toBe(20);
    expect(find(b.samples, 'backend', 't1', 'web').rates?.requests).toBe(20);
    expect(find(b.samples, 'member', 't1', 'm1').rates?.requests).toBe(13);
    expect(find(b.samples, 'member', 't1', 'm2').rates?.requests).toBe(7);
    expect(find(b.samples, 'frontend', 't2', 'web').rates?.requests).toBe(0);
  });

  it('when a counter went down (the dictionaries were made anew), then that object counted from zero since; the others keep their deltas', () => {
    const a = nginxSamples(reply(T0, first), undefined, 0, upstreamName);
    // nginx restarted: the cookie upstream and its peers start again; the base upstream kept counting (in this made-up reply).
    const b = nginxSamples(
      reply(T0 + 10_000, { vip: 150, base: 60, cookie: 30, baseM1: 45, cookieM1: 20 }),
      a.reading,
      10,
      upstreamName,
    );
    expect(find(b.samples, 'frontend', 't1', 'web').rates?.requests).toBe(5);
    // base +20, cookie 30 since its restart: 50 in 10 s, never negative.
    expect(find(b.samples, 'backend', 't1', 'web').rates?.requests).toBe(5);
    expect(find(b.samples, 'member', 't1', 'm1').rates?.requests).toBe((15 + 20) / 10);
    for (const s of b.samples) for (const r of Object.values(s.rates ?? {})) expect(r).toBeGreaterThanOrEqual(0);
  });

  it("when a variant upstream appears or goes between reads, then only its own share moves: the pool's rate does not jump", () => {
    const a = nginxSamples(reply(T0, first), undefined, 0, upstreamName);
    const next = reply(T0 + 10_000, { vip: 200, base: 140, cookie: 60, baseM1: 100, cookieM1: 50 });
    // The cookie variant is gone (its VIP's persistence changed): the folded sum drops from 100 to 140 − 0 …
    const { [`${upstreamName('t1', 'web')}_ck_sid`]: _gone, ...upstreams } = next.upstreams;
    const peers = Object.fromEntries(Object.entries(next.peers).filter(([k]) => !k.includes('_ck_')));
    const b = nginxSamples({ ...next, upstreams, peers }, a.reading, 10, upstreamName);
    // … yet the base upstream's own growth (100 in 10 s) is the pool's rate, not a reset of 140.
    expect(find(b.samples, 'backend', 't1', 'web').rates?.requests).toBe(10);
    // A variant seen for the first time is rated from zero: it started counting after the previous read.
    const c = nginxSamples(
      reply(T0 + 20_000, { vip: 260, base: 150, cookie: 50, baseM1: 105, cookieM1: 40 }),
      b.reading,
      10,
      upstreamName,
    );
    expect(find(c.samples, 'backend', 't1', 'web').rates?.requests).toBe((10 + 50) / 10);
  });

  it('when requests took time and moved bytes, then a sample has their per-second rates and the mean request time since the last read', () => {
    const at = (requests: number, latencyMsSum: number): NginxStats => ({
      now: T0 + requests * 10,
      vips: {
        't1/web': {
          ...counters(requests, { bytesIn: requests * 200, bytesOut: requests * 5000, latencyMsSum }),
          tenant: 't1',
          vip: 'web',
          active: 0,
        },
      },
      upstreams: {},
      peers: {},
      tenants: {},
    });
    const a = nginxSamples(at(100, 1000), undefined, 0, upstreamName);
    expect(a.samples[0]!.latencyMs).toBeNull();
    // 100 more requests in 1 s, 3,000 ms between them: 30 ms each, whatever the 10 ms of the first 100.
    const b = nginxSamples(at(200, 4000), a.reading, 0, upstreamName);
    expect(b.samples[0]).toMatchObject({
      latencyMs: 30,
      counters: { bytesIn: 40_000, bytesOut: 1_000_000 },
      rates: { requests: 100, bytesIn: 20_000, bytesOut: 500_000 },
    });
    // No request since: no latency to report (not 0 ms).
    expect(nginxSamples(at(200, 4000), b.reading, 1, upstreamName).samples[0]!.latencyMs).toBeNull();
  });

  it("when the node's clock did not move forward, then the control plane's elapsed time rates the read", () => {
    const a = nginxSamples(reply(T0, first), undefined, 0, upstreamName);
    const b = nginxSamples(reply(T0, { ...first, vip: 150 }), a.reading, 5, upstreamName);
    expect(find(b.samples, 'frontend', 't1', 'web').rates?.requests).toBe(10);
    const c = nginxSamples(reply(T0, { ...first, vip: 150 }), a.reading, 0, upstreamName);
    expect(find(c.samples, 'frontend', 't1', 'web').rates).toBeNull();
  });

  it('when a peer names an upstream the reply does not list, then it is left out rather than counted under a guessed pool', () => {
    const r = reply(T0, first);
    const stray = { ...counters(5), upstream: 'gone', peer: 'm9', active: 0, health: 'up' as const, lastCheck: null };
    const { samples } = nginxSamples({ ...r, peers: { ...r.peers, 'gone/m9': stray } }, undefined, 0, upstreamName);
    expect(samples.some((s) => s.name === 'm9')).toBe(false);
    expect(find(samples, 'member', 't1', 'm1').counters.requests).toBe(80);
  });
});
