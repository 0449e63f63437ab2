import { spawnSync } from 'node:child_process';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NginxCounters, NginxRuntimeChannel, NginxStats } from '../../src/domain/nginx-runtime.js';
import type { RuntimeCommand } from '../../src/fleet/runtime-api/commands/runtime-command.js';
import type { CommandResult } from '../../src/fleet/runtime-api/runtime-executor.js';
import { StatsPoller } from '../../src/jobs/stats-poller.js';
import { createLogger } from '../../src/logger.js';
import { startTestApp, type TestApp } from '../support/app.js';

/**
 * An NGINX node's stats through the real control plane (real PostgreSQL, the app's stats API,
 * /metrics, demand source and allocator), beside a HAProxy node: the stats poller reads both,
 * HAProxy through a fake Runtime API client answering `show stat`, NGINX through a fake runtime
 * channel answering `stats()` (the real one is fleet/nginx-runtime's; nginx-stats-accuracy.test.ts
 * runs it against a real nginx). Both nodes see the same traffic for tenants of their kind, so
 * whatever the control plane makes of one it must make of the other: the same samples, the same
 * series, the same usage metrics, the same demand and the same caps.
 */

const CAPACITY = { vcpu: 1, memoryMb: 1024 };
const RESERVATION = { vcpu: 0.1, memoryMb: 100 };

let app: TestApp;
let poller: StatsPoller;
let clock = new Date();

/** What both nodes report for their busy tenant: totals since their counters started. */
interface Traffic {
  requests: number;
  sessions: number;
  denied: number;
  refused: number;
}
const traffic: Traffic = { requests: 1000, sessions: 7000, denied: 0, refused: 0 };

// ---- HAProxy node h1: `show stat` of fe/be_<tenant>_web with one server m1, as HAProxy 2.6 prints it.
const COLUMNS = [
  'pxname',
  'svname',
  'scur',
  'slim',
  'stot',
  'dreq',
  'status',
  'type',
  'rate',
  'check_status',
  'hrsp_2xx',
  'hrsp_4xx',
  'hrsp_5xx',
  'req_tot',
  'dses',
  'bin',
  'bout',
];

function showStat(): string {
  const rows: (string | number)[][] = [];
  for (const [tenant, t] of [
    ['hbusy', traffic],
    ['hidle', { requests: 0, sessions: 0, denied: 0, refused: 0 }],
  ] as const) {
    const ok = t.requests - t.denied - t.refused;
    const [fe, be] = [`fe_${tenant}_web`, `be_${tenant}_web`];
    // Bytes as the NGINX node counts them: 100 in and 1,000 out per request.
    const bytes = (requests: number) => [requests * 100, requests * 1000];
    rows.push(
      // No maxconn (slim) and no caps map: sessionLimit null, as NGINX reports none.
      [
        fe,
        'FRONTEND',
        t.sessions,
        '',
        t.requests,
        t.denied,
        'OPEN',
        0,
        0,
        '',
        ok,
        t.denied,
        t.refused,
        t.requests,
        t.refused,
        ...bytes(t.requests),
      ],
      [be, 'm1', t.sessions, '', ok, '', 'UP', 2, 0, 'L7OK', ok, 0, 0, '', '', ...bytes(ok)],
      [be, 'BACKEND', t.sessions, '', ok, 0, 'UP', 1, 0, '', ok, 0, 0, ok, '', ...bytes(ok)],
    );
  }
  return `${[`# ${COLUMNS.join(',')}`, ...rows.map((r) => r.join(','))].join('\n')}\n`;
}

const clients = {
  client: () => ({
    execute: async (commands: readonly RuntimeCommand[]): Promise<CommandResult[]> =>
      commands.map((command) =>
        command.line.startsWith('show stat')
          ? { status: 'ok', command, output: showStat() }
          : { status: 'error', command, message: 'Unknown map identifier' },
      ),
  }),
};

// ---- NGINX node n1: the same traffic, its pool reached through two upstreams (base and cookie variant).
const counters = (t: Traffic, share = 1): NginxCounters => {
  const requests = Math.round(t.requests * share);
  const denied = Math.round(t.denied * share);
  const refused = Math.round(t.refused * share);
  return {
    requests,
    responses2xx: requests - denied - refused,
    responses3xx: 0,
    responses4xx: denied,
    responses5xx: refused,
    denied,
    refused,
    bytesIn: requests * 100,
    bytesOut: requests * 1000,
    latencyMsSum: requests * 2,
  };
};
/** What reached the pool: what the VIP admitted. */
const admitted = (t: Traffic): Traffic => ({
  requests: t.requests - t.denied - t.refused,
  sessions: t.sessions,
  denied: 0,
  refused: 0,
});

