import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/app.js';

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
  for (const id of ['a', 'b']) expect((await app.admin('POST', '/v1/tenants', { id })).status).toBe(201);
  for (const name of ['web', 'set', 'other'])
    expect((await app.admin('POST', '/v1/tenants/a/pools', { name })).status).toBe(201);
});
afterAll(async () => {
  await app?.stop();
});

const WEB = '/v1/tenants/a/pools/web/members';
const SET = '/v1/tenants/a/pools/set/members';

async function committedRevision(): Promise<number> {
  const row = await app.database.handle.db.selectFrom('revision_counter').select('revision').executeTakeFirstOrThrow();
  return Number(row.revision);
}

async function auditFor(requestId: string) {
  return app.database.handle.db
    .selectFrom('audit_events')
    .selectAll()
    .where('request_id', '=', requestId)
    .orderBy('id')
    .execute();
}

const byName = (items: any[]) => Object.fromEntries(items.map((m) => [m.name, m]));

describe('members', () => {
  it('adds a member with defaults and answers it with its revision and ETag', async () => {
    const res = await app.admin('POST', WEB, { name: 'm1', address: '10.0.0.1', port: 8080 });
    expect(res.status).toBe(201);
    expect(res.body).toEqual({
      name: 'm1',
      pool: 'web',
      address: '10.0.0.1',
      port: 8080,
      weight: 100,
      state: 'enabled',
      backup: false,
      revision: await committedRevision(),
      createdAt: expect.any(String),
      updatedAt: expect.any(String),
    });
    expect(res.headers.get('etag')).toBe(`"${res.body.revision}"`);
    const got = await app.admin('GET', `${WEB}/m1`);
    expect(got.status).toBe(200);
    expect(got.body).toEqual(res.body);
    expect(got.headers.get('etag')).toBe(`"${res.body.revision}"`);
  });

  it('stores IPv6 members in canonical form', async () => {
    const res = await app.admin('POST', WEB, {
      name: 'm6',
      address: '2001:DB8:0::1',
      port: 8080,
      weight: 0,
      state: 'drain',
      backup: true,
    });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ address: '2001:db8::1', weight: 0, state: 'drain', backup: true });
    expect((await app.admin('GET', `${WEB}/m6`)).body.address).toBe('2001:db8::1');
  });

  it("lists a pool's members by name, a page at a time", async () => {
    await app.admin('POST', WEB, { name: 'm2', address: '10.0.0.2', port: 8080 });
    const page1 = await app.admin('GET', `${WEB}?limit=2`);
    expect(page1.status).toBe(200);
    expect(page1.body.items.map((m: any) => m.name)).toEqual(['m1', 'm2']);
    const page2 = await app.admin('GET', `${WEB}?limit=2&cursor=${page1.body.nextCursor}`);
    expect(page2.body.items.map((m: any) => m.name)).toEqual(['m6']);
    expect(page2.body.nextCursor).toBeNull();
  });

  it('refuses a duplicate member name with 409', async () => {
    const before = await committedRevision();
    const res = await app.admin('POST', WEB, { name: 'm1', address: '10.0.0.9', port: 80 });
    expect(res.status).toBe(409);
    expect(res.body.error.message).toBe("member 'm1' already exists in pool 'web'");
    expect(await committedRevision()).toBe(before);
  });

  it('refuses a second member on the same address:port with 409 naming the holder', async () => {
    const res = await app.admin('POST', WEB, { name: 'm9', address: '10.0.0.1', port: 8080 });
    expect(res.status).toBe(409);
    expect(res.body.error.message).toBe("10.0.0.1:8080 is already used by member 'm1' in pool 'web'");
    const v6 = await app.admin('POST', WEB, { name: 'm9', address: '2001:db8:0:0::1', port: 8080 });
    expect(v6.status).toBe(409);
    expect(v6.body.error.message).toBe("[2001:db8::1]:8080 is already used by member 'm6' in pool 'web'");
  });

  it('allows the same address:port in another pool', async () => {
    expect(
      (await app.admin('POST', '/v1/tenants/a/pools/other/members', { name: 'm1', address: '10.0.0.1', port: 8080 }))
        .status,
    ).toBe(201);
  });

  it.each([
    [{ name: 'm9', address: '10.0.0.9', port: 80, weight: 300 }, 'body.weight'],
    [{ name: 'm9', address: '10.0.0.9', port: 0 }, 'body.port'],
    [{ name: 'm9', address: '10.0.0.9', port: 80.5 }, 'body.port'],
    [{ name: 'm9', address: 'backend.local', port: 80 }, 'body.address'],
    [{ name: 'm9', address: '010.0.0.9', port: 80 }, 'body.address'],
    [{ name: 'm9', address: '10.0.0.9', port: 80, state: 'up' }, 'body.state'],
    [{ name: 'M9', address: '10.0.0.9', port: 80 }, 'body.name'],
    [{ address: '10.0.0.9', port: 80 }, 'body.name'],
    [{ name: 'm9', address: '10.0.0.9', port: '80' }, 'body.port'],
  ])('refuses an invalid member %j naming %s', async (body, field) => {
    const res = await app.admin('POST', WEB, body);
    expect(res.status).toBe(400);
    expect(res.body.error.details.map((d: any) => d.path)).toContain(field);
  });

  it('answers 404 naming the pool when the pool is missing, and the member when it is', async () => {
    const noPool = await app.admin('GET', '/v1/tenants/a/pools/nope/members/m1');
    expect(noPool.status).toBe(404);
    expect(noPool.body.error.details).toEqual({ resource: 'pool', id: 'nope' });
    for (const [method, body] of [
      ['GET', undefined],
      ['POST', { name: 'm1', address: '10.0.0.1', port: 80 }],
      ['PUT', { members: [] }],
    ] as const) {
      const res = await app.admin(method, '/v1/tenants/a/pools/nope/members', body);
      expect(res.status, method).toBe(404);
      expect(res.body.error.details).toEqual({ resource: 'pool', id: 'nope' });
    }
    const noMember = await app.admin('GET', `${WEB}/ghost`);
    expect(noMember.status).toBe(404);
    expect(noMember.body.error.details).toEqual({ resource: 'member', id: 'ghost' });
    expect((await app.admin('PATCH', `${WEB}/ghost`, { weight: 1 })).status).toBe(404);
    expect((await app.admin('DELETE', `${WEB}/ghost`)).status).toBe(404);
  });

  it('patches weight and state under If-Match, and answers 412 to a stale ETag', async () => {
    const current = await app.admin('GET', `${WEB}/m2`);
    const etag = current.headers.get('etag')!;
    const ok = await app.admin('PATCH', `${WEB}/m2`, { weight: 20, state: 'drain' }, { 'if-match': etag });
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ weight: 20, state: 'drain', address: '10.0.0.2', port: 8080 });
    expect(ok.body.revision).toBe(await committedRevision());
    expect(ok.headers.get('etag')).toBe(`"${ok.body.revision}"`);
    const stale = await app.admin('PATCH', `${WEB}/m2`, { weight: 30 }, { 'if-match': etag });
    expect(stale.status).toBe(412);
    expect(stale.body.error.code).toBe('precondition_failed');
    expect((await app.admin('GET', `${WEB}/m2`)).body.weight).toBe(20);
  });

  it('commits no revision for a patch that changes nothing', async () => {
    const before = await app.admin('GET', `${WEB}/m2`);
    const revision = await committedRevision();
    const res = await app.admin('PATCH', `${WEB}/m2`, { weight: 20, address: '10.0.0.2' });
    expect(res.status).toBe(200);
    expect(res.body).toEqual(before.body);
    expect(await committedRevision()).toBe(revision);
  });

  it("refuses to move a member onto another member's address:port", async () => {
    const res = await app.admin('PATCH', `${WEB}/m2`, { address: '10.0.0.1' });
    expect(res.status).toBe(409);
    expect(res.body.error.message).toContain("member 'm1'");
    const moved = await app.admin('PATCH', `${WEB}/m2`, { port: 9090 });
    expect(moved.status).toBe(200);
    expect(moved.body.port).toBe(9090);
  });

  it('names the field of an invalid patch', async () => {
    const res = await app.admin('PATCH', `${WEB}/m2`, { weight: -1 });
    expect(res.status).toBe(400);
    expect(res.body.error.details.map((d: any) => d.path)).toContain('body.weight');
    const unknown = await app.admin('PATCH', `${WEB}/m2`, { name: 'renamed' });
    expect(unknown.status).toBe(400);
    expect(unknown.body.error.details.map((d: any) => d.path)).toContain('body.name');
  });

  it('removes a member, honouring If-Match, and audits it', async () => {
    const current = await app.admin('GET', `${WEB}/m6`);
    const stale = await app.admin('DELETE', `${WEB}/m6`, undefined, { 'if-match': `"${current.body.revision - 1}"` });
    expect(stale.status).toBe(412);
    const res = await app.admin('DELETE', `${WEB}/m6`, undefined, {
      'if-match': `"${current.body.revision}"`,
      'x-request-id': 'req-member-delete',
    });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ revision: await committedRevision() });
    expect((await app.admin('GET', `${WEB}/m6`)).status).toBe(404);
    const rows = await auditFor('req-member-delete');
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      action: 'delete',
      resource_type: 'member',
      resource_id: 'a/pools/web/members/m6',
      tenant_id: 'a',
      after: null,
    });
    expect((rows[0]!.before as any).address).toBe('2001:db8::1');
  });

  it('audits a member patch with before and after', async () => {
    const res = await app.admin('PATCH', `${WEB}/m1`, { state: 'disabled' }, { 'x-request-id': 'req-member-patch' });
    const rows = await auditFor('req-member-patch');
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ action: 'update', resource_type: 'member', resource_id: 'a/pools/web/members/m1' });
    expect((rows[0]!.before as any).state).toBe('enabled');
    expect((rows[0]!.after as any).state).toBe('disabled');
    expect(Number(rows[0]!.revision)).toBe(res.body.revision);
  });

  it('replays a POST with the same Idempotency-Key without adding a second member', async () => {
    const headers = { 'idempotency-key': 'add-m3-once' };
    const body = { name: 'm3', address: '10.0.0.3', port: 8080 };
    const first = await app.admin('POST', WEB, body, headers);
    expect(first.status).toBe(201);
    const revision = await committedRevision();
    const replay = await app.admin('POST', WEB, body, headers);
    expect(replay.status).toBe(201);
    expect(replay.body).toEqual(first.body);
    expect(await committedRevision()).toBe(revision);
    const rows = await app.database.handle.db
      .selectFrom('members')
      .select('name')
      .where('tenant_id', '=', 'a')
      .where('pool_name', '=', 'web')
      .where('name', '=', 'm3')
      .execute();
    expect(rows).toHaveLength(1);
  });
});

