import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/app.js';

/**
 * VRRP settings through the API on real PostgreSQL: nodes that opt in get a keepalived.conf beside
 * their proxy files, rendered from placement (the first placed node is the primary), with one VRID
 * and one secret per VIP address that every peer agrees on, stored sealed and shown to no tenant.
 * Nodes without VRRP settings render no keepalived file. The real failover is in
 * test/integration/vrrp-failover.test.ts.
 */

let app: TestApp;

const VIP = '198.18.0.100';
const vrrp = (address: string) => ({ interface: 'eth1', address });
const haproxy = (name: string, extra: Record<string, unknown> = {}) => ({
  name,
  kind: 'haproxy',
  capacity: { vcpu: 8, memoryMb: 16384 },
  ...extra,
});

async function ok(method: string, path: string, body?: unknown) {
  const res = await app.admin(method, path, body);
  expect(res.status, `${method} ${path}: ${JSON.stringify(res.body)}`).toBeLessThan(300);
  return res.body;
}

const configOf = async (node: string) => ok('GET', `/v1/nodes/${node}/config`);
const keepalivedOf = async (node: string): Promise<string | undefined> =>
  (await configOf(node)).files['keepalived.conf'];

/** The instance block that carries `address`, parsed into the fields the peers must agree on. */
function instanceFor(conf: string, address: string) {
  const block = conf.split('\nvrrp_instance ').find((b) => b.includes(`${address}/32 dev`));
  if (block === undefined) return undefined;
  const one = (re: RegExp) => re.exec(block)?.[1];
  return {
    vrid: Number(one(/virtual_router_id (\d+)/)),
    priority: Number(one(/priority (\d+)/)),
    authPass: one(/auth_pass (\S+)/),
    peers: /unicast_peer \{\n([^}]*)\}/.exec(block)![1]!.trim().split(/\s+/),
    source: one(/unicast_src_ip (\S+)/),
  };
}

beforeAll(async () => {
  app = await startTestApp();
  await ok('POST', '/v1/nodes', haproxy('lb-1', { vrrp: vrrp('198.18.0.1') }));
  await ok('POST', '/v1/nodes', haproxy('lb-2', { vrrp: vrrp('198.18.0.2') }));
  await ok('POST', '/v1/nodes', { name: 'ngx-1', kind: 'nginx', capacity: { vcpu: 8, memoryMb: 16384 } });
  await ok('POST', '/v1/tenants', { id: 'a' });
  await ok('POST', '/v1/tenants/a/pools', { name: 'web' });
  await ok('POST', '/v1/tenants/a/vips', { name: 'www', address: VIP, port: 80, protocol: 'http', defaultPool: 'web' });
  await ok('POST', '/v1/tenants/a/vips', { name: 'tls', address: VIP, port: 443, protocol: 'tcp', defaultPool: 'web' });
}, 60_000);
afterAll(async () => {
  await app?.stop();
});

describe('VRRP settings of a node', () => {
  it('are shown on the node, and a bad one is refused with 400 naming the field, creating nothing', async () => {
    expect((await ok('GET', '/v1/nodes/lb-1')).vrrp).toEqual({
      interface: 'eth1',
      address: '198.18.0.1',
      trackPidFile: null,
    });
    expect((await ok('GET', '/v1/nodes/ngx-1')).vrrp).toBeNull();
    for (const [bad, field] of [
      [{ interface: 'eth1;x', address: '198.18.0.9' }, 'body.vrrp.interface'],
      [{ interface: 'eth1', address: '2001:db8::9' }, 'body.vrrp.address'],
      [{ interface: 'eth1', address: '198.18.0.9', trackPidFile: '/run/$(id).pid' }, 'body.vrrp.trackPidFile'],
      [{ interface: 'eth1', address: '198.18.0.9', priority: 255 }, 'body.vrrp.priority'],
    ] as const) {
      const res = await app.admin('POST', '/v1/nodes', haproxy('lb-9', { vrrp: bad }));
      expect(res.status, JSON.stringify(bad)).toBe(400);
      expect(res.body.error.details.map((d: { path: string }) => d.path)).toEqual([field]);
    }
    expect((await app.admin('GET', '/v1/nodes/lb-9')).status).toBe(404);
  });

  it('refuses a unicast address another node already has with 409 naming the field', async () => {
    const res = await app.admin('POST', '/v1/nodes', haproxy('lb-9', { vrrp: vrrp('198.18.0.2') }));
    expect(res.status).toBe(409);
    expect(res.body.error.details).toEqual({ field: 'vrrp.address', node: 'lb-2' });
  });
});