function nginxStats(): NginxStats {
  const idle: Traffic = { requests: 0, sessions: 0, denied: 0, refused: 0 };
  const vips: Record<string, NginxStats['vips'][string]> = {};
  const upstreams: Record<string, NginxStats['upstreams'][string]> = {};
  const peers: Record<string, NginxStats['peers'][string]> = {};
  for (const [tenant, t] of [
    ['nbusy', traffic],
    ['nidle', idle],
  ] as const) {
    vips[`${tenant}/web`] = { ...counters(t), tenant, vip: 'web', active: t.sessions };
    const pool = admitted(t);
    // A quarter through the base upstream, the rest through the cookie variant: one backend, one member.
    for (const [upstream, share] of [
      [`t_${tenant}_web`, 0.25],
      [`t_${tenant}_web_ck_sid`, 0.75],
    ] as const) {
      const active = Math.round(t.sessions * share);
      upstreams[upstream] = { ...counters(pool, share), tenant, pool: 'web', active };
      peers[`${upstream}/m1`] = {
        ...counters(pool, share),
        upstream,
        peer: 'm1',
        active,
        health: 'up',
        lastCheck: 'HTTP 200',
      };
    }
  }
  return { now: clock.getTime(), vips, upstreams, peers, tenants: {} };
}

const channelsAsked: { node: string; endpoint: string }[] = [];
const nginxChannels = {
  channel: (node: string, endpoint: { host: string; port: number }): NginxRuntimeChannel => {
    channelsAsked.push({ node, endpoint: `${endpoint.host}:${endpoint.port}` });
    return {
      held: () => Promise.reject(new Error('not this test')),
      push: () => Promise.reject(new Error('not this test')),
      stats: async () => nginxStats(),
      close: () => undefined,
    };
  },
};

async function ok(method: string, path: string, body?: unknown) {
  const res = await app.admin(method, path, body);
  expect(res.status, `${method} ${path}: ${JSON.stringify(res.body)}`).toBeLessThan(300);
  return res.body;
}

/** Advances the clock 10 s, adds 200 requests (and `more` on top) to the busy tenants, polls both nodes. */
async function pollAfter(more: Partial<Traffic> = {}) {
  clock = new Date(clock.getTime() + 10_000);
  traffic.requests += 200 + (more.denied ?? 0) + (more.refused ?? 0);
  traffic.denied += more.denied ?? 0;
  traffic.refused += more.refused ?? 0;
  return poller.poll();
}

const series = async (tenant: string) => {
  const from = new Date(clock.getTime() - 600_000).toISOString();
  const to = new Date(clock.getTime() + 1000).toISOString();
  return ok('GET', `/v1/tenants/${tenant}/stats?from=${from}&to=${to}&step=10`);
};

beforeAll(async () => {
  // Heartbeats are not sent here: an hour's interval keeps both nodes healthy for the allocator.
  app = await startTestApp({ SWITCHYARD_HEARTBEAT_INTERVAL_S: '3600' });
  await ok('POST', '/v1/nodes', {
    name: 'h1',
    kind: 'haproxy',
    capacity: CAPACITY,
    runtimeAddress: { host: '127.0.0.1', port: 9 },
  });
  await ok('POST', '/v1/nodes', { name: 'n1', kind: 'nginx', capacity: CAPACITY });
  // NGINX's runtime address (its Lua channel) is nginx-channel's to accept through the API; set it
  // in the table, where the poller reads it.
  await app.database.handle.db
    .updateTable('nodes')
    .set({ runtime_host: '127.0.0.1', runtime_port: 10 })
    .where('name', '=', 'n1')
    .execute();
  for (const [id, proxyKind] of [
    ['hbusy', 'haproxy'],
    ['hidle', 'haproxy'],
    ['nbusy', 'nginx'],
    ['nidle', 'nginx'],
  ] as const)
    await ok('POST', '/v1/tenants', { id, proxyKind, reservation: RESERVATION, limit: CAPACITY });
  poller = new StatsPoller(
    {
      db: app.cp.database.db,
      clients,
      nginxChannels,
      logger: createLogger('silent'),
      metrics: app.cp.services.metrics,
      now: () => clock,
    },
    { intervalS: 10, nodeTimeoutMs: 750, rawRetentionS: 3600, rollupRetentionS: 86_400 },
  );
}, 60_000);
afterAll(async () => {
  await poller?.stop();
  await app?.stop();
});

