import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isTenantScoped } from '../../src/api/route.js';
import { allRoutes } from '../../src/api/registry.js';
import { startTestApp, type Caller, type TestApp } from '../support/app.js';
import { makeCert } from '../support/certs.js';
import { currentRevision, fillPath as fill, seedTenantA } from '../support/fixture.js';

/**
 * Walks EVERY tenant-scoped route with another tenant's token. The table below must name each
 * route: adding a route without covering it here fails the first test.
 */
interface Case {
  readonly body?: unknown;
}

const cert = makeCert('shop.a.example.com');

const TENANT_ROUTES: Record<string, Case> = {
  'GET /v1/tenants/:tenant': {},
  'PATCH /v1/tenants/:tenant': { body: { displayName: 'pwned' } },
  'DELETE /v1/tenants/:tenant': {},
  'POST /v1/tenants/:tenant/approve': { body: {} },
  'POST /v1/tenants/:tenant/reject': { body: { reason: 'no' } },
  'GET /v1/tenants/:tenant/vips': {},
  'POST /v1/tenants/:tenant/vips': { body: { name: 'evil', address: '192.168.9.9', port: 80, protocol: 'http' } },
  'GET /v1/tenants/:tenant/vips/:vip': {},
  'PATCH /v1/tenants/:tenant/vips/:vip': { body: { port: 8081 } },
  'DELETE /v1/tenants/:tenant/vips/:vip': {},
  'GET /v1/tenants/:tenant/vips/:vip/routes': {},
  'POST /v1/tenants/:tenant/vips/:vip/routes': { body: { name: 'evil', match: { pathPrefix: '/x' }, pool: 'web' } },
  'GET /v1/tenants/:tenant/vips/:vip/routes/:route': {},
  'PATCH /v1/tenants/:tenant/vips/:vip/routes/:route': { body: { priority: 1 } },
  'DELETE /v1/tenants/:tenant/vips/:vip/routes/:route': {},
  'GET /v1/tenants/:tenant/pools': {},
  'POST /v1/tenants/:tenant/pools': { body: { name: 'evil' } },
  'GET /v1/tenants/:tenant/pools/:pool': {},
  'PATCH /v1/tenants/:tenant/pools/:pool': { body: { algorithm: 'leastconn' } },
  'DELETE /v1/tenants/:tenant/pools/:pool': {},
  'GET /v1/tenants/:tenant/pools/:pool/members': {},
  'POST /v1/tenants/:tenant/pools/:pool/members': { body: { name: 'evil', address: '10.0.0.66', port: 80 } },
  'PUT /v1/tenants/:tenant/pools/:pool/members': { body: { members: [] } },
  'GET /v1/tenants/:tenant/pools/:pool/members/:member': {},
  'PATCH /v1/tenants/:tenant/pools/:pool/members/:member': { body: { weight: 1 } },
  'DELETE /v1/tenants/:tenant/pools/:pool/members/:member': {},
  'GET /v1/tenants/:tenant/certificates': {},
  'POST /v1/tenants/:tenant/certificates': { body: { name: 'evil', ...cert } },
  'GET /v1/tenants/:tenant/certificates/:certificate': {},
  'PUT /v1/tenants/:tenant/certificates/:certificate': { body: cert },
  'DELETE /v1/tenants/:tenant/certificates/:certificate': {},
  'GET /v1/tenants/:tenant/ca-bundles': {},
  'POST /v1/tenants/:tenant/ca-bundles': { body: { name: 'evil', certificates: cert.certificate } },
  'GET /v1/tenants/:tenant/ca-bundles/:bundle': {},
  'PUT /v1/tenants/:tenant/ca-bundles/:bundle': { body: { certificates: cert.certificate } },
  'DELETE /v1/tenants/:tenant/ca-bundles/:bundle': {},
  'GET /v1/tenants/:tenant/render': {},
  'GET /v1/tenants/:tenant/status': {},
  'GET /v1/tenants/:tenant/allocation': {},
  'GET /v1/tenants/:tenant/placement': {},
  'GET /v1/tenants/:tenant/stats': {},
};