describe('keepalived.conf from placement', () => {
  it('gives each VRRP node serving the VIP one instance for its address: same VRID and secret, the first placed node primary, the other its peer', async () => {
    const [one, two] = [
      instanceFor((await keepalivedOf('lb-1'))!, VIP)!,
      instanceFor((await keepalivedOf('lb-2'))!, VIP)!,
    ];
    expect(one.vrid).toBe(two.vrid);
    expect(one.authPass).toMatch(/^[A-Za-z0-9]{8}$/);
    expect(one.authPass).toBe(two.authPass);
    // Both were placed by the same write: the tie goes by name.
    expect([one.priority, two.priority]).toEqual([250, 200]);
    expect([one.source, one.peers, two.source, two.peers]).toEqual([
      '198.18.0.1',
      ['198.18.0.2'],
      '198.18.0.2',
      ['198.18.0.1'],
    ]);
    // Two VIPs on one address are one VRRP instance.
    expect((await keepalivedOf('lb-1'))!.match(/^vrrp_instance /gm)).toHaveLength(1);
  });

  it('when the primary leaves, the oldest remaining placement is the primary, not the first name', async () => {
    await ok('POST', '/v1/nodes', haproxy('lb-0', { vrrp: vrrp('198.18.0.10') }));
    expect(instanceFor((await keepalivedOf('lb-0'))!, VIP)).toBeUndefined();
    const vrid = instanceFor((await keepalivedOf('lb-2'))!, VIP)!.vrid;
    await ok('DELETE', '/v1/nodes/lb-1');
    const [zero, two] = [
      instanceFor((await keepalivedOf('lb-0'))!, VIP)!,
      instanceFor((await keepalivedOf('lb-2'))!, VIP)!,
    ];
    expect([two.priority, zero.priority]).toEqual([250, 200]);
    // The address keeps its VRID: the instance lb-2 runs is the same one, with a new peer.
    expect([two.vrid, zero.vrid, two.peers]).toEqual([vrid, vrid, ['198.18.0.10']]);
    await ok('POST', '/v1/nodes', haproxy('lb-1', { vrrp: vrrp('198.18.0.1') }));
  });

  it('a node without VRRP settings renders no keepalived file', async () => {
    expect(Object.keys((await configOf('ngx-1')).files)).not.toContain('keepalived.conf');
  });

  it('when a peer drops its VRRP settings, the other is alone on the address; when it opts in again, the VRID and secret are the ones it had', async () => {
    const before = instanceFor((await keepalivedOf('lb-0'))!, VIP)!;
    await ok('PATCH', '/v1/nodes/lb-2', { vrrp: null });
    expect(await keepalivedOf('lb-2')).toBeUndefined();
    const alone = await keepalivedOf('lb-0');
    expect(alone).toContain('the node is its own peer');
    expect(instanceFor(alone!, VIP)!.peers).toEqual(['198.18.0.10']);
    await ok('PATCH', '/v1/nodes/lb-2', { vrrp: vrrp('198.18.0.2') });
    expect(instanceFor((await keepalivedOf('lb-2'))!, VIP)).toEqual({
      ...before,
      priority: 250,
      source: '198.18.0.2',
      peers: ['198.18.0.10'],
    });
  });

  it('an address of a new VIP gets the next VRID; each address one', async () => {
    await ok('POST', '/v1/tenants/a/vips', {
      name: 'api',
      address: '198.18.0.101',
      port: 80,
      protocol: 'http',
      defaultPool: 'web',
    });
    const conf = (await keepalivedOf('lb-2'))!;
    const [a, b] = [instanceFor(conf, VIP)!, instanceFor(conf, '198.18.0.101')!];
    expect(b.vrid).not.toBe(a.vrid);
    expect(b.authPass).not.toBe(a.authPass);
  });

  it('on an NGINX node, a VRRP change alone moves the content hash but not the structural hash: keepalived reloads, nginx does not', async () => {
    const before = await configOf('ngx-1');
    await ok('PATCH', '/v1/nodes/ngx-1', { vrrp: vrrp('198.18.0.3') });
    const after = await configOf('ngx-1');
    expect(after.files['keepalived.conf']).toContain('nginx.pid');
    expect(after.contentHash).not.toBe(before.contentHash);
    expect(after.structuralHash).toBe(before.structuralHash);
  });
});