describe('replacing the member set', () => {
  it('creates the whole set in one revision', async () => {
    const before = await committedRevision();
    const res = await app.admin('PUT', SET, {
      members: [
        { name: 's1', address: '10.1.0.1', port: 80 },
        { name: 's2', address: '10.1.0.2', port: 80 },
        { name: 's3', address: '10.1.0.3', port: 80 },
      ],
    });
    expect(res.status).toBe(200);
    expect(res.body.revision).toBe(before + 1);
    expect(res.body.items.map((m: any) => [m.name, m.revision])).toEqual([
      ['s1', before + 1],
      ['s2', before + 1],
      ['s3', before + 1],
    ]);
    expect((await app.admin('GET', '/v1/tenants/a/pools/set')).body.memberCount).toBe(3);
  });

  it('creates, updates and deletes in one revision and keeps the revision of unchanged members', async () => {
    const current = byName((await app.admin('GET', SET)).body.items);
    const before = await committedRevision();
    const res = await app.admin(
      'PUT',
      SET,
      {
        members: [
          { name: 's1', address: '10.1.0.1', port: 80 },
          { name: 's2', address: '10.1.0.2', port: 80, weight: 50 },
          { name: 's4', address: '10.1.0.4', port: 80 },
        ],
      },
      { 'x-request-id': 'req-replace' },
    );
    expect(res.status).toBe(200);
    expect(res.body.revision).toBe(before + 1);
    expect(await committedRevision()).toBe(before + 1);
    const after = byName(res.body.items);
    expect(Object.keys(after)).toEqual(['s1', 's2', 's4']);
    expect(after.s1).toEqual(current.s1);
    expect(after.s2).toMatchObject({ weight: 50, revision: before + 1, createdAt: current.s2.createdAt });
    expect(after.s4.revision).toBe(before + 1);
    const audit = await auditFor('req-replace');
    expect(audit.map((e) => [e.action, e.resource_id, Number(e.revision)])).toEqual([
      ['delete', 'a/pools/set/members/s3', before + 1],
      ['update', 'a/pools/set/members/s2', before + 1],
      ['create', 'a/pools/set/members/s4', before + 1],
    ]);
    expect((audit[1]!.before as any).weight).toBe(100);
    expect((audit[1]!.after as any).weight).toBe(50);
  });

  it("swaps two members' endpoints in one call", async () => {
    const res = await app.admin('PUT', SET, {
      members: [
        { name: 's1', address: '10.1.0.2', port: 80 },
        { name: 's2', address: '10.1.0.1', port: 80, weight: 50 },
        { name: 's4', address: '10.1.0.4', port: 80 },
      ],
    });
    expect(res.status).toBe(200);
    expect(res.body.items.map((m: any) => [m.name, m.address])).toEqual([
      ['s1', '10.1.0.2'],
      ['s2', '10.1.0.1'],
      ['s4', '10.1.0.4'],
    ]);
  });

  it('commits nothing when the set is already as asked', async () => {
    const current = await app.admin('GET', SET);
    const before = await committedRevision();
    const res = await app.admin(
      'PUT',
      SET,
      {
        members: current.body.items.map(({ name, address, port, weight, state, backup }: any) => ({
          name,
          address,
          port,
          weight,
          state,
          backup,
        })),
      },
      { 'x-request-id': 'req-noop-replace' },
    );
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ items: current.body.items, revision: before });
    expect(await committedRevision()).toBe(before);
    expect(await auditFor('req-noop-replace')).toEqual([]);
  });

  it.each([
    [
      [
        { name: 's1', address: '10.1.0.1', port: 80 },
        { name: 's1', address: '10.1.0.9', port: 80 },
      ],
      'body.members.1.name',
    ],
    [
      [
        { name: 's1', address: '10.1.0.1', port: 80 },
        { name: 's5', address: '10.1.0.1', port: 80 },
      ],
      'body.members.1.address',
    ],
    [
      [
        { name: 's1', address: '10.1.0.1', port: 80 },
        { name: 's5', address: '10.1.0.5', port: 70000 },
      ],
      'body.members.1.port',
    ],
    [[{ name: 's1', address: '10.1.0.1', port: 80, weight: 257 }], 'body.members.0.weight'],
  ])('refuses an invalid set naming the field and changes nothing (%#)', async (members, field) => {
    const current = await app.admin('GET', SET);
    const before = await committedRevision();
    const res = await app.admin('PUT', SET, { members });
    expect(res.status).toBe(400);
    expect(res.body.error.details.map((d: any) => d.path)).toContain(field);
    expect(await committedRevision()).toBe(before);
    expect((await app.admin('GET', SET)).body).toEqual(current.body);
  });

  it('sees an IPv4-mapped IPv6 member as unchanged when the same set is sent again', async () => {
    const set = { members: [{ name: 's9', address: '::ffff:10.1.0.9', port: 80 }] };
    const first = await app.admin('PUT', SET, set);
    expect(first.status).toBe(200);
    const again = await app.admin('PUT', SET, set);
    expect(again.body).toEqual(first.body);
    expect(await committedRevision()).toBe(first.body.revision);
  });

  it('empties the pool with an empty set', async () => {
    const res = await app.admin('PUT', SET, { members: [] });
    expect(res.status).toBe(200);
    expect(res.body.items).toEqual([]);
    expect((await app.admin('GET', '/v1/tenants/a/pools/set')).body.memberCount).toBe(0);
  });
});