describe('the stats poller on an NGINX node', () => {
  it('when both nodes report the same traffic, then the NGINX samples land where the HAProxy ones do, with the same rates', async () => {
    const first = await poller.poll();
    expect(first.skipped).toEqual([]);
    expect(first.nodes).toEqual([
      { node: 'h1', ok: true, samples: 6 },
      { node: 'n1', ok: true, samples: 6 },
    ]);
    expect(channelsAsked.at(-1)).toEqual({ node: 'n1', endpoint: '127.0.0.1:10' });
    await pollAfter();
    const { rows } = await sql<{
      node_name: string;
      kind: string;
      tenant_id: string;
      name: string;
      pool: string | null;
      sessions: number;
      request_rate: number | null;
      rate_2xx: number | null;
    }>`
      select node_name, kind, tenant_id, name, pool, sessions, request_rate, rate_2xx from stat_samples
      where at = ${clock} order by node_name, kind, tenant_id, name`.execute(app.cp.database.db);
    const of = (node: string) =>
      rows
        .filter((r) => r.node_name === node)
        .map(({ node_name: _, tenant_id, ...r }) => ({ ...r, tenant: tenant_id.slice(1) }));
    expect(of('n1')).toEqual(of('h1'));
    expect(of('n1')).toContainEqual({
      kind: 'frontend',
      tenant: 'busy',
      name: 'web',
      pool: null,
      sessions: 7000,
      request_rate: 20,
      rate_2xx: 20,
    });
    // The two upstreams of the pool are one backend and one member.
    expect(
      of('n1')
        .filter((r) => r.tenant === 'busy')
        .map((r) => `${r.kind} ${r.name}`),
    ).toEqual(['backend web', 'frontend web', 'member m1']);
  });

  it('when a tenant on NGINX is read, then GET stats answers its series as it does for a HAProxy tenant, with its latency too', async () => {
    const [nginx, haproxy] = [await series('nbusy'), await series('hbusy')];
    // HAProxy reports no time per frontend; NGINX does, per VIP.
    const withoutLatency = (vips: { points: { latencyMs: unknown }[] }[]) =>
      vips.map((v) => ({ ...v, points: v.points.map(({ latencyMs: _, ...p }) => p) }));
    expect(withoutLatency(nginx.vips)).toEqual(withoutLatency(haproxy.vips));
    const last = nginx.vips.find((v: { vip: string }) => v.vip === 'web').points.at(-1);
    expect(last).toEqual({
      at: expect.any(String),
      requestRate: 20,
      sessions: 7000,
      rate2xx: 20,
      rate4xx: 0,
      rate5xx: 0,
      rate429: 0,
      bytesInRate: 2000,
      bytesOutRate: 20_000,
      latencyMs: 2,
      sessionLimit: null,
    });
    expect(haproxy.vips[0].points.at(-1).latencyMs).toBeNull();
  });

  it('when /metrics is scraped, then NGINX tenants have the same usage as HAProxy tenants and promtool passes it', async () => {
    const text = (await app.admin('GET', '/metrics')).body as string;
    for (const tenant of ['nbusy', 'hbusy']) {
      expect(text).toContain(`switchyard_tenant_usage{tenant="${tenant}",resource="requests_per_second"} 20\n`);
      expect(text).toContain(`switchyard_tenant_usage{tenant="${tenant}",resource="connections"} 7000\n`);
    }
    const check = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect(check.error, 'promtool is missing: apt-get install prometheus (.ci/run does)').toBeUndefined();
    expect(`${check.stdout}${check.stderr}`.trim()).toBe('');
    expect(check.status).toBe(0);
  });

  it("when the NGINX node's channel fails, then that node is reported failed and HAProxy's samples still come", async () => {
    const real = nginxChannels.channel;
    nginxChannels.channel = () => ({
      ...real('n1', { host: '127.0.0.1', port: 10 }),
      stats: () => Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:10')),
    });
    try {
      const result = await pollAfter();
      expect(result.nodes).toEqual([
        { node: 'h1', ok: true, samples: 6 },
        { node: 'n1', ok: false, error: 'cannot read stats: connect ECONNREFUSED 127.0.0.1:10' },
      ]);
      // A channel that never answers is given up at the node timeout, like a silent Runtime API.
      nginxChannels.channel = () => ({
        ...real('n1', { host: '127.0.0.1', port: 10 }),
        stats: () => new Promise(() => undefined),
      });
      const started = Date.now();
      const silent = await pollAfter();
      expect(silent.nodes[1]).toEqual({ node: 'n1', ok: false, error: 'cannot read stats: no reply within 750 ms' });
      expect(Date.now() - started).toBeLessThan(5000);
    } finally {
      nginxChannels.channel = real;
    }
    // Back: its rates span the gap (against its last read), not a reset.
    await pollAfter();
    const [n, h] = [await series('nbusy'), await series('hbusy')];
    expect(n.vips[0].points.at(-1).requestRate).toBe(h.vips[0].points.at(-1).requestRate);
  });
});

