import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/app.js';

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
  for (const id of ['a', 'b']) expect((await app.admin('POST', '/v1/tenants', { id })).status).toBe(201);
  // Pools come from their own API; rows are enough here.
  await app.database.handle.db
    .insertInto('pools')
    .values([
      { tenant_id: 'a', name: 'web', algorithm: 'roundrobin', health_check: null, revision: 1 },
      { tenant_id: 'a', name: 'api', algorithm: 'roundrobin', health_check: null, revision: 1 },
    ])
    .execute();
});
afterAll(async () => {
  await app?.stop();
});

const httpVip = {
  name: 'web',
  address: '192.168.1.100',
  port: 80,
  protocol: 'http',
  persistence: 'cookie',
  defaultPool: 'web',
};

describe('address pools', () => {
  it('creates a pool and reports its usable size', async () => {
    const res = await app.admin('POST', '/v1/address-pools', { name: 'lan', cidr: '10.20.0.0/26' });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ name: 'lan', cidr: '10.20.0.0/26', size: 62, leased: 0 });
  });

  it('refuses a pool that overlaps another, naming it', async () => {
    const res = await app.admin('POST', '/v1/address-pools', { name: 'lan2', cidr: '10.20.0.32/27' });
    expect(res.status).toBe(409);
    expect(res.body.error.message).toContain('lan (10.20.0.0/26)');
  });

  it('refuses a CIDR with host bits set, naming the field', async () => {
    const res = await app.admin('POST', '/v1/address-pools', { name: 'bad', cidr: '10.30.0.1/24' });
    expect(res.status).toBe(400);
    expect(res.body.error.details[0].path).toBe('body.cidr');
  });

  it('is fleet-wide: tenant tokens cannot read or create pools', async () => {
    const token = await app.token('tenant-admin', { tenant: 'a' });
    expect((await app.as(token)('GET', '/v1/address-pools')).status).toBe(403);
    expect((await app.as(token)('POST', '/v1/address-pools', { name: 'x', cidr: '10.40.0.0/24' })).status).toBe(403);
  });
});

