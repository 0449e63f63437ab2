import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/app.js';
import { currentRevision } from '../support/fixture.js';

/**
 * A tenant's proxy kind and one node per host, through the API on real PostgreSQL. Four nodes on
 * three machines: hap-1 and ngx-1 share host m1 (HAProxy and NGINX side by side), hap-2 runs on m2,
 * ngx-2 on m3. A tenant that chose a kind is placed on that kind only; one that did not is placed
 * on every kind, but never on two nodes of one host, where both proxies would bind its VIP:port.
 */

let app: TestApp;

const nodes = [
  { name: 'hap-1', kind: 'haproxy', zone: 'z1', host: 'm1', runtimeAddress: { host: '127.0.0.1', port: 9201 } },
  { name: 'hap-2', kind: 'haproxy', zone: 'z2', host: 'm2', runtimeAddress: { host: '127.0.0.1', port: 9202 } },
  { name: 'ngx-1', kind: 'nginx', zone: 'z1', host: 'm1' },
  { name: 'ngx-2', kind: 'nginx', zone: 'z2', host: 'm3' },
] as const;

async function ok(method: string, path: string, body?: unknown) {
  const res = await app.admin(method, path, body);
  expect(res.status, `${method} ${path}: ${JSON.stringify(res.body)}`).toBeLessThan(300);
  return res.body;
}

const placedOn = async (tenant: string): Promise<string[]> =>
  (await ok('GET', `/v1/tenants/${tenant}/placement`)).nodes.map((n: { node: string }) => n.node).sort();

/** Nodes whose rendered files hold the tenant's VIP listener. */
async function rendering(address: string): Promise<string[]> {
  const out: string[] = [];
  for (const n of nodes) {
    const files: Record<string, string> = (await ok('GET', `/v1/nodes/${n.name}/config`)).files;
    if (Object.values(files).some((content) => content.includes(`${address}:80`))) out.push(n.name);
  }
  return out.sort();
}

async function tenantWithVip(id: string, address: string, extra: Record<string, unknown> = {}) {
  await ok('POST', '/v1/tenants', { id, reservation: { vcpu: 1, memoryMb: 1024 }, ...extra });
  await ok('POST', `/v1/tenants/${id}/pools`, { name: 'web' });
  await ok('POST', `/v1/tenants/${id}/vips`, { name: 'web', address, port: 80, protocol: 'http', defaultPool: 'web' });
}

beforeAll(async () => {
  app = await startTestApp();
  for (const n of nodes) await ok('POST', '/v1/nodes', { ...n, capacity: { vcpu: 8, memoryMb: 16384 } });
}, 60_000);
afterAll(async () => {
  await app?.stop();
});

