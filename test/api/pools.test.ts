import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/app.js';

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
  for (const id of ['a', 'b']) expect((await app.admin('POST', '/v1/tenants', { id })).status).toBe(201);
});
afterAll(async () => {
  await app?.stop();
});

const httpCheck = { type: 'http', path: '/healthz', expectedStatus: '200-399', intervalMs: 5000, timeoutMs: 2000 };

async function committedRevision(): Promise<number> {
  const row = await app.database.handle.db.selectFrom('revision_counter').select('revision').executeTakeFirstOrThrow();
  return Number(row.revision);
}

/** The VIP API is built elsewhere: reference a pool with raw rows, as that API will. */
async function insertVip(tenant: string, name: string, port: number, defaultPool: string | null): Promise<void> {
  await app.database.handle.db
    .insertInto('vips')
    .values({
      tenant_id: tenant,
      name,
      address: '192.0.2.10',
      port,
      protocol: 'http',
      hostnames: JSON.stringify([]),
      allowlist: JSON.stringify([]),
      persistence: 'none',
      cookie_name: 'SERVERID',
      timeouts: JSON.stringify({}),
      default_pool: defaultPool,
      revision: 1,
    })
    .execute();
}

describe('pools', () => {
  it('creates a pool with check defaults filled in and answers it with its revision and ETag', async () => {
    const res = await app.admin('POST', '/v1/tenants/a/pools', {
      name: 'web',
      algorithm: 'leastconn',
      healthCheck: httpCheck,
    });
    expect(res.status).toBe(201);
    expect(res.body).toEqual({
      name: 'web',
      algorithm: 'leastconn',
      healthCheck: {
        type: 'http',
        path: '/healthz',
        expectedStatus: '200-399',
        host: null,
        port: null,
        intervalMs: 5000,
        timeoutMs: 2000,
        rise: 2,
        fall: 3,
      },
      tls: null,
      memberCount: 0,
      revision: await committedRevision(),
      createdAt: expect.any(String),
      updatedAt: expect.any(String),
    });
    expect(res.headers.get('etag')).toBe(`"${res.body.revision}"`);
    const got = await app.admin('GET', '/v1/tenants/a/pools/web');
    expect(got.status).toBe(200);
    expect(got.body).toEqual(res.body);
    expect(got.headers.get('etag')).toBe(`"${res.body.revision}"`);
  });

  it('defaults to round robin without a health check', async () => {
    const res = await app.admin('POST', '/v1/tenants/a/pools', { name: 'plain' });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ algorithm: 'roundrobin', healthCheck: null, memberCount: 0 });
  });

  it('counts members in the pool answer', async () => {
    await app.admin('POST', '/v1/tenants/a/pools/plain/members', { name: 'm1', address: '10.0.0.1', port: 80 });
    await app.admin('POST', '/v1/tenants/a/pools/plain/members', { name: 'm2', address: '10.0.0.2', port: 80 });
    expect((await app.admin('GET', '/v1/tenants/a/pools/plain')).body.memberCount).toBe(2);
  });

  it('refuses a duplicate pool name with 409 and changes nothing', async () => {
    const before = await committedRevision();
    const res = await app.admin('POST', '/v1/tenants/a/pools', { name: 'web' });
    expect(res.status).toBe(409);
    expect(res.body.error.message).toMatch(/pool 'web' already exists/);
    expect(await committedRevision()).toBe(before);
  });

  it('lets two tenants use the same pool name', async () => {
    expect((await app.admin('POST', '/v1/tenants/b/pools', { name: 'web' })).status).toBe(201);
  });

  it("lists a tenant's pools by name, a page at a time", async () => {
    for (const name of ['p1', 'p2']) await app.admin('POST', '/v1/tenants/a/pools', { name });
    const page1 = await app.admin('GET', '/v1/tenants/a/pools?limit=2');
    expect(page1.status).toBe(200);
    expect(page1.body.items.map((p: any) => p.name)).toEqual(['p1', 'p2']);
    expect(page1.body.nextCursor).toBe('p2');
    const page2 = await app.admin('GET', `/v1/tenants/a/pools?limit=2&cursor=${page1.body.nextCursor}`);
    expect(page2.body.items.map((p: any) => p.name)).toEqual(['plain', 'web']);
    expect(page2.body.nextCursor).toBeNull();
    const other = await app.admin('GET', '/v1/tenants/b/pools');
    expect(other.body.items.map((p: any) => p.name)).toEqual(['web']);
  });

  it.each([
    [{ name: 'x1', healthCheck: { type: 'http', intervalMs: 1000, timeoutMs: 2000 } }, 'body.healthCheck.timeoutMs'],
    [{ name: 'x2', algorithm: 'random' }, 'body.algorithm'],
    [{ name: 'Bad Name' }, 'body.name'],
    [{ name: 'x3', healthCheck: { type: 'http', path: '/a;b' } }, 'body.healthCheck.path'],
    [{ name: 'x4', healthCheck: { type: 'http', expectedStatus: '399-200' } }, 'body.healthCheck.expectedStatus'],
    [{ name: 'x5', healthCheck: { type: 'tcp', rise: 0 } }, 'body.healthCheck.rise'],
    [{ name: 'x6', members: [] }, 'body.members'],
  ])('refuses an invalid pool %j naming %s', async (body, field) => {
    const before = await committedRevision();
    const res = await app.admin('POST', '/v1/tenants/a/pools', body);
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('validation_failed');
    expect(res.body.error.details.map((d: any) => d.path)).toContain(field);
    expect(await committedRevision()).toBe(before);
  });

  it('refuses a pool name that is not a slug in the path', async () => {
    const res = await app.admin('GET', '/v1/tenants/a/pools/Web');
    expect(res.status).toBe(400);
    expect(res.body.error.details[0].path).toBe('params.pool');
  });

  it('answers 404 for a missing pool', async () => {
    const res = await app.admin('GET', '/v1/tenants/a/pools/nope');
    expect(res.status).toBe(404);
    expect(res.body.error.details).toEqual({ resource: 'pool', id: 'nope' });
    expect((await app.admin('PATCH', '/v1/tenants/a/pools/nope', { algorithm: 'source' })).status).toBe(404);
    expect((await app.admin('DELETE', '/v1/tenants/a/pools/nope')).status).toBe(404);
  });

  it('patches the algorithm and health check under If-Match, and answers 412 to a stale ETag', async () => {
    const current = await app.admin('GET', '/v1/tenants/a/pools/web');
    const etag = current.headers.get('etag')!;
    const ok = await app.admin(
      'PATCH',
      '/v1/tenants/a/pools/web',
      { algorithm: 'source', healthCheck: { type: 'tcp' } },
      { 'if-match': etag },
    );
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ algorithm: 'source', healthCheck: { type: 'tcp', intervalMs: 2000 } });
    expect(ok.body.revision).toBe(await committedRevision());
    expect(ok.body.revision).toBeGreaterThan(current.body.revision);
    expect(ok.body.createdAt).toBe(current.body.createdAt);
    const stale = await app.admin(
      'PATCH',
      '/v1/tenants/a/pools/web',
      { algorithm: 'roundrobin' },
      { 'if-match': etag },
    );
    expect(stale.status).toBe(412);
    expect(stale.body.error.code).toBe('precondition_failed');
    expect((await app.admin('GET', '/v1/tenants/a/pools/web')).body.algorithm).toBe('source');
  });

  it('removes the health check when patched to null', async () => {
    const res = await app.admin('PATCH', '/v1/tenants/a/pools/p1', { healthCheck: httpCheck });
    expect(res.body.healthCheck.type).toBe('http');
    const off = await app.admin('PATCH', '/v1/tenants/a/pools/p1', { healthCheck: null });
    expect(off.status).toBe(200);
    expect(off.body.healthCheck).toBeNull();
  });

  it('commits no revision for a patch that changes nothing', async () => {
    const before = await app.admin('GET', '/v1/tenants/a/pools/web');
    const revision = await committedRevision();
    const res = await app.admin('PATCH', '/v1/tenants/a/pools/web', {
      algorithm: before.body.algorithm,
      healthCheck: { type: 'tcp' },
    });
    expect(res.status).toBe(200);
    expect(res.body).toEqual(before.body);
    expect(await committedRevision()).toBe(revision);
  });

  it('names the field of an invalid patch', async () => {
    const res = await app.admin('PATCH', '/v1/tenants/a/pools/web', { healthCheck: { type: 'http', timeoutMs: 5 } });
    expect(res.status).toBe(400);
    expect(res.body.error.details.map((d: any) => d.path)).toContain('body.healthCheck.timeoutMs');
  });

  it('audits each pool write with before, after and the revision', async () => {
    const res = await app.admin(
      'PATCH',
      '/v1/tenants/a/pools/p2',
      { algorithm: 'leastconn' },
      { 'x-request-id': 'req-pool-audit' },
    );
    const rows = await app.database.handle.db
      .selectFrom('audit_events')
      .selectAll()
      .where('request_id', '=', 'req-pool-audit')
      .execute();
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      action: 'update',
      resource_type: 'pool',
      resource_id: 'a/pools/p2',
      tenant_id: 'a',
    });
    expect((rows[0]!.before as any).algorithm).toBe('roundrobin');
    expect((rows[0]!.after as any).algorithm).toBe('leastconn');
    expect(Number(rows[0]!.revision)).toBe(res.body.revision);
  });

  it('deletes a pool together with its members', async () => {
    const res = await app.admin('DELETE', '/v1/tenants/a/pools/plain', undefined, {
      'x-request-id': 'req-pool-delete',
    });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ revision: await committedRevision() });
    expect((await app.admin('GET', '/v1/tenants/a/pools/plain')).status).toBe(404);
    const left = await app.database.handle.db
      .selectFrom('members')
      .select('name')
      .where('pool_name', '=', 'plain')
      .execute();
    expect(left).toEqual([]);
    const audit = await app.database.handle.db
      .selectFrom('audit_events')
      .select(['resource_type', 'resource_id'])
      .where('request_id', '=', 'req-pool-delete')
      .orderBy('id')
      .execute();
    expect(audit).toEqual([
      { resource_type: 'member', resource_id: 'a/pools/plain/members/m1' },
      { resource_type: 'member', resource_id: 'a/pools/plain/members/m2' },
      { resource_type: 'pool', resource_id: 'a/pools/plain' },
    ]);
  });

  it('honours If-Match on delete', async () => {
    const current = await app.admin('GET', '/v1/tenants/a/pools/p2');
    const res = await app.admin('DELETE', '/v1/tenants/a/pools/p2', undefined, {
      'if-match': `"${current.body.revision - 1}"`,
    });
    expect(res.status).toBe(412);
    expect((await app.admin('GET', '/v1/tenants/a/pools/p2')).status).toBe(200);
  });

  it('refuses to delete a pool a VIP sends traffic to, naming the VIP', async () => {
    await app.admin('POST', '/v1/tenants/a/pools', { name: 'used' });
    await insertVip('a', 'front', 80, 'used');
    const before = await committedRevision();
    const res = await app.admin('DELETE', '/v1/tenants/a/pools/used');
    expect(res.status).toBe(409);
    expect(res.body.error.message).toContain("VIP 'front'");
    expect(res.body.error.details).toEqual({ vips: ['front'], routes: [] });
    expect(await committedRevision()).toBe(before);
    expect((await app.admin('GET', '/v1/tenants/a/pools/used')).status).toBe(200);
  });

  it('refuses to delete a pool a route sends traffic to, naming the route', async () => {
    await app.admin('POST', '/v1/tenants/a/pools', { name: 'routed' });
    await app.database.handle.db
      .insertInto('routes')
      .values({
        tenant_id: 'a',
        vip_name: 'front',
        name: 'api',
        priority: 10,
        match: JSON.stringify({ pathPrefix: '/api' }),
        pool_name: 'routed',
        revision: 1,
      })
      .execute();
    const res = await app.admin('DELETE', '/v1/tenants/a/pools/routed');
    expect(res.status).toBe(409);
    expect(res.body.error.message).toContain("route 'front/api'");
    expect(res.body.error.details).toEqual({ vips: [], routes: ['front/api'] });
  });

  it('deletes the pool once nothing references it any more', async () => {
    await app.database.handle.db.deleteFrom('vips').where('tenant_id', '=', 'a').where('name', '=', 'front').execute();
    expect((await app.admin('DELETE', '/v1/tenants/a/pools/used')).status).toBe(200);
    expect((await app.admin('DELETE', '/v1/tenants/a/pools/routed')).status).toBe(200);
  });

  it('replays a POST with the same Idempotency-Key without creating anything', async () => {
    const headers = { 'idempotency-key': 'create-pool-once' };
    const first = await app.admin('POST', '/v1/tenants/a/pools', { name: 'idem' }, headers);
    expect(first.status).toBe(201);
    const revision = await committedRevision();
    const replay = await app.admin('POST', '/v1/tenants/a/pools', { name: 'idem' }, headers);
    expect(replay.status).toBe(201);
    expect(replay.body).toEqual(first.body);
    expect(await committedRevision()).toBe(revision);
    const audits = await app.database.handle.db
      .selectFrom('audit_events')
      .select('id')
      .where('resource_id', '=', 'a/pools/idem')
      .execute();
    expect(audits).toHaveLength(1);
    const reused = await app.admin('POST', '/v1/tenants/a/pools', { name: 'other' }, headers);
    expect(reused.status).toBe(409);
  });

  it('lets a tenant-viewer read its pools but not write them (403)', async () => {
    const as = app.as(await app.token('tenant-viewer', { tenant: 'a' }));
    expect((await as('GET', '/v1/tenants/a/pools')).status).toBe(200);
    expect((await as('GET', '/v1/tenants/a/pools/web')).status).toBe(200);
    expect((await as('POST', '/v1/tenants/a/pools', { name: 'nope' })).status).toBe(403);
    expect((await as('PATCH', '/v1/tenants/a/pools/web', { algorithm: 'roundrobin' })).status).toBe(403);
    expect((await as('DELETE', '/v1/tenants/a/pools/web')).status).toBe(403);
  });

  it('lets a tenant-admin write its own pools', async () => {
    const as = app.as(await app.token('tenant-admin', { tenant: 'a' }));
    expect((await as('POST', '/v1/tenants/a/pools', { name: 'mine' })).status).toBe(201);
    expect((await as('DELETE', '/v1/tenants/a/pools/mine')).status).toBe(200);
  });

  it('answers 404 to a token of another tenant, as if the tenant did not exist', async () => {
    const as = app.as(await app.token('tenant-admin', { tenant: 'b' }));
    for (const [method, path, body] of [
      ['GET', '/v1/tenants/a/pools', undefined],
      ['GET', '/v1/tenants/a/pools/web', undefined],
      ['POST', '/v1/tenants/a/pools', { name: 'sneaky' }],
      ['PATCH', '/v1/tenants/a/pools/web', { algorithm: 'roundrobin' }],
      ['DELETE', '/v1/tenants/a/pools/web', undefined],
    ] as const) {
      const res = await as(method, path, body);
      expect(res.status, `${method} ${path}`).toBe(404);
      expect(res.body.error.details).toEqual({ resource: 'tenant', id: 'a' });
    }
    expect((await app.admin('GET', '/v1/tenants/a/pools/web')).body.algorithm).toBe('source');
  });
});