describe('vips', () => {
  it('creates an http VIP on an explicit address with defaults filled in', async () => {
    const res = await app.admin('POST', '/v1/tenants/a/vips', httpVip);
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({
      name: 'web',
      address: '192.168.1.100',
      addressPool: null,
      port: 80,
      protocol: 'http',
      persistence: 'cookie',
      cookieName: 'SRVID',
      timeouts: { clientMs: 30000, serverMs: 30000, connectMs: 5000 },
      allowlist: [],
      defaultPool: 'web',
    });
  });

  it('normalises IPv6 addresses and source ranges', async () => {
    const res = await app.admin('POST', '/v1/tenants/a/vips', {
      name: 'v6',
      address: '2001:DB8:0:0::1',
      port: 8443,
      protocol: 'tcp',
      allowlist: ['10.0.0.7', '2001:db8::/32'],
    });
    expect(res.status).toBe(201);
    expect(res.body.address).toBe('2001:db8::1');
    expect(res.body.allowlist).toEqual(['10.0.0.7/32', '2001:db8::/32']);
  });

  it('needs exactly one of address and addressPool', async () => {
    const both = await app.admin('POST', '/v1/tenants/a/vips', { ...httpVip, name: 'x', addressPool: 'lan' });
    expect(both.status).toBe(400);
    expect(both.body.error.details[0].path).toBe('body.address');
    const neither = await app.admin('POST', '/v1/tenants/a/vips', { name: 'x', port: 80, protocol: 'http' });
    expect(neither.status).toBe(400);
  });

  it('checks cross-field rules: https needs a certificate, tcp takes no host names or cookies', async () => {
    const https = await app.admin('POST', '/v1/tenants/a/vips', {
      name: 's',
      address: '192.168.1.101',
      port: 443,
      protocol: 'https',
    });
    expect(https.status).toBe(400);
    expect(https.body.error.details).toContainEqual({
      path: 'body.certificate',
      message: 'an https VIP needs a certificate',
    });
    const tcp = await app.admin('POST', '/v1/tenants/a/vips', {
      name: 't',
      address: '192.168.1.102',
      port: 22,
      protocol: 'tcp',
      hostnames: ['a.example.com'],
      persistence: 'cookie',
    });
    expect(tcp.status).toBe(400);
    expect(tcp.body.error.details.map((d: any) => d.path).sort()).toEqual(['body.hostnames', 'body.persistence']);
  });

  it('refuses a default pool or certificate that is not the tenant’s own, naming the field', async () => {
    const res = await app.admin('POST', '/v1/tenants/b/vips', { ...httpVip, address: '192.168.1.110' });
    expect(res.status).toBe(400);
    expect(res.body.error.details[0].path).toBe('body.defaultPool');
  });

  it('gives each address:port to one VIP only, without naming another tenant’s VIP', async () => {
    const res = await app.admin('POST', '/v1/tenants/b/vips', {
      name: 'steal',
      address: '192.168.1.100',
      port: 80,
      protocol: 'http',
    });
    expect(res.status).toBe(409);
    expect(res.body.error.message).toBe('192.168.1.100:80 is already in use by a VIP');
    expect(JSON.stringify(res.body)).not.toContain('web');
  });

  it('leases the next free address of a pool and releases it on delete', async () => {
    const first = await app.admin('POST', '/v1/tenants/a/vips', {
      name: 'l1',
      addressPool: 'lan',
      port: 80,
      protocol: 'http',
    });
    expect(first.status).toBe(201);
    expect(first.body).toMatchObject({ address: '10.20.0.1', addressPool: 'lan' });
    const second = await app.admin('POST', '/v1/tenants/a/vips', {
      name: 'l2',
      addressPool: 'lan',
      port: 80,
      protocol: 'http',
    });
    expect(second.body.address).toBe('10.20.0.2');
    expect((await app.admin('GET', '/v1/address-pools/lan')).body.leased).toBe(2);
    expect((await app.admin('DELETE', '/v1/tenants/a/vips/l1')).status).toBe(200);
    const third = await app.admin('POST', '/v1/tenants/a/vips', {
      name: 'l3',
      addressPool: 'lan',
      port: 80,
      protocol: 'http',
    });
    expect(third.body.address).toBe('10.20.0.1');
  });

  it('refuses an explicit address that another tenant leased', async () => {
    const res = await app.admin('POST', '/v1/tenants/b/vips', {
      name: 'x',
      address: '10.20.0.2',
      port: 8080,
      protocol: 'http',
    });
    expect(res.status).toBe(409);
    expect(res.body.error.message).toBe('10.20.0.2 is leased to another tenant');
  });

  it('refuses to delete an address pool with leases', async () => {
    const res = await app.admin('DELETE', '/v1/address-pools/lan');
    expect(res.status).toBe(409);
    expect(res.body.error.message).toMatch(/leased/);
  });

  it('patches a VIP, re-checking the whole; the address is fixed', async () => {
    const ok = await app.admin('PATCH', '/v1/tenants/a/vips/web', {
      hostnames: ['Shop.Example.com', '*.shop.example.com'],
      timeouts: { clientMs: 5000 },
    });
    expect(ok.status).toBe(200);
    expect(ok.body.hostnames).toEqual(['shop.example.com', '*.shop.example.com']);
    expect(ok.body.timeouts).toEqual({ clientMs: 5000, serverMs: 30000, connectMs: 5000 });
    const tcp = await app.admin('PATCH', '/v1/tenants/a/vips/web', { protocol: 'tcp' });
    expect(tcp.status).toBe(400);
    const addr = await app.admin('PATCH', '/v1/tenants/a/vips/web', { address: '192.168.1.200' });
    expect(addr.status).toBe(400);
    expect(addr.body.error.details[0].path).toBe('body.address');
  });

  it('answers 412 to a stale If-Match and commits nothing for a no-op patch', async () => {
    const current = await app.admin('GET', '/v1/tenants/a/vips/web');
    const same = await app.admin('PATCH', '/v1/tenants/a/vips/web', { port: 80 });
    expect(same.body.revision).toBe(current.body.revision);
    const stale = await app.admin('PATCH', '/v1/tenants/a/vips/web', { port: 81 }, { 'if-match': '"1"' });
    expect(stale.status).toBe(412);
    expect((await app.admin('GET', '/v1/tenants/a/vips/web')).body.port).toBe(80);
  });

  it('refuses to delete a tenant that still has VIPs', async () => {
    const res = await app.admin('DELETE', '/v1/tenants/a');
    expect(res.status).toBe(409);
    expect(res.body.error.message).toMatch(/still has \d+ VIP/);
  });

  it('hands out 62 distinct addresses from a /26 to 100 concurrent requests and refuses the rest with 409', async () => {
    expect((await app.admin('POST', '/v1/address-pools', { name: 'burst', cidr: '10.99.0.0/26' })).status).toBe(201);
    const results = await Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        app.admin('POST', '/v1/tenants/b/vips', {
          name: `burst-${i}`,
          addressPool: 'burst',
          port: 443,
          protocol: 'tcp',
        }),
      ),
    );
    const created = results.filter((r) => r.status === 201);
    const refused = results.filter((r) => r.status === 409);
    expect(created).toHaveLength(62);
    expect(refused).toHaveLength(38);
    expect(new Set(created.map((r) => r.body.address)).size).toBe(62);
    for (const r of created) expect(r.body.address).toMatch(/^10\.99\.0\.([1-9]|[1-5]\d|6[0-2])$/);
    for (const r of refused) expect(r.body.error.message).toMatch(/exhausted \(62 of 62/);
  });
});

