import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/app.js';

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});
afterAll(async () => {
  await app?.stop();
});

const tenantA = {
  id: 'acme',
  displayName: 'Acme Corp',
  reservation: { vcpu: 2, memoryMb: 4096 },
  labels: { env: 'prod' },
};

describe('tenants', () => {
  it('creates a tenant and returns it with its revision and an ETag', async () => {
    const res = await app.admin('POST', '/v1/tenants', tenantA);
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({
      id: 'acme',
      displayName: 'Acme Corp',
      state: 'active',
      reservation: { vcpu: 2, memoryMb: 4096 },
      limit: { vcpu: 2, memoryMb: 4096 },
      weight: 100,
      labels: { env: 'prod' },
    });
    expect(res.headers.get('etag')).toBe(`"${res.body.revision}"`);
    const got = await app.admin('GET', '/v1/tenants/acme');
    expect(got.status).toBe(200);
    expect(got.body).toEqual(res.body);
  });

  it('refuses a duplicate id with 409 and changes nothing', async () => {
    const before = await app.admin('GET', '/v1/tenants/acme');
    const res = await app.admin('POST', '/v1/tenants', tenantA);
    expect(res.status).toBe(409);
    expect(res.body.error.code).toBe('conflict');
    expect((await app.admin('GET', '/v1/tenants/acme')).body).toEqual(before.body);
  });

  it('lists with paging and a label filter', async () => {
    for (const id of ['t1', 't2', 't3', 't4']) {
      await app.admin('POST', '/v1/tenants', { id, labels: { env: id === 't2' ? 'prod' : 'dev' } });
    }
    const page1 = await app.admin('GET', '/v1/tenants?limit=2');
    expect(page1.body.items.map((t: any) => t.id)).toEqual(['acme', 't1']);
    const page2 = await app.admin('GET', `/v1/tenants?limit=2&cursor=${page1.body.nextCursor}`);
    expect(page2.body.items.map((t: any) => t.id)).toEqual(['t2', 't3']);
    const prod = await app.admin('GET', '/v1/tenants?label=env=prod');
    expect(prod.body.items.map((t: any) => t.id)).toEqual(['acme', 't2']);
    const bad = await app.admin('GET', '/v1/tenants?label=nonsense');
    expect(bad.status).toBe(400);
    expect(bad.body.error.details[0].path).toBe('query.label');
  });

  it('patches with If-Match and answers 412 to a stale version', async () => {
    const current = await app.admin('GET', '/v1/tenants/acme');
    const etag = current.headers.get('etag')!;
    const ok = await app.admin('PATCH', '/v1/tenants/acme', { weight: 200 }, { 'if-match': etag });
    expect(ok.status).toBe(200);
    expect(ok.body.weight).toBe(200);
    expect(ok.body.revision).toBeGreaterThan(current.body.revision);
    const stale = await app.admin('PATCH', '/v1/tenants/acme', { weight: 300 }, { 'if-match': etag });
    expect(stale.status).toBe(412);
    expect(stale.body.error.code).toBe('precondition_failed');
    expect((await app.admin('GET', '/v1/tenants/acme')).body.weight).toBe(200);
  });

  it('keeps the limit at or above the reservation, naming the field', async () => {
    const res = await app.admin('PATCH', '/v1/tenants/acme', { limit: { vcpu: 1, memoryMb: 4096 } });
    expect(res.status).toBe(400);
    expect(res.body.error.details).toContainEqual({
      path: 'body.limit.vcpu',
      message: expect.stringContaining('at least the reservation'),
    });
  });

  it('does not bump the revision for a patch that changes nothing', async () => {
    const before = await app.admin('GET', '/v1/tenants/acme');
    const res = await app.admin('PATCH', '/v1/tenants/acme', { weight: before.body.weight });
    expect(res.status).toBe(200);
    expect(res.body.revision).toBe(before.body.revision);
  });

  it('lets a tenant-admin rename its tenant but not change its capacity', async () => {
    const token = await app.token('tenant-admin', { tenant: 'acme' });
    const as = app.as(token);
    expect((await as('PATCH', '/v1/tenants/acme', { displayName: 'ACME' })).status).toBe(200);
    const res = await as('PATCH', '/v1/tenants/acme', { reservation: { vcpu: 64, memoryMb: 65536 } });
    expect(res.status).toBe(403);
    expect(res.body.error.message).toMatch(/reservation/);
  });

  it('refuses a registrar that names a weight when registering, as PATCH does, and creates nothing', async () => {
    const registrar = app.as(await app.token('registrar'));
    const res = await registrar('POST', '/v1/tenants', { id: 'heavy', weight: 1000 });
    expect(res.status).toBe(403);
    expect(res.body.error.message).toBe('a registrar token cannot change weight; ask a fleet operator');
    expect((await app.admin('GET', '/v1/tenants/heavy')).status).toBe(404);
    const plain = await registrar('POST', '/v1/tenants', { id: 'light' });
    expect(plain.status).toBe(201);
    expect(plain.body).toMatchObject({ state: 'pending_approval', weight: 100 });
    const admin = await app.admin('POST', '/v1/tenants', { id: 'heavy', weight: 1000 });
    expect(admin.status).toBe(201);
    expect(admin.body.weight).toBe(1000);
  });

  it('treats the group label as capacity: a tenant-admin or registrar cannot move a tenant to another node group', async () => {
    expect(
      (await app.admin('POST', '/v1/tenants', { id: 'grouped', labels: { group: 'edge', env: 'dev' } })).status,
    ).toBe(201);
    const before = await app.admin('GET', '/v1/tenants/grouped');
    const tenantAdmin = app.as(await app.token('tenant-admin', { tenant: 'grouped' }));
    const registrar = app.as(await app.token('registrar'));
    for (const [caller, role] of [
      [tenantAdmin, 'tenant-admin'],
      [registrar, 'registrar'],
    ] as const) {
      for (const labels of [{ group: 'gpu', env: 'dev' }, { env: 'dev' }]) {
        const res = await caller('PATCH', '/v1/tenants/grouped', { labels });
        expect(res.status, `${role} ${JSON.stringify(labels)}`).toBe(403);
        expect(res.body.error.message).toBe(`a ${role} token cannot change labels.group; ask a fleet operator`);
      }
    }
    expect((await app.admin('GET', '/v1/tenants/grouped')).body).toEqual(before.body);
    // Other labels stay theirs, as long as the group is kept.
    const relabel = await tenantAdmin('PATCH', '/v1/tenants/grouped', { labels: { group: 'edge', env: 'prod' } });
    expect(relabel.status).toBe(200);
    expect(relabel.body.labels).toEqual({ group: 'edge', env: 'prod' });
    const registered = await registrar('POST', '/v1/tenants', { id: 'ingpu', labels: { group: 'gpu' } });
    expect(registered.status).toBe(403);
    expect(registered.body.error.message).toBe('a registrar token cannot change labels.group; ask a fleet operator');
    expect((await app.admin('GET', '/v1/tenants/ingpu')).status).toBe(404);
    const moved = await app.admin('PATCH', '/v1/tenants/grouped', { labels: { group: 'gpu' } });
    expect(moved.status).toBe(200);
    expect(moved.body.labels).toEqual({ group: 'gpu' });
  });

  it('refuses a __proto__ label key with 400 naming it, like any other bad key, and changes nothing', async () => {
    const before = await app.admin('GET', '/v1/tenants/acme');
    const patch = await app.admin('PATCH', '/v1/tenants/acme', '{"labels":{"__proto__":"x","env":"prod"}}');
    expect(patch.status).toBe(400);
    expect(patch.body.error.details).toEqual([
      { path: 'body.labels.__proto__', message: '"__proto__" is not a valid key' },
    ]);
    const create = await app.admin('POST', '/v1/tenants', '{"id":"proto","labels":{"__proto__":{"group":"gpu"}}}');
    expect(create.status).toBe(400);
    expect(create.body.error.details).toEqual([
      { path: 'body.labels.__proto__', message: '"__proto__" is not a valid key' },
    ]);
    const top = await app.admin('POST', '/v1/tenants', '{"id":"proto","__proto__":{"weight":5}}');
    expect(top.status).toBe(400);
    expect(top.body.error.details).toEqual([{ path: 'body.__proto__', message: '"__proto__" is not a valid key' }]);
    expect((await app.admin('GET', '/v1/tenants/proto')).status).toBe(404);
    expect((await app.admin('GET', '/v1/tenants/acme')).body).toEqual(before.body);
  });

  it('shows a tenant-scoped token only its own tenant in the list', async () => {
    const token = await app.token('tenant-viewer', { tenant: 't2' });
    const res = await app.as(token)('GET', '/v1/tenants');
    expect(res.body.items.map((t: any) => t.id)).toEqual(['t2']);
  });

  it('records an audit event with actor, request id, before and after', async () => {
    const res = await app.admin('PATCH', '/v1/tenants/t3', { weight: 7 }, { 'x-request-id': 'req-audit-1' });
    expect(res.status).toBe(200);
    const rows = await app.database.handle.db
      .selectFrom('audit_events')
      .selectAll()
      .where('request_id', '=', 'req-audit-1')
      .execute();
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      actor: 'bootstrap-admin',
      action: 'update',
      resource_type: 'tenant',
      resource_id: 't3',
      tenant_id: 't3',
    });
    expect((rows[0]!.before as any).weight).toBe(100);
    expect((rows[0]!.after as any).weight).toBe(7);
    expect(Number(rows[0]!.revision)).toBe(res.body.revision);
  });

  it('deletes a tenant and answers 404 afterwards', async () => {
    const res = await app.admin('DELETE', '/v1/tenants/t4');
    expect(res.status).toBe(200);
    expect(typeof res.body.revision).toBe('number');
    expect((await app.admin('GET', '/v1/tenants/t4')).status).toBe(404);
  });
});