const key = (r: { method: string; path: string }) => `${r.method.toUpperCase()} ${r.path}`;

let app: TestApp;
let owner: Caller;
let other: Caller;
let otherViewer: Caller;
let routes: ReturnType<typeof allRoutes>;

beforeAll(async () => {
  app = await startTestApp();
  routes = allRoutes(app.cp.services);
  await seedTenantA(app);
  owner = app.as(await app.token('tenant-admin', { tenant: 'a' }));
  other = app.as(await app.token('tenant-admin', { tenant: 'b' }));
  otherViewer = app.as(await app.token('tenant-viewer', { tenant: 'b' }));
});
afterAll(async () => {
  await app?.stop();
});

const revision = () => currentRevision(app);

describe('tenant isolation', () => {
  it('covers every tenant-scoped route in the table', () => {
    const scoped = routes.filter(isTenantScoped).map(key).sort();
    expect(scoped.filter((k) => !(k in TENANT_ROUTES))).toEqual([]);
    expect(Object.keys(TENANT_ROUTES).filter((k) => !scoped.includes(k))).toEqual([]);
  });

  it('answers the owner with 200 on every read of the table (the paths are real)', async () => {
    for (const r of routes.filter(isTenantScoped).filter((r) => r.method === 'get')) {
      const res = await owner('GET', fill(r.path));
      expect(res.status, `${key(r)} → ${JSON.stringify(res.body)}`).toBe(200);
    }
  });

  it('answers another tenant 404 on every route, exactly as for a missing tenant, and changes nothing', async () => {
    const before = await revision();
    for (const r of routes.filter(isTenantScoped)) {
      for (const caller of [other, otherViewer]) {
        const res = await caller(r.method.toUpperCase(), fill(r.path), TENANT_ROUTES[key(r)]!.body);
        expect(res.status, `${key(r)} → ${JSON.stringify(res.body)}`).toBe(404);
        expect(res.body.error).toEqual({
          code: 'not_found',
          message: "tenant 'a' not found",
          details: { resource: 'tenant', id: 'a' },
        });
      }
    }
    expect(await revision()).toBe(before);
    const missing = await other('GET', '/v1/tenants/zzz');
    expect(missing.body.error.message).toBe("tenant 'zzz' not found");
  });

  it('lets a viewer of the tenant read but not write', async () => {
    const viewer = app.as(await app.token('tenant-viewer', { tenant: 'a' }));
    const before = await revision();
    for (const r of routes.filter(isTenantScoped)) {
      const res = await viewer(r.method.toUpperCase(), fill(r.path), TENANT_ROUTES[key(r)]!.body);
      expect(res.status, key(r)).toBe(r.method === 'get' ? 200 : 403);
    }
    expect(await revision()).toBe(before);
  });

  it('refuses tenant tokens on every fleet-wide route except the scoped lists (tenants, audit)', async () => {
    for (const r of routes.filter((r) => !isTenantScoped(r))) {
      const res = await other(
        r.method.toUpperCase(),
        r.path.replace(/:(\w+)/g, 'x'),
        r.method === 'get' || r.method === 'delete' ? undefined : {},
      );
      // These two answer 200 but filter to the token's own tenant (tested in tenants/audit tests).
      if (key(r) === 'GET /v1/tenants' || key(r) === 'GET /v1/audit') expect(res.status).toBe(200);
      else expect([403, 404], `${key(r)} → ${res.status}`).toContain(res.status);
      if (res.status === 404) expect(r.path).toMatch(/:node/); // only an agent-style node lookup may 404
    }
  });

  it('answers 401 without a token or with a wrong one, on every route', async () => {
    for (const r of routes) {
      const none = await app.as(null)(r.method.toUpperCase(), fill(r.path).replace(/:(\w+)/g, 'x'));
      expect(none.status, key(r)).toBe(401);
      const wrong = await app.as('sy_not-a-real-token-0123456789')(
        r.method.toUpperCase(),
        fill(r.path).replace(/:(\w+)/g, 'x'),
      );
      expect(wrong.status, key(r)).toBe(401);
      expect(wrong.headers.get('www-authenticate')).toMatch(/^Bearer/);
    }
  });
});