describe('proxy kind and hosts', () => {
  it('when a node declares no host, then it is a host of its own (its name)', async () => {
    await ok('POST', '/v1/nodes', {
      name: 'spare',
      kind: 'haproxy',
      group: 'spare',
      capacity: { vcpu: 1, memoryMb: 1024 },
    });
    expect((await ok('GET', '/v1/nodes/spare')).host).toBe('spare');
    expect((await ok('GET', '/v1/nodes/hap-1')).host).toBe('m1');
  });

  it('when a tenant chooses nginx, then only nginx nodes are given it and only they render its VIP', async () => {
    await tenantWithVip('web', '198.18.10.1', { proxyKind: 'nginx' });
    expect((await ok('GET', '/v1/tenants/web')).proxyKind).toBe('nginx');
    expect(await placedOn('web')).toEqual(['ngx-1', 'ngx-2']);
    expect(await rendering('198.18.10.1')).toEqual(['ngx-1', 'ngx-2']);
  });

  it('when a tenant chooses no kind, then it runs on every kind but never on two nodes of one host', async () => {
    await tenantWithVip('any', '198.18.10.2');
    expect((await ok('GET', '/v1/tenants/any')).proxyKind).toBeNull();
    // HAProxy is planned first and takes m1 and m2; NGINX may only use m3.
    expect(await placedOn('any')).toEqual(['hap-1', 'hap-2', 'ngx-2']);
    expect(await rendering('198.18.10.2')).toEqual(['hap-1', 'hap-2', 'ngx-2']);
    const placement = await ok('GET', '/v1/tenants/any/placement');
    const hosts = placement.nodes.map((n: { node: string }) => nodes.find((x) => x.name === n.node)!.host);
    expect(new Set(hosts).size).toBe(hosts.length);
  });

  it('when a node is moved onto a host that already serves a tenant, then that tenant leaves it, and the move is audited', async () => {
    await ok('PATCH', '/v1/nodes/ngx-2', { host: 'm2' });
    expect(await placedOn('any')).toEqual(['hap-1', 'hap-2']);
    expect(await rendering('198.18.10.2')).toEqual(['hap-1', 'hap-2']);
    // A tenant of one kind only is not affected by sharing: web still has both nginx nodes.
    expect(await placedOn('web')).toEqual(['ngx-1', 'ngx-2']);
    const audit = await ok('GET', '/v1/audit?tenant=any&resourceType=placement');
    const moves = audit.items.flatMap(
      (e: { after: { moves?: { from: string | null; reason: string }[] } }) => e.after.moves ?? [],
    );
    expect(moves).toContainEqual(expect.objectContaining({ from: 'ngx-2', reason: 'host-shared' }));
    await ok('PATCH', '/v1/nodes/ngx-2', { host: null });
    expect((await ok('GET', '/v1/nodes/ngx-2')).host).toBe('ngx-2');
    expect(await placedOn('any')).toEqual(['hap-1', 'hap-2', 'ngx-2']);
  });

  it('when a tenant changes its kind, then it moves to the new kind in one revision', async () => {
    await ok('PATCH', '/v1/tenants/web', { proxyKind: 'haproxy' });
    expect(await placedOn('web')).toEqual(['hap-1', 'hap-2']);
    expect(await rendering('198.18.10.1')).toEqual(['hap-1', 'hap-2']);
    await ok('PATCH', '/v1/tenants/web', { proxyKind: 'nginx' });
    expect(await placedOn('web')).toEqual(['ngx-1', 'ngx-2']);
  });

  it('when a group has nodes but none of the chosen kind, then the tenant is refused with 409 naming proxyKind, and nothing changes', async () => {
    const before = await currentRevision(app);
    const res = await app.admin('POST', '/v1/tenants', { id: 'lost', proxyKind: 'nginx', labels: { group: 'spare' } });
    expect(res.status).toBe(409);
    expect(res.body.error.message).toContain('group spare has only haproxy nodes');
    expect(res.body.error.details.field).toBe('proxyKind');
    const moved = await app.admin('PATCH', '/v1/tenants/web', { labels: { group: 'spare' } });
    expect(moved.status).toBe(409);
    expect(await placedOn('web')).toEqual(['ngx-1', 'ngx-2']);
    expect(await currentRevision(app)).toBe(before);
    // A group with no nodes at all yet accepts it: it is placed when its nodes register.
    expect(
      (await app.admin('POST', '/v1/tenants', { id: 'early', proxyKind: 'nginx', labels: { group: 'future' } })).status,
    ).toBe(201);
    expect(await placedOn('early')).toEqual([]);
  });

  it('when the kind is not haproxy or nginx, then it is a 400 naming the field', async () => {
    const res = await app.admin('PATCH', '/v1/tenants/web', { proxyKind: 'envoy' });
    expect(res.status).toBe(400);
    expect(JSON.stringify(res.body.error.details)).toContain('body.proxyKind');
    const host = await app.admin('PATCH', '/v1/nodes/hap-1', { host: 'not a host' });
    expect(host.status).toBe(400);
    expect(JSON.stringify(host.body.error.details)).toContain('body.host');
  });

  it('when a tenant-admin or a registrar sets the kind, then it is refused with 403; an operator may', async () => {
    const tenantAdmin = app.as(await app.token('tenant-admin', { tenant: 'web' }));
    expect((await tenantAdmin('PATCH', '/v1/tenants/web', { proxyKind: 'haproxy' })).status).toBe(403);
    expect((await tenantAdmin('PATCH', '/v1/tenants/web', { proxyKind: null })).status).toBe(403);
    const registrar = app.as(await app.token('registrar'));
    const created = await registrar('POST', '/v1/tenants', { id: 'ci', proxyKind: 'haproxy' });
    expect(created.status).toBe(403);
    expect(created.body.error.message).toContain('proxyKind');
    expect((await registrar('POST', '/v1/tenants', { id: 'ci' })).status).toBe(201);
    const operator = app.as(await app.token('operator'));
    expect((await operator('PATCH', '/v1/tenants/any', { proxyKind: 'haproxy' })).status).toBe(200);
    expect(await placedOn('any')).toEqual(['hap-1', 'hap-2']);
  });
});