describe('routes', () => {
  it('creates routes and lists them in evaluation order (priority, then name)', async () => {
    const mk = (name: string, priority: number, match: object) =>
      app.admin('POST', '/v1/tenants/a/vips/web/routes', { name, priority, match, pool: 'api' });
    expect((await mk('by-header', 30, { header: { name: 'X-Canary', value: 'yes' } })).status).toBe(201);
    expect((await mk('api-path', 10, { pathPrefix: '/api/' })).status).toBe(201);
    expect((await mk('api-host', 10, { host: 'api.example.com' })).status).toBe(201);
    const list = await app.admin('GET', '/v1/tenants/a/vips/web/routes');
    expect(list.body.items.map((r: any) => r.name)).toEqual(['api-host', 'api-path', 'by-header']);
  });

  it('needs at least one match and a pool of the tenant, naming the field', async () => {
    const empty = await app.admin('POST', '/v1/tenants/a/vips/web/routes', { name: 'e', match: {}, pool: 'api' });
    expect(empty.status).toBe(400);
    expect(empty.body.error.details[0].path).toBe('body.match');
    const pool = await app.admin('POST', '/v1/tenants/a/vips/web/routes', {
      name: 'p',
      match: { pathPrefix: '/x' },
      pool: 'nope',
    });
    expect(pool.status).toBe(400);
    expect(pool.body.error.details[0].path).toBe('body.pool');
  });

  it('refuses content routes on a tcp VIP', async () => {
    const res = await app.admin('POST', '/v1/tenants/a/vips/v6/routes', {
      name: 'r',
      match: { pathPrefix: '/' },
      pool: 'api',
    });
    expect(res.status).toBe(400);
    expect(res.body.error.details[0].path).toBe('params.vip');
  });

  it('patches and deletes a route; 404 for a missing one', async () => {
    const p = await app.admin('PATCH', '/v1/tenants/a/vips/web/routes/api-path', { priority: 5 });
    expect(p.status).toBe(200);
    expect(p.body.priority).toBe(5);
    expect((await app.admin('DELETE', '/v1/tenants/a/vips/web/routes/api-path')).status).toBe(200);
    expect((await app.admin('GET', '/v1/tenants/a/vips/web/routes/api-path')).status).toBe(404);
  });

  it('goes with its VIP when the VIP is deleted', async () => {
    await app.admin('POST', '/v1/tenants/a/vips', {
      name: 'tmp',
      address: '192.168.1.150',
      port: 80,
      protocol: 'http',
    });
    await app.admin('POST', '/v1/tenants/a/vips/tmp/routes', { name: 'r', match: { pathPrefix: '/' }, pool: 'api' });
    expect((await app.admin('DELETE', '/v1/tenants/a/vips/tmp')).status).toBe(200);
    const rows = await app.database.handle.db.selectFrom('routes').selectAll().where('vip_name', '=', 'tmp').execute();
    expect(rows).toHaveLength(0);
  });
});