describe('demand and allocation for an NGINX tenant', () => {
  /** A tenant's allocation in a plan, without what names its node or tenant. */
  const allocation = (plan: any, tenant: string) => {
    const a = plan.allocations.find((x: any) => x.tenantId === tenant);
    expect(a, `${tenant} in ${JSON.stringify(plan.allocations)}`).toBeDefined();
    const { tenantId: _t, node: _n, ...rest } = a;
    return rest;
  };
  const changes = (items: any[], node: string) =>
    items
      .filter((i) => i.node === node)
      .map(({ node: _n, tenantId, kind: _k, ...rest }) => ({ ...rest, tenant: tenantId.slice(1) }))
      .sort((a, b) => `${a.tenant}${a.dimension}`.localeCompare(`${b.tenant}${b.dimension}`));

  it("when an NGINX tenant is busy, then its demand raises its caps exactly as a HAProxy tenant's does, at once (no reload cadence)", async () => {
    // Two reads (the second has rates): the demand source sees both busy tenants' 7,000 sessions and 20 req/s.
    await pollAfter();
    await pollAfter();
    const plan = (await ok('POST', '/v1/rebalance?dryRun=true')).plan;
    expect(plan.demand).toBe('stats');
    expect(allocation(plan, 'nbusy')).toEqual(allocation(plan, 'hbusy'));
    expect(allocation(plan, 'nidle')).toEqual(allocation(plan, 'hidle'));
    expect(allocation(plan, 'nbusy')).toMatchObject({ demand: { connections: 7000, requestsPerSecond: 20 } });
    expect(allocation(plan, 'nbusy').maxConnections).toBeGreaterThan(allocation(plan, 'nidle').maxConnections);

    // Applied: the caps were first stored (from none) by the same pass; a busy tenant's caps grow past the idle split.
    const applied = await ok('POST', '/v1/rebalance');
    expect(changes(applied.items, 'n1')).toEqual(changes(applied.items, 'h1'));
    expect(applied.items.filter((i: any) => i.node === 'n1').every((i: any) => i.status === 'applied')).toBe(true);

    // A later change on NGINX goes out at once as on HAProxy: caps are runtime entries there, not a reload.
    await pollAfter({ denied: 500 });
    const next = await ok('POST', '/v1/rebalance');
    const onNginx = changes(next.items, 'n1');
    expect(onNginx).toEqual(changes(next.items, 'h1'));
    expect(onNginx.length).toBeGreaterThan(0);
    expect(onNginx.every((c: any) => c.status === 'applied' && c.deferred === null)).toBe(true);
    // 429s since the last poll: saturated, so it probes upward, as a HAProxy tenant does.
    expect(onNginx).toContainEqual(
      expect.objectContaining({
        tenant: 'busy',
        dimension: 'requestsPerSecond',
        detail: expect.stringMatching(/refused at its cap/),
      }),
    );
    const rps = onNginx.find((c: any) => c.tenant === 'busy' && c.dimension === 'requestsPerSecond');
    expect(rps.to).toBeGreaterThan(rps.from);
  });
});
