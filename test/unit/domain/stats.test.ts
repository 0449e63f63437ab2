import { describe, expect, it } from 'vitest';
import {
  mergeIncrements,
  minuteOf,
  ratesBetween,
  rollupIncrements,
  sampleKey,
  seriesSource,
  toSamples,
  windowProblem,
  withConnectionCaps,
  withRates,
  type Counters,
  type StatInput,
} from '../../../src/domain/stats.js';
import { backendName, frontendName, proxyOwner } from '../../../src/render/haproxy-names.js';

function row(pxname: string, svname: string, type: StatInput['type'], over: Partial<StatInput> = {}): StatInput {
  return {
    pxname,
    svname,
    type,
    scur: 0,
    slim: null,
    rate: 0,
    stot: 0,
    req_tot: null,
    hrsp_2xx: null,
    hrsp_4xx: null,
    hrsp_5xx: null,
    dreq: null,
    dses: null,
    status: null,
    check_status: null,
    ...over,
  };
}

const counters = (requests: number, ok = 0, c4 = 0, c5 = 0, denied = 0, refused = 0): Counters => ({
  requests,
  responses2xx: ok,
  responses4xx: c4,
  responses5xx: c5,
  denied,
  refused,
  bytesIn: 0,
  bytesOut: 0,
});

describe('proxyOwner', () => {
  it('when given a rendered frontend or backend name, then it names the tenant and VIP or pool', () => {
    expect(proxyOwner(frontendName('t1', 'web'))).toEqual({ kind: 'frontend', tenant: 't1', vip: 'web' });
    expect(proxyOwner(backendName('t-2', 'api-v2'))).toEqual({ kind: 'backend', tenant: 't-2', pool: 'api-v2' });
    expect(proxyOwner(backendName('t1', 'web', true))).toEqual({ kind: 'backend', tenant: 't1', pool: 'web' });
  });

  it('when the proxy is internal or foreign, then it has no owner', () => {
    for (const name of ['sy_unrouted_http', 'stats', 'fe_main', 'be_t1_web_x', 'fe__web', 'be_t1_web_tcp_tcp'])
      expect(proxyOwner(name)).toBeNull();
  });
});

describe('toSamples', () => {
  const rows = [
    row('fe_t1_web', 'FRONTEND', 'frontend', {
      scur: 7,
      slim: 500,
      rate: 3,
      stot: 90,
      req_tot: 120,
      hrsp_2xx: 100,
      hrsp_4xx: 15,
      hrsp_5xx: 5,
      dreq: 12,
      dses: 4,
    }),
    row('fe_t1_web', 'sock-1', 'listener', { scur: 7 }),
    row('be_t1_web', 'm1', 'server', { scur: 2, slim: 50, stot: 60, status: 'UP 1/2', check_status: '* L7OK' }),
    row('be_t1_web', 'm2', 'server', { status: 'MAINT' }),
    row('be_t1_web', 'm3', 'server', { status: 'no check' }),
    row('be_t1_web', 'BACKEND', 'backend', { scur: 2, stot: 60, req_tot: 60, status: 'UP' }),
    row('be_t1_db_tcp', 'BACKEND', 'backend', { scur: 1, stot: 4, status: 'DOWN' }),
    row('sy_unrouted_http', 'BACKEND', 'backend', { scur: 9 }),
  ];

  it('when rows come from show stat, then each tenant frontend, backend and member becomes a sample and the rest is left out', () => {
    const samples = toSamples(rows, proxyOwner);
    expect(samples.map((s) => `${s.kind}:${s.tenant}:${s.proxy}:${s.name}:${s.status}`)).toEqual([
      'frontend:t1:fe_t1_web:web:null',
      'member:t1:be_t1_web:m1:UP',
      'member:t1:be_t1_web:m2:MAINT',
      'member:t1:be_t1_web:m3:UP',
      'backend:t1:be_t1_web:web:UP',
      'backend:t1:be_t1_db_tcp:db:DOWN',
    ]);
    const fe = samples[0]!;
    expect(fe).toMatchObject({ sessions: 7, sessionLimit: 500, sessionRate: 3, pool: null, rates: null });
    expect(fe.counters).toEqual(counters(120, 100, 15, 5, 12, 4));
    expect(samples[1]).toMatchObject({ pool: 'web', sessionLimit: 50, checkStatus: 'L7OK', counters: counters(60) });
  });

  it("when the caps map holds a tenant's connection cap, then its frontends report that cap, not their maxconn ceiling", () => {
    const samples = withConnectionCaps(
      toSamples(rows, proxyOwner),
      new Map([
        ['t1', 40],
        ['other', 7],
      ]),
    );
    expect(samples.filter((s) => s.kind === 'frontend').map((s) => s.sessionLimit)).toEqual([40]);
    expect(samples.find((s) => s.kind === 'member' && s.name === 'm1')!.sessionLimit).toBe(50);
    expect(withConnectionCaps(toSamples(rows, proxyOwner), new Map())[0]!.sessionLimit).toBe(500);
  });

  it('when rows carry bytes and times, then samples count the bytes and backends and members report their mean time; frontends none', () => {
    const samples = toSamples(
      [
        row('fe_t1_web', 'FRONTEND', 'frontend', { bin: 1000, bout: 9000 }),
        row('be_t1_web', 'm1', 'server', { bin: 700, bout: 6000, ttime: 12 }),
        row('be_t1_web', 'BACKEND', 'backend', { bin: 800, bout: 7000, ttime: 11 }),
      ],
      proxyOwner,
    );
    expect(samples.map((s) => [s.kind, s.counters.bytesIn, s.counters.bytesOut, s.latencyMs])).toEqual([
      ['frontend', 1000, 9000, null],
      ['member', 700, 6000, 12],
      ['backend', 800, 7000, 11],
    ]);
    const [fe, m1] = rollupIncrements(
      withRates(samples, new Map([[sampleKey(samples[0]!), counters(0)]]), 10),
      new Date('2026-03-01T12:00:30Z'),
    );
    expect(fe).toMatchObject({ bytesInRateSum: 100, bytesOutRateSum: 900, latencySamples: 0, latencyMsSum: 0 });
    expect(m1).toMatchObject({ latencySamples: 1, latencyMsSum: 12 });
    expect(mergeIncrements(m1!, m1!)).toMatchObject({ latencySamples: 2, latencyMsSum: 24 });
  });

  it('when a TCP object has no HTTP counters, then its sessions stand in for requests', () => {
    const db = toSamples(rows, proxyOwner).find((s) => s.proxy === 'be_t1_db_tcp')!;
    expect(db.counters).toEqual(counters(4));
  });
});

