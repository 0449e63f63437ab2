import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/app.js';

let app: TestApp;
let started: string;
beforeAll(async () => {
  app = await startTestApp();
  started = new Date(Date.now() - 1000).toISOString();
  await app.admin('POST', '/v1/tenants', { id: 'a' });
  await app.admin('POST', '/v1/tenants', { id: 'b' });
  await app.admin('POST', '/v1/tenants/a/pools', { name: 'web' }, { 'x-request-id': 'req-pool-a' });
  await app.admin('PATCH', '/v1/tenants/a', { weight: 5 });
  await app.admin('POST', '/v1/tenants/b/pools', { name: 'web' });
});
afterAll(async () => {
  await app?.stop();
});

describe('GET /v1/audit', () => {
  it('lists every write newest first with actor, request id and before/after', async () => {
    const res = await app.admin('GET', '/v1/audit?tenant=a');
    expect(res.status).toBe(200);
    expect(res.body.items.map((e: any) => `${e.action} ${e.resourceType} ${e.resourceId}`)).toEqual([
      'update tenant a',
      'create pool a/pools/web',
      'create tenant a',
    ]);
    const update = res.body.items[0];
    expect(update).toMatchObject({ actor: 'bootstrap-admin', tenant: 'a' });
    expect(update.before.weight).toBe(100);
    expect(update.after.weight).toBe(5);
    expect(res.body.items[1].requestId).toBe('req-pool-a');
  });

  it('pages with a cursor and filters by actor, type and time', async () => {
    const first = await app.admin('GET', '/v1/audit?limit=2');
    expect(first.body.items).toHaveLength(2);
    const second = await app.admin('GET', `/v1/audit?limit=2&cursor=${first.body.nextCursor}`);
    expect(second.body.items[0].id).toBeLessThan(first.body.items[1].id);
    const pools = await app.admin('GET', '/v1/audit?resourceType=pool');
    expect(pools.body.items.map((e: any) => e.resourceId).sort()).toEqual(['a/pools/web', 'b/pools/web']);
    const none = await app.admin('GET', `/v1/audit?until=${encodeURIComponent(started)}&resourceType=pool`);
    expect(none.body.items).toEqual([]);
    const bad = await app.admin('GET', '/v1/audit?since=yesterday');
    expect(bad.status).toBe(400);
    expect(bad.body.error.details[0].path).toBe('query.since');
  });

  it('shows a tenant token only its own tenant’s events, and 404 for another’s', async () => {
    const viewer = app.as(await app.token('tenant-viewer', { tenant: 'b' }));
    const own = await viewer('GET', '/v1/audit');
    expect(own.body.items.length).toBeGreaterThan(0);
    expect(own.body.items.every((e: any) => e.tenant === 'b')).toBe(true);
    expect((await viewer('GET', '/v1/audit?tenant=a')).status).toBe(404);
  });
});