describe('VRIDs of a node group', () => {
  it('when all 255 are held, a further address is left out of keepalived and the file says why; a deleted VIP frees its VRID for it', async () => {
    const { db } = app.database.handle;
    const held = (await db.selectFrom('vrrp_routers').select('vrid').where('node_group', '=', 'default').execute())
      .length;
    const names: string[] = [];
    for (let i = 1; i <= 255 - held; i++) {
      names.push(`f${i}`);
      await ok('POST', '/v1/tenants/a/vips', {
        name: `f${i}`,
        address: `198.18.1.${i}`,
        port: 80,
        protocol: 'http',
        defaultPool: 'web',
      });
    }
    await ok('POST', '/v1/tenants/a/vips', {
      name: 'late',
      address: '198.18.2.1',
      port: 80,
      protocol: 'http',
      defaultPool: 'web',
    });
    const full = (await keepalivedOf('lb-2'))!;
    expect(full.match(/^vrrp_instance /gm)).toHaveLength(255);
    expect(full).toContain('# not covered by VRRP: 198.18.2.1 (no free virtual_router_id in node group default)');
    expect(instanceFor(full, '198.18.2.1')).toBeUndefined();

    await ok('DELETE', `/v1/tenants/a/vips/${names[0]}`);
    const freed = (await keepalivedOf('lb-2'))!;
    expect(freed).not.toContain('not covered');
    expect(instanceFor(freed, '198.18.2.1')!.vrid).toBeGreaterThan(0);
    for (const name of [...names.slice(1), 'late']) await ok('DELETE', `/v1/tenants/a/vips/${name}`);
  }, 120_000);
});

describe('VRRP secrets', () => {
  it('are stored sealed, in the routers and in the stored config segments', async () => {
    const { db } = app.database.handle;
    const routers = await db.selectFrom('vrrp_routers').selectAll().execute();
    expect(routers.length).toBeGreaterThan(0);
    const passes = new Set<string>();
    for (const node of ['lb-0', 'lb-2'])
      for (const m of (await keepalivedOf(node))!.matchAll(/auth_pass (\S+)/g)) passes.add(m[1]!);
    for (const r of routers) expect(r.auth_sealed.startsWith('v1:')).toBe(true);
    const segments = await db.selectFrom('config_segments').select(['content', 'sealed']).execute();
    for (const pass of passes) {
      expect(routers.some((r) => r.auth_sealed.includes(pass))).toBe(false);
      expect(segments.filter((s) => s.content.includes(pass))).toEqual([]);
    }
    expect(segments.some((s) => s.sealed)).toBe(true);
  });

  it('are shown to no tenant: a tenant token cannot read a node config, and its preview has no keepalived file', async () => {
    const token = await app.token('tenant-admin', { tenant: 'a' });
    expect([403, 404]).toContain((await app.as(token)('GET', '/v1/nodes/lb-1/config')).status);
    const preview = await app.as(token)('GET', '/v1/tenants/a/render?kind=haproxy');
    expect(preview.status).toBe(200);
    expect(Object.keys(preview.body.files)).not.toContain('keepalived.conf');
    expect(JSON.stringify(preview.body)).not.toContain('auth_pass');
  });
});