describe('rates', () => {
  it('when counters grew, then rates are the increase per second', () => {
    expect(ratesBetween(counters(150, 130, 15, 5, 2, 30), counters(100, 90, 5, 5, 0, 10), 10)).toEqual({
      requests: 5,
      responses2xx: 4,
      responses4xx: 1,
      responses5xx: 0,
      denied: 0.2,
      refused: 2,
      bytesIn: 0,
      bytesOut: 0,
    });
  });

  it('when a counter went down (the proxy reloaded), then it counted from zero since', () => {
    expect(ratesBetween(counters(30), counters(1000), 10)?.requests).toBe(3);
  });

  it('when there is no previous sample or no time passed, then there is no rate', () => {
    expect(ratesBetween(counters(30), undefined, 10)).toBeNull();
    expect(ratesBetween(counters(30), counters(10), 0)).toBeNull();
  });

  it('when a node is read again, then each object gets rates against its own previous counters', () => {
    const [fe, m1] = toSamples(
      [row('fe_t1_web', 'FRONTEND', 'frontend', { req_tot: 200 }), row('be_t1_web', 'm1', 'server', { stot: 40 })],
      proxyOwner,
    );
    const previous = new Map([[sampleKey(fe!), counters(100)]]);
    const rated = withRates([fe!, m1!], previous, 20);
    expect(rated[0]!.rates?.requests).toBe(5);
    expect(rated[1]!.rates).toBeNull();
  });
});

describe('rollups', () => {
  const at = new Date('2026-01-01T10:03:27.500Z');
  const [fe] = toSamples([row('fe_t1_web', 'FRONTEND', 'frontend', { scur: 4, slim: 100, req_tot: 0 })], proxyOwner);

  it('when samples fold into a minute, then sums, counts and max add up to exact averages', () => {
    expect(minuteOf(at).toISOString()).toBe('2026-01-01T10:03:00.000Z');
    const first = rollupIncrements([fe!], at)[0]!;
    expect(first).toMatchObject({
      samples: 1,
      rated: 0,
      sessionsSum: 4,
      sessionsMax: 4,
      requestRateSum: 0,
      sessionLimit: 100,
    });
    const second = rollupIncrements(
      [
        {
          ...fe!,
          sessions: 10,
          sessionLimit: 80,
          rates: {
            requests: 6,
            responses2xx: 5,
            responses4xx: 1,
            responses5xx: 0,
            denied: 1,
            refused: 0,
            bytesIn: 0,
            bytesOut: 0,
          },
        },
      ],
      at,
    )[0]!;
    const merged = mergeIncrements(first, second);
    expect(merged).toMatchObject({
      samples: 2,
      rated: 1,
      sessionsSum: 14,
      sessionsMax: 10,
      requestRateSum: 6,
      deniedRateSum: 1,
      sessionLimit: 80,
    });
    expect(merged.sessionsSum / merged.samples).toBe(7);
  });
});

describe('series windows', () => {
  const from = new Date('2026-01-01T00:00:00Z');
  it('when the window is reversed or has too many points, then the field at fault is named', () => {
    expect(windowProblem({ from, to: from, stepS: 60 })?.field).toBe('from');
    expect(windowProblem({ from, to: new Date(from.getTime() + 86_400_000), stepS: 10 })).toMatchObject({
      field: 'step',
    });
    expect(windowProblem({ from, to: new Date(from.getTime() + 86_400_000), stepS: 60 })).toBeNull();
  });

  it('when the window starts within raw retention, then raw samples answer it, else rollups', () => {
    const now = new Date(from.getTime() + 3_600_000);
    expect(seriesSource(from, now, 3600)).toBe('raw');
    expect(seriesSource(from, now, 3599)).toBe('rollup');
  });
});