describe('member access', () => {
  it('lets a tenant-viewer read members but not write them (403)', async () => {
    const as = app.as(await app.token('tenant-viewer', { tenant: 'a' }));
    expect((await as('GET', WEB)).status).toBe(200);
    expect((await as('GET', `${WEB}/m1`)).status).toBe(200);
    expect((await as('POST', WEB, { name: 'v1', address: '10.9.0.1', port: 80 })).status).toBe(403);
    expect((await as('PUT', WEB, { members: [] })).status).toBe(403);
    expect((await as('PATCH', `${WEB}/m1`, { weight: 1 })).status).toBe(403);
    expect((await as('DELETE', `${WEB}/m1`)).status).toBe(403);
    expect((await app.admin('GET', WEB)).body.items.length).toBeGreaterThan(0);
  });

  it('lets a tenant-admin change its own members', async () => {
    const as = app.as(await app.token('tenant-admin', { tenant: 'a' }));
    expect((await as('POST', WEB, { name: 'ta', address: '10.9.0.2', port: 80 })).status).toBe(201);
    expect((await as('DELETE', `${WEB}/ta`)).status).toBe(200);
  });

  it('answers 404 to a token of another tenant, as if the tenant did not exist', async () => {
    const as = app.as(await app.token('tenant-admin', { tenant: 'b' }));
    for (const [method, path, body] of [
      ['GET', WEB, undefined],
      ['POST', WEB, { name: 'x1', address: '10.9.0.3', port: 80 }],
      ['PUT', WEB, { members: [] }],
      ['GET', `${WEB}/m1`, undefined],
      ['PATCH', `${WEB}/m1`, { weight: 1 }],
      ['DELETE', `${WEB}/m1`, undefined],
    ] as const) {
      const res = await as(method, path, body);
      expect(res.status, `${method} ${path}`).toBe(404);
      expect(res.body.error.details).toEqual({ resource: 'tenant', id: 'a' });
    }
    expect((await app.admin('GET', `${WEB}/m1`)).status).toBe(200);
  });
});
