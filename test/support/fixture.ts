import { expect } from 'vitest';
import type { TestApp } from './app.js';
import { makeCert, type TestCert } from './certs.js';

export const PARAMS: Record<string, string> = {
  tenant: 'a',
  vip: 'web',
  route: 'r1',
  pool: 'web',
  member: 'm1',
  certificate: 'shop',
  bundle: 'members',
  node: 'edge-1',
  token: 'x',
};

/** Fills `:name` path parameters with the objects `seedTenantA` creates. */
export const fillPath = (path: string) =>
  path.replace(/:(\w+)/g, (_, name: string) => PARAMS[name] ?? `missing-${name}`);

/** Tenant a with one of everything: certificate, CA bundle, pool with a member, http VIP with a route; tenant b empty. */
export async function seedTenantA(app: TestApp): Promise<{ cert: TestCert }> {
  const cert = makeCert('shop.a.example.com');
  const setup: [string, string, unknown][] = [
    ['POST', '/v1/tenants', { id: 'a' }],
    ['POST', '/v1/tenants', { id: 'b' }],
    ['POST', '/v1/tenants/a/certificates', { name: 'shop', ...cert }],
    ['POST', '/v1/tenants/a/ca-bundles', { name: 'members', certificates: cert.certificate }],
    ['POST', '/v1/tenants/a/pools', { name: 'web' }],
    ['POST', '/v1/tenants/a/pools/web/members', { name: 'm1', address: '10.0.0.1', port: 8080 }],
    [
      'POST',
      '/v1/tenants/a/vips',
      { name: 'web', address: '192.168.1.100', port: 80, protocol: 'http', defaultPool: 'web' },
    ],
    ['POST', '/v1/tenants/a/vips/web/routes', { name: 'r1', match: { pathPrefix: '/api' }, pool: 'web' }],
  ];
  for (const [method, path, body] of setup) {
    const res = await app.admin(method, path, body);
    expect(res.status, `${method} ${path}: ${JSON.stringify(res.body)}`).toBe(201);
  }
  return { cert };
}

/** Tenant a with one HTTP VIP `www` (192.168.9.1:80) on pool `web` of one member: the least a node can serve. */
export async function seedOneVipTenant(app: TestApp): Promise<void> {
  const setup: [string, string, unknown][] = [
    ['POST', '/v1/tenants', { id: 'a' }],
    ['POST', '/v1/tenants/a/pools', { name: 'web', healthCheck: { type: 'http' } }],
    ['PUT', '/v1/tenants/a/pools/web/members', { members: [{ name: 'm1', address: '10.0.0.1', port: 80 }] }],
    [
      'POST',
      '/v1/tenants/a/vips',
      { name: 'www', address: '192.168.9.1', port: 80, protocol: 'http', defaultPool: 'web' },
    ],
  ];
  for (const [method, path, body] of setup) {
    const res = await app.admin(method, path, body);
    expect(res.status, `${method} ${path}: ${JSON.stringify(res.body)}`).toBeLessThan(300);
  }
}

export async function currentRevision(app: TestApp): Promise<number> {
  const row = await app.database.handle.db.selectFrom('revision_counter').select('revision').executeTakeFirstOrThrow();
  return Number(row.revision);
}
