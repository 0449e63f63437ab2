import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/app.js';
import { eventually, request } from './haproxy-render-support.js';
import { ProxyNode } from './proxy-node.js';
import { STATS_ENV, holdingMember, oneVipTenant, type HoldingMember } from './stats-support.js';

/**
 * The stats poller against a real HAProxy 2.6 on loopback, in front of a small HTTP member, with a
 * second HAProxy node registered but not running and an NGINX node: the control plane runs the
 * poller every second, and what it stores shows through GET /v1/tenants/{t}/stats. Every wait is
 * bounded; only PIDs this file started are stopped.
 */

const HOST = '127.0.0.1';

let app: TestApp;
let edge: ProxyNode;
let dead: ProxyNode;
let vipPort = 0;
let member: HoldingMember;

async function write(method: string, path: string, body?: unknown): Promise<void> {
  const res = await app.admin(method, path, body);
  expect(res.status, `${method} ${path}: ${JSON.stringify(res.body)}`).toBeLessThan(300);
}

const window = (seconds: number, step = 10) => {
  const to = new Date(Date.now() + 10_000);
  return `from=${new Date(to.getTime() - seconds * 1000).toISOString()}&to=${to.toISOString()}&step=${step}`;
};

const samplesOf = async (node: string) => {
  const { rows } = await sql<{ n: number; latest: Date | null }>`
    select count(*)::int as n, max(at) as latest from stat_samples where node_name = ${node}`.execute(
    app.cp.database.db,
  );
  return rows[0]!;
};

beforeAll(async () => {
  app = await startTestApp({ ...STATS_ENV });
  member = await holdingMember(HOST);
  vipPort = await oneVipTenant(app.admin, 's1', HOST, member.port);
  edge = await ProxyNode.create('st-edge-1');
  dead = await ProxyNode.create('st-edge-2');
  for (const node of [edge, dead]) await write('POST', '/v1/nodes', node.registration());
  await write('POST', '/v1/nodes', {
    name: 'st-ngx',
    kind: 'nginx',
    capacity: { vcpu: 1, memoryMb: 512 },
    configDir: edge.dir,
  });
  await eventually('the config of st-edge-1', async () => (await edge.install(app.admin)).revision, 15_000, 200);
  await edge.start();
}, 60_000);

afterAll(async () => {
  member?.release();
  await edge?.remove();
  await dead?.remove();
  await app?.stop();
  await member?.close();
});

