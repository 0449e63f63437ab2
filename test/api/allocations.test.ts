import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/app.js';
import { currentRevision } from '../support/fixture.js';

/**
 * Allocations through the API on real PostgreSQL: the seed scenario's three tenants on one HAProxy
 * node (16 GB / 8 vCPU: 160,000 connections, 80,000 req/s with the default factors) and, later,
 * an NGINX node. The rebalancer job is off (test/support/app.ts): passes run through the API.
 */

let app: TestApp;

const lb1 = {
  name: 'lb-1',
  kind: 'haproxy',
  runtimeAddress: { host: '127.0.0.1', port: 9 },
  capacity: { vcpu: 8, memoryMb: 16384 },
};

async function ok(method: string, path: string, body?: unknown) {
  const res = await app.admin(method, path, body);
  expect(res.status, `${method} ${path}: ${JSON.stringify(res.body)}`).toBeLessThan(300);
  return res.body;
}

/** The tenant's caps as served to the node: its two lines in the caps map. */
async function rendered(node: string, tenant: string) {
  const config = await ok('GET', `/v1/nodes/${node}/config`);
  const map: string = config.files['maps/tenant-caps.map'] ?? '';
  const value = (key: string) => Number(new RegExp(`^${key.replace('.', '\\.')} (\\d+)$`, 'm').exec(map)?.[1]);
  return { connections: value(`${tenant}.conn`), rate: value(tenant) };
}

/** A frontend's `maxconn`: the tenant's connection limit, a ceiling the cap moves under. */
async function frontendMaxconn(node: string, frontend: string) {
  const cfg: string = (await ok('GET', `/v1/nodes/${node}/config`)).files['haproxy.cfg'];
  const block = cfg.slice(cfg.indexOf(`frontend ${frontend}\n`)).split('\n\n')[0]!;
  return Number(/^\s+maxconn (\d+)$/m.exec(block)?.[1]);
}

beforeAll(async () => {
  app = await startTestApp();
  // The seed's reservations; A may grow to twice its reservation, B and C are capped at theirs.
  await ok('POST', '/v1/tenants', {
    id: 'a',
    reservation: { vcpu: 2, memoryMb: 4096 },
    limit: { vcpu: 4, memoryMb: 8192 },
  });
  await ok('POST', '/v1/tenants', { id: 'b', reservation: { vcpu: 4, memoryMb: 8192 } });
  await ok('POST', '/v1/tenants', { id: 'c', reservation: { vcpu: 1, memoryMb: 2048 } });
  await ok('POST', '/v1/tenants/a/pools', { name: 'web' });
  await ok('POST', '/v1/tenants/a/pools/web/members', { name: 'm1', address: '10.0.0.1', port: 8080 });
  await ok('POST', '/v1/tenants/a/vips', {
    name: 'web',
    address: '192.168.1.100',
    port: 80,
    protocol: 'http',
    defaultPool: 'web',
  });
  await ok('POST', '/v1/nodes', lb1);
}, 60_000);
afterAll(async () => {
  await app?.stop();
});

