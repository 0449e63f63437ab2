import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allRoutes } from '../../src/api/registry.js';
import { isTenantScoped, type RouteSpec } from '../../src/api/route.js';
import { ROLE_PERMISSIONS, ROLES, type Role } from '../../src/domain/token.js';
import { startTestApp, type Caller, type TestApp } from '../support/app.js';
import { currentRevision, fillPath, seedTenantA } from '../support/fixture.js';

/**
 * Walks EVERY route with a token of EVERY role, and reads every 403 the API gives: each must be a
 * sentence that names the caller's role with the right article, the route, the permission it
 * lacks and the tokens that hold it (a 403 used to read "a tenant-viewer token may not every
 * tenant's stored caps per node…").
 */
let app: TestApp;
let callers: Record<Role, Caller>;
let routes: RouteSpec[];

beforeAll(async () => {
  app = await startTestApp();
  routes = allRoutes(app.cp.services);
  await seedTenantA(app);
  expect(
    (await app.admin('POST', '/v1/nodes', { name: 'edge-1', kind: 'haproxy', capacity: { vcpu: 4, memoryMb: 8192 } }))
      .status,
  ).toBe(201);
  callers = {
    admin: app.admin,
    operator: app.as(await app.token('operator')),
    registrar: app.as(await app.token('registrar')),
    'tenant-admin': app.as(await app.token('tenant-admin', { tenant: 'a' })),
    'tenant-viewer': app.as(await app.token('tenant-viewer', { tenant: 'a' })),
    agent: app.as(await app.token('agent', { node: 'edge-1' })),
  };
});
afterAll(async () => {
  await app?.stop();
});

const key = (r: Pick<RouteSpec, 'method' | 'path'>) => `${r.method.toUpperCase()} ${r.path}`;
const article = (role: string) => (/^[aeiou]/.test(role) ? 'an' : 'a');
/** Writes run as dry runs (rolled back), so a role that may write changes nothing either. */
const asDryRun = (r: RouteSpec) => (r.method === 'get' ? fillPath(r.path) : `${fillPath(r.path)}?dryRun=true`);

const SENTENCE =
  /^(an?) ([a-z-]+) token may not (.+): that needs the ([a-z:]+) permission, which ([a-z-]+(?:, [a-z-]+)*(?: or [a-z-]+)?) tokens have$/;

describe('403 messages', () => {
  it('on every route a role may not call, name the role, the route, the permission and who holds it', async () => {
    const before = await currentRevision(app);
    let checked = 0;
    for (const r of routes.filter((r) => r.permission !== null)) {
      for (const role of ROLES.filter((role) => !ROLE_PERMISSIONS[role].has(r.permission!))) {
        const res = await callers[role](
          r.method.toUpperCase(),
          asDryRun(r),
          r.method === 'get' || r.method === 'delete' ? undefined : {},
        );
        const where = `${role} → ${key(r)}`;
        // An agent is scoped out of tenant routes before its permission is looked at: no existence leak.
        if (role === 'agent' && isTenantScoped(r)) {
          expect(res.status, where).toBe(404);
          continue;
        }
        expect(res.status, `${where} → ${JSON.stringify(res.body)}`).toBe(403);
        const m = SENTENCE.exec(res.body.error.message);
        expect(m, `${where}: ${res.body.error.message}`).not.toBeNull();
        const [, art, named, action, permission, holders] = m!;
        expect([art, named], where).toEqual([article(role), role]);
        expect(action, where).toBe(`call ${r.method.toUpperCase()} ${r.path.replace(/:(\w+)/g, '{$1}')}`);
        expect(permission, where).toBe(r.permission);
        const listed = holders!.split(/, | or /);
        expect(listed.length, where).toBeGreaterThan(0);
        for (const holder of listed)
          expect(ROLE_PERMISSIONS[holder as Role]?.has(r.permission!), `${where}: ${holder}`).toBe(true);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(100);
    expect(await currentRevision(app)).toBe(before);
  });

  it('in the handlers’ own refusals, read as sentences with the right article', async () => {
    const refusals: [Role, string, string, unknown][] = [
      ['operator', 'POST', '/v1/rebalance', undefined],
      ['registrar', 'GET', '/v1/nodes/edge-1', undefined],
      ['registrar', 'GET', '/v1/audit', undefined],
      ['agent', 'GET', '/v1/audit', undefined],
      ['tenant-admin', 'PATCH', '/v1/tenants/a', { weight: 5 }],
    ];
    const messages = [];
    for (const [role, method, path, body] of refusals) {
      const res = await callers[role](method, path, body);
      expect(res.status, `${role} ${method} ${path} → ${JSON.stringify(res.body)}`).toBe(403);
      expect(res.body.error.message.startsWith(`${article(role)} ${role} token `), res.body.error.message).toBe(true);
      messages.push(res.body.error.message);
    }
    expect(messages).toEqual([
      'an operator token may not apply a rebalance (it may dry-run one with ?dryRun=true): that needs the fleet:write permission, which admin tokens have',
      'a registrar token may not get a proxy node: that needs the fleet:read permission, which admin or operator tokens have',
      'a registrar token may not read the audit log: that needs the audit:read permission, which admin or operator tokens have',
      'an agent token may not read the audit log: that needs the audit:read permission, which admin or operator tokens have',
      'a tenant-admin token cannot change weight; ask a fleet operator',
    ]);
  });

  it('names a token role with its article when a token body is refused', async () => {
    const res = await app.admin('POST', '/v1/tokens', { name: 'x', role: 'admin', tenant: 'a' });
    expect(res.status).toBe(400);
    expect(res.body.error.details).toContainEqual({
      path: 'body.tenant',
      message: 'an admin token is not scoped to a tenant',
    });
  });
});

describe('the Authorization header', () => {
  it('takes the Bearer scheme in any case, as RFC 7235 says', async () => {
    for (const scheme of ['Bearer', 'bearer', 'BEARER', 'bEaReR']) {
      const res = await app.as(null)('GET', '/v1/tenants', undefined, { authorization: `${scheme} ${app.adminToken}` });
      expect(res.status, scheme).toBe(200);
    }
    for (const header of [`Basic ${app.adminToken}`, `Bearer${app.adminToken}`, app.adminToken]) {
      const res = await app.as(null)('GET', '/v1/tenants', undefined, { authorization: header });
      expect(res.status, header.slice(0, 8)).toBe(401);
    }
  });
});

describe('GET /v1/audit', () => {
  it('answers an agent token 403, not a 404 about an empty tenant', async () => {
    const res = await callers.agent('GET', '/v1/audit');
    expect(res.status).toBe(403);
    expect(res.body.error.code).toBe('forbidden');
    expect(res.body.error.message).not.toMatch(/not found/);
  });
});