describe('stats poller', () => {
  it('when requests go through a VIP and sessions are held open, then GET stats shows the requests, the sessions and the cap', async () => {
    // Rates need a previous read: the first read after the proxy starts only sets the baseline.
    await eventually(
      'two reads of st-edge-1',
      async () => ((await samplesOf(edge.name)).n >= 6 ? true : undefined),
      10_000,
      100,
    );
    for (let i = 0; i < 3; i++)
      void request({ host: HOST, port: vipPort, path: '/hold' }, 60_000).catch(() => undefined);
    await eventually(
      'three held requests at the member',
      async () => (member.held() >= 3 ? true : undefined),
      5_000,
      20,
    );
    const started = Date.now();
    for (let i = 0; i < 40; i++)
      expect((await request({ host: HOST, port: vipPort, path: `/r${i}` })).status).toBe(200);
    const series = await eventually(
      'requests and sessions in the stats',
      async () => {
        const res = await app.admin('GET', `/v1/tenants/s1/stats?${window(120)}`);
        expect(res.status, JSON.stringify(res.body)).toBe(200);
        const points = res.body.vips.find((v: { vip: string }) => v.vip === 'web')?.points ?? [];
        const requests = points.reduce((sum: number, p: { requestRate: number }) => sum + p.requestRate * 10, 0);
        const sessions = Math.max(0, ...points.map((p: { sessions: number }) => p.sessions));
        return requests >= 20 && sessions >= 2.5 ? res.body : undefined;
      },
      30_000,
      500,
    );
    expect(series.source).toBe('raw');
    expect(series.step).toBe(10);
    const last = series.vips[0].points.at(-1);
    expect(last.sessionLimit).toBeGreaterThan(0);
    expect(last.rate5xx).toBe(0);
    // Bytes come from HAProxy's bin/bout; a frontend reports no time of its own.
    expect(series.vips[0].points.some((p: { bytesOutRate: number }) => p.bytesOutRate > 0)).toBe(true);
    expect(last.latencyMs).toBeNull();
    const total = series.vips[0].points.reduce((s: number, p: { rate2xx: number }) => s + p.rate2xx * 10, 0);
    // A point is the average rate over the bucket's samples so far: rate × step is only an estimate of a count.
    expect(total).toBeGreaterThan(20);
    expect(Date.now() - started).toBeLessThan(30_000);
    member.release();
  }, 45_000);

  it('when the window is older than raw retention, then rollups answer it', async () => {
    const res = await app.admin('GET', `/v1/tenants/s1/stats?${window(3600, 60)}`);
    expect(res.status).toBe(200);
    expect(res.body.source).toBe('rollup');
    const points = res.body.vips.find((v: { vip: string }) => v.vip === 'web')?.points ?? [];
    expect(points.length).toBeGreaterThan(0);
    expect(points.some((p: { requestRate: number }) => p.requestRate > 0)).toBe(true);
  });

  it('when a node is down and another is NGINX, then the running node keeps its samples coming and the others record nothing', async () => {
    const before = await samplesOf(edge.name);
    await eventually(
      'newer samples of st-edge-1',
      async () => {
        const now = await samplesOf(edge.name);
        return now.n > before.n + 3 ? true : undefined;
      },
      10_000,
      200,
    );
    expect((await samplesOf(dead.name)).n).toBe(0);
    expect((await samplesOf('st-ngx')).n).toBe(0);
    const { rows } = await sql<{ kind: string; name: string; status: string | null }>`
      select distinct kind, name, status from stat_samples where node_name = ${edge.name} and at > now() - interval '3 seconds'`.execute(
      app.cp.database.db,
    );
    expect(rows).toEqual(
      expect.arrayContaining([
        { kind: 'frontend', name: 'web', status: null },
        { kind: 'backend', name: 'web', status: 'UP' },
        { kind: 'member', name: 'm1', status: 'UP' },
      ]),
    );
  });

  it('when raw samples and rollups are past retention, then the next polls delete them', async () => {
    const db = app.cp.database.db;
    const old = new Date(Date.now() - 3_600_000);
    const ancient = new Date(Date.now() - 8 * 86_400_000);
    await db
      .insertInto('stat_samples')
      .values({
        node_name: edge.name,
        kind: 'frontend',
        tenant_id: 's1',
        proxy: 'fe_s1_web',
        name: 'web',
        pool: null,
        at: old,
        sessions: 1,
        session_limit: null,
        session_rate: 0,
        requests: 0,
        responses_2xx: 0,
        responses_4xx: 0,
        responses_5xx: 0,
        denied: 0,
        request_rate: null,
        rate_2xx: null,
        rate_4xx: null,
        rate_5xx: null,
        denied_rate: null,
        status: null,
        check_status: null,
      })
      .execute();
    await db
      .insertInto('stat_rollups')
      .values({
        node_name: edge.name,
        kind: 'frontend',
        tenant_id: 's1',
        proxy: 'fe_s1_web',
        name: 'web',
        minute: ancient,
        samples: 1,
        sessions_sum: 1,
        sessions_max: 1,
        rated: 0,
        request_rate_sum: 0,
        rate_2xx_sum: 0,
        rate_4xx_sum: 0,
        rate_5xx_sum: 0,
        denied_rate_sum: 0,
        session_limit: null,
      })
      .execute();
    await eventually(
      'old rows pruned',
      async () => {
        const raw = await db
          .selectFrom('stat_samples')
          .select(db.fn.countAll<number>().as('n'))
          .where('at', '<=', old)
          .executeTakeFirstOrThrow();
        const rollups = await db
          .selectFrom('stat_rollups')
          .select(db.fn.countAll<number>().as('n'))
          .where('minute', '<=', ancient)
          .executeTakeFirstOrThrow();
        return Number(raw.n) === 0 && Number(rollups.n) === 0 ? true : undefined;
      },
      5_000,
      100,
    );
    // Recent samples stay.
    expect((await samplesOf(edge.name)).n).toBeGreaterThan(0);
  });

  it('when the window has too many points or is reversed, then 400 names the field', async () => {
    const from = '2026-01-01T00:00:00Z';
    const tooMany = await app.admin('GET', `/v1/tenants/s1/stats?from=${from}&to=2026-01-02T00:00:00Z&step=10`);
    expect(tooMany.status).toBe(400);
    expect(JSON.stringify(tooMany.body.error)).toContain('query.step');
    const reversed = await app.admin('GET', `/v1/tenants/s1/stats?from=${from}&to=2025-12-31T00:00:00Z`);
    expect(reversed.status).toBe(400);
    expect(JSON.stringify(reversed.body.error)).toContain('query.from');
    const small = await app.admin('GET', `/v1/tenants/s1/stats?step=5`);
    expect(small.status).toBe(400);
    expect(JSON.stringify(small.body.error)).toContain('step');
  });
});