describe('allocations', () => {
  it('before any rebalance, a tenant enforces its reservation', async () => {
    expect(await rendered('lb-1', 'a')).toEqual({ connections: 40_000, rate: 20_000 });
    expect(await frontendMaxconn('lb-1', 'fe_a_web')).toBe(80_000);
    const res = await ok('GET', '/v1/tenants/a/allocation');
    expect(res.current).toEqual([
      expect.objectContaining({
        node: 'lb-1',
        maxConnections: 40_000,
        requestsPerSecond: 20_000,
        source: 'reservation',
      }),
    ]);
    expect(res.history).toEqual([]);
  });

  it('a dry run answers the plan with reasons and changes nothing', async () => {
    const before = await currentRevision(app);
    const res = await app.admin('POST', '/v1/rebalance?dryRun=true');
    expect(res.status).toBe(200);
    expect(res.body.dryRun).toBe(true);
    const plan = res.body.plan;
    expect(plan.demand).toBe('none');
    // A is the only tenant under its limit: the idle 20,000 connections and 10,000 req/s go to it.
    const a = plan.changes.filter((c: any) => c.tenantId === 'a');
    expect(a).toEqual([
      expect.objectContaining({
        node: 'lb-1',
        dimension: 'connections',
        from: null,
        to: 60_000,
        reason: 'idle-share',
        deferred: null,
      }),
      expect.objectContaining({
        node: 'lb-1',
        dimension: 'requestsPerSecond',
        from: null,
        to: 30_000,
        reason: 'idle-share',
        deferred: null,
      }),
    ]);
    expect(a[0].detail).toMatch(/idle capacity shared by weight/);
    // B's limit is its reservation: it keeps exactly that.
    expect(plan.changes.find((c: any) => c.tenantId === 'b' && c.dimension === 'connections')).toMatchObject({
      to: 80_000,
      reason: 'reservation',
    });
    expect(plan.nodes).toEqual([
      expect.objectContaining({
        node: 'lb-1',
        healthy: true,
        capacity: { connections: 160_000, requestsPerSecond: 80_000 },
        reserved: { connections: 140_000, requestsPerSecond: 70_000 },
      }),
    ]);
    expect(await currentRevision(app)).toBe(before);
    expect((await ok('GET', '/v1/allocations')).items).toEqual([]);
    expect(await rendered('lb-1', 'a')).toEqual({ connections: 40_000, rate: 20_000 });
  });

  it('a rebalance stores the caps with their reasons, as one audited revision, and the node is served them', async () => {
    const before = await currentRevision(app);
    const res = await ok('POST', '/v1/rebalance');
    expect(res).toMatchObject({ dryRun: false, changed: true, revision: before + 1 });
    expect(res.items.every((i: any) => i.status === 'applied')).toBe(true);
    const items = (await ok('GET', '/v1/allocations')).items;
    expect(items.map((i: any) => [i.tenantId, i.node, i.maxConnections, i.requestsPerSecond, i.weight])).toEqual([
      ['a', 'lb-1', 60_000, 30_000, 256],
      ['b', 'lb-1', 80_000, 40_000, 256],
      ['c', 'lb-1', 20_000, 10_000, 256],
    ]);
    expect(items[0]).toMatchObject({
      reason: { connections: 'idle-share', requestsPerSecond: 'idle-share' },
      revision: before + 1,
    });
    // The stored caps are what the node's config enforces: the caps map; A's frontend holds its
    // ceiling, the node less B's and C's reservations (160,000 - 100,000), below its limit of 80,000.
    expect(await rendered('lb-1', 'a')).toEqual({ connections: 60_000, rate: 30_000 });
    expect(await frontendMaxconn('lb-1', 'fe_a_web')).toBe(60_000);
    expect(items.map((i: any) => i.ceiling)).toEqual([60_000, 80_000, 20_000]);
    const history = (await ok('GET', '/v1/tenants/a/allocation')).history;
    expect(history).toHaveLength(2);
    expect(history.map((h: any) => [h.dimension, h.from, h.to, h.reason])).toEqual(
      expect.arrayContaining([
        ['connections', null, 60_000, 'idle-share'],
        ['requestsPerSecond', null, 30_000, 'idle-share'],
      ]),
    );
    expect(history[0].detail).toMatch(/→ /);
    const audit = await app.database.handle.db
      .selectFrom('audit_events')
      .select(['action', 'resource_type', 'tenant_id'])
      .where('revision', '=', String(before + 1))
      .orderBy('tenant_id')
      .execute();
    expect(audit).toEqual(
      ['a', 'b', 'c'].map((t) => ({ action: 'rebalance', resource_type: 'allocation', tenant_id: t })),
    );
  });

  it('pages the stored caps by tenant then node, and refuses a cursor it did not give', async () => {
    const first = await ok('GET', '/v1/allocations?limit=2');
    expect(first.items.map((i: any) => `${i.tenantId}/${i.node}`)).toEqual(['a/lb-1', 'b/lb-1']);
    expect(first.nextCursor).toBe('b/lb-1');
    const second = await ok('GET', `/v1/allocations?limit=2&cursor=${encodeURIComponent(first.nextCursor)}`);
    expect(second).toMatchObject({
      items: [expect.objectContaining({ tenantId: 'c', node: 'lb-1' })],
      nextCursor: null,
    });
    for (const query of ['cursor=b', 'cursor=B%2Flb-1', 'limit=0', 'limit=501']) {
      const res = await app.admin('GET', `/v1/allocations?${query}`);
      expect(res.status).toBe(400);
      expect(res.body.error.details[0].path).toBe(`query.${query.split('=')[0]}`);
    }
  });

  it('a second rebalance over unchanged input changes nothing (no revision)', async () => {
    const before = await currentRevision(app);
    const res = await ok('POST', '/v1/rebalance');
    expect(res).toMatchObject({ changed: false, revision: before, items: [] });
    expect(await currentRevision(app)).toBe(before);
  });

  it('a lower limit brings the cap down, and the history says why', async () => {
    await ok('PATCH', '/v1/tenants/a', { limit: { vcpu: 2.5, memoryMb: 5120 } });
    await ok('POST', '/v1/rebalance');
    expect(await rendered('lb-1', 'a')).toEqual({ connections: 50_000, rate: 25_000 });
    const [latest] = (await ok('GET', '/v1/tenants/a/allocation?limit=1')).history;
    expect(latest).toMatchObject({
      node: 'lb-1',
      from: 30_000,
      to: 25_000,
      reason: 'limit',
      dimension: 'requestsPerSecond',
    });
    expect(latest.detail).toMatch(/capped at the limit of 25000 req\/s/);
  });

  it('answers capacity per node and group', async () => {
    const res = await ok('GET', '/v1/capacity');
    expect(res.nodes).toEqual([
      expect.objectContaining({
        node: 'lb-1',
        group: 'default',
        healthy: true,
        vcpu: 8,
        memoryMb: 16384,
        tenants: 3,
        capacity: { connections: 160_000, requestsPerSecond: 80_000 },
        reserved: { connections: 140_000, requestsPerSecond: 70_000 },
        allocated: { connections: 150_000, requestsPerSecond: 75_000 },
      }),
    ]);
    expect(res.groups).toEqual([
      expect.objectContaining({
        group: 'default',
        nodes: 1,
        capacity: { connections: 160_000, requestsPerSecond: 80_000 },
      }),
    ]);
  });

  it('lets operators dry-run but not apply; a tenant reads only its own allocation', async () => {
    const operator = app.as(await app.token('operator'));
    expect((await operator('POST', '/v1/rebalance?dryRun=true')).status).toBe(200);
    expect((await operator('POST', '/v1/rebalance')).status).toBe(403);
    expect((await operator('GET', '/v1/allocations')).status).toBe(200);
    const viewer = app.as(await app.token('tenant-viewer', { tenant: 'c' }));
    expect((await viewer('GET', '/v1/tenants/c/allocation')).body.current).toEqual([
      expect.objectContaining({ node: 'lb-1', maxConnections: 20_000 }),
    ]);
    expect((await viewer('GET', '/v1/tenants/a/allocation')).status).toBe(404);
    expect((await viewer('GET', '/v1/allocations')).status).toBe(403);
    expect((await viewer('POST', '/v1/rebalance?dryRun=true')).status).toBe(403);
  });

  it('an unhealthy node keeps its caps and takes no recomputed ones', async () => {
    await app.database.handle.db
      .updateTable('nodes')
      .set({ runtime_error: 'connect ECONNREFUSED' })
      .where('name', '=', 'lb-1')
      .execute();
    await ok('PATCH', '/v1/tenants/a', { limit: { vcpu: 4, memoryMb: 8192 } });
    const plan = (await ok('POST', '/v1/rebalance?dryRun=true')).plan;
    expect(plan.changes).toEqual([]);
    expect(plan.nodes[0]).toMatchObject({
      healthy: false,
      unhealthyReason: expect.stringMatching(/Runtime API push failed/),
    });
    expect(plan.warnings).toEqual([expect.stringMatching(/node lb-1 is unhealthy/)]);
    expect((await ok('POST', '/v1/rebalance')).changed).toBe(false);
    expect(await rendered('lb-1', 'a')).toEqual({ connections: 50_000, rate: 25_000 });
    await app.database.handle.db.updateTable('nodes').set({ runtime_error: null }).where('name', '=', 'lb-1').execute();
    await ok('POST', '/v1/rebalance');
    expect(await rendered('lb-1', 'a')).toEqual({ connections: 60_000, rate: 30_000 });
  });

  it('an NGINX node takes new tenants at once but coalesces later cap changes into one reload per cadence', async () => {
    await ok('POST', '/v1/nodes', { name: 'ngx-1', kind: 'nginx', capacity: { vcpu: 8, memoryMb: 16384 } });
    const first = await ok('POST', '/v1/rebalance');
    expect(
      first.items.filter((i: any) => i.node === 'ngx-1').every((i: any) => i.status === 'applied' && i.from === null),
    ).toBe(true);
    // B may now grow too: the idle capacity is split between A and B by weight (equal), A's share shrinks.
    await ok('PATCH', '/v1/tenants/b', { limit: { vcpu: 6, memoryMb: 12288 } });
    const res = await ok('POST', '/v1/rebalance');
    const byNode = (n: string) => res.items.filter((i: any) => i.node === n);
    expect(byNode('lb-1').length).toBeGreaterThan(0);
    expect(byNode('lb-1').every((i: any) => i.status === 'applied')).toBe(true);
    expect(byNode('ngx-1').length).toBeGreaterThan(0);
    expect(byNode('ngx-1').every((i: any) => i.status === 'not-executed')).toBe(true);
    expect(byNode('ngx-1')[0].deferred).toMatch(/reloads for every cap change \(NGINX\); changes are coalesced/);
    const items = (await ok('GET', '/v1/allocations')).items;
    const at = (t: string, n: string) => items.find((i: any) => i.tenantId === t && i.node === n);
    expect(at('a', 'lb-1')).toMatchObject({ maxConnections: 50_000, requestsPerSecond: 25_000 });
    expect(at('a', 'ngx-1')).toMatchObject({ maxConnections: 60_000, requestsPerSecond: 30_000 });
  });

  it("uses the stats poller's samples as demand: a busy tenant gets the node's spare capacity, an idle one its reservation", async () => {
    await sql`
      insert into stat_samples (node_name, kind, tenant_id, proxy, name, at, sessions, session_rate, requests, responses_2xx,
                                responses_4xx, responses_5xx, denied, request_rate, denied_rate)
      values ('lb-1', 'frontend', 'a', 'fe_a_web', 'FRONTEND', now(), 70000, 0, 0, 0, 0, 0, 0, 1000, 0)
    `.execute(app.database.handle.db);
    const plan = (await ok('POST', '/v1/rebalance?dryRun=true')).plan;
    expect(plan.demand).toBe('stats');
    const a = plan.allocations.find((x: any) => x.tenantId === 'a' && x.node === 'lb-1');
    // A wants 70,000 + 25% headroom (up to its 80,000 limit); the spare 20,000 beyond the reservations go to it.
    expect(a).toMatchObject({
      demand: { connections: 70_000, requestsPerSecond: 1000 },
      maxConnections: 60_000,
      reasons: { connections: 'fair-share' },
    });
    const change = plan.changes.find(
      (c: any) => c.tenantId === 'a' && c.node === 'lb-1' && c.dimension === 'connections',
    );
    expect(change).toMatchObject({ from: 50_000, to: 60_000, reason: 'fair-share' });
    expect(change.detail).toMatch(
      /demand 70000 connections plus 25% headroom; the node's spare capacity is shared by weight/,
    );
    expect(
      plan.changes.find((c: any) => c.tenantId === 'b' && c.node === 'lb-1' && c.dimension === 'connections'),
    ).toMatchObject({ to: 80_000, reason: 'reservation' });
    const lb = (await ok('GET', '/v1/capacity')).nodes.find((n: any) => n.node === 'lb-1');
    expect(lb.used).toEqual({ connections: 70_000, requestsPerSecond: 1000 });
  });

  it('drops the caps of a tenant that is no longer served', async () => {
    await ok('DELETE', '/v1/tenants/c');
    expect((await ok('GET', '/v1/allocations')).items.some((i: any) => i.tenantId === 'c')).toBe(false);
  });
});
