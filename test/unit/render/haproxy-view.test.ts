import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../../src/domain/errors.js';
import type { NodeSnapshot, TenantSnapshot } from '../../../src/domain/snapshot.js';
import { UnsafeValueError } from '../../../src/render/guard.js';
import { renderHaproxy } from '../../../src/render/haproxy.js';
import { RUNTIME_API_CONNECTIONS, toHaproxyView, type HaproxyTenantView } from '../../../src/render/haproxy-view.js';
import { featuresSnapshot } from '../../fixtures/features-snapshot.js';
import { pool, seedSnapshot, vip } from '../../fixtures/seed-snapshot.js';

const DIR = '/etc/haproxy/switchyard';

function tenantView(snapshot: NodeSnapshot, id: string): HaproxyTenantView {
  return toHaproxyView(snapshot).tenants.find((t) => t.id === id)!;
}

function withTenant(snapshot: NodeSnapshot, id: string, change: (t: TenantSnapshot) => TenantSnapshot): NodeSnapshot {
  return { ...snapshot, tenants: snapshot.tenants.map((t) => (t.id === id ? change(t) : t)) };
}

function thrown(run: () => unknown): unknown {
  try {
    run();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
}

describe('toHaproxyView', () => {
  const shop = tenantView(featuresSnapshot('haproxy', DIR), 'shop');
  const backend = (name: string) => shop.backends.find((b) => b.name === name)!;
  const frontend = (name: string) => shop.frontends.find((f) => f.name === name)!;

  it('when a member is drained, then it keeps persisted clients but takes no new sessions (weight 0)', () => {
    const w2 = backend('be_shop_web').servers.find((s) => s.name === 'w2')!;
    expect(w2.options).toMatch(/^weight 0 /);
    expect(w2.options).not.toContain('disabled');
  });

  it('when a member is disabled or a backup, then its server line says so', () => {
    const servers = backend('be_shop_web').servers;
    expect(servers.find((s) => s.name === 'w3')!.options).toMatch(/ disabled$/);
    expect(servers.find((s) => s.name === 'w4')!.options).toMatch(/ backup$/);
  });

  it('tries routes by priority, then name, and a wildcard host needs a non-empty first label', () => {
    const www = frontend('fe_shop_www');
    expect(www.routes.map((r) => r.name)).toEqual(['canary', 'api-host', 'api-path', 'cdn', 'combo']);
    expect(www.routes.find((r) => r.name === 'cdn')!.condition).toBe('r_cdn_host r_cdn_label');
    expect(www.acls.find((a) => a.name === 'r_cdn_host')!.criterion).toBe(
      'req.hdr(host),lower,field(1,:),field(2,.,0) -m str -- cdn.shop.example cdn.shop.example.',
    );
  });

  it('matches a path prefix by whole segments: the prefix itself or below it, never a longer name', () => {
    const www = frontend('fe_shop_www');
    expect(www.acls.filter((a) => a.name === 'r_api-path_path').map((a) => a.criterion)).toEqual([
      'path -m str -- /api',
      'path -m beg -- /api/',
    ]);
    expect(www.routes.find((r) => r.name === 'api-path')!.condition).toBe('r_api-path_path');
    expect(www.routes.find((r) => r.name === 'combo')!.condition).toBe('r_combo_host r_combo_path r_combo_header');
  });

  it('when a VIP has hostnames, then it answers its names and its routes’ hosts (with a trailing dot too), and refuses any other Host with 421', () => {
    expect(frontend('fe_shop_www').knownHosts).toEqual({
      status: 421,
      criteria: [
        'req.hdr(host),lower,field(1,:) -m str -- api.shop.example api.shop.example. shop.example shop.example.',
        'req.hdr(host),lower,field(1,:) -m reg -- ^[^.]+[.]cdn[.]shop[.]example[.]?$',
      ],
    });
    // No hostnames: any Host; a TCP VIP has no Host.
    expect(frontend('fe_shop_edge').knownHosts).toBeNull();
    expect(frontend('fe_shop_raw').knownHosts).toBeNull();
    expect(frontend('fe_shop_edge').pathGuard).toEqual({ status: 400, patternFile: `${DIR}/maps/ambiguous-path.pat` });
    expect(frontend('fe_shop_raw').pathGuard).toBeNull();
  });

  it('when persistence is by cookie, then each member’s cookie value is opaque, distinct and the same on every render', () => {
    const servers = backend('be_shop_web').servers;
    const values = servers.map((s) => /(?:^| )cookie (\S+)/.exec(s.options)![1]!);
    expect(values.every((v) => /^[0-9a-f]{16}$/.test(v))).toBe(true);
    expect(new Set(values).size).toBe(servers.length);
    const again = tenantView(featuresSnapshot('haproxy', '/elsewhere'), 'shop').backends.find(
      (b) => b.name === 'be_shop_web',
    )!;
    expect(again.servers.map((s) => /(?:^| )cookie (\S+)/.exec(s.options)![1]!)).toEqual(values);
  });

  it('when a VIP has no default pool, then unmatched requests get a 503 and unmatched connections are closed', () => {
    expect(frontend('fe_shop_edge').defaultBackend).toBe('sy_unrouted_http');
    expect(frontend('fe_shop_void').defaultBackend).toBe('sy_unrouted_tcp');
  });

  it('when an HTTP and a TCP VIP share a pool, then each reaches it through a backend of its own mode', () => {
    expect(backend('be_shop_legacy').mode).toBe('http');
    expect(backend('be_shop_legacy_tcp').mode).toBe('tcp');
    expect(frontend('fe_shop_raw').defaultBackend).toBe('be_shop_legacy_tcp');
  });

  it('balances source with consistent hashing, so servers can still be added at runtime', () => {
    expect(backend('be_shop_legacy_tcp')).toMatchObject({ balance: 'source', hashType: 'consistent' });
    expect(backend('be_shop_api').hashType).toBeNull();
  });

  it('sorts and de-duplicates the allowlist, a few ranges per line', () => {
    const lines = frontend('fe_shop_www').allowlist;
    expect(lines.map((l) => l.length)).toEqual([8, 2]);
    expect(lines.flat()).toEqual([...new Set(lines.flat())].sort());
  });

  it('sizes global maxconn from node memory and lifts strict limits only past what a stock host allows', () => {
    expect(toHaproxyView(featuresSnapshot('haproxy', DIR)).global).toMatchObject({
      maxconn: 5000,
      noStrictLimits: false,
      statsSocket: null,
    });
    const seed = seedSnapshot('haproxy', DIR);
    // 160,000 for tenants, and the mTLS listeners' reserve above it, which tenants' caps never reach.
    expect(toHaproxyView(seed).global).toMatchObject({
      maxconn: 160_000 + RUNTIME_API_CONNECTIONS,
      noStrictLimits: true,
      statsSocket: '/run/switchyard/admin.sock',
    });
    expect(toHaproxyView(seed).runtimeListeners.map((l) => l.maxconn)).toEqual([
      RUNTIME_API_CONNECTIONS,
      RUNTIME_API_CONNECTIONS,
    ]);
    expect(toHaproxyView({ ...seed, node: { ...seed.node, runtimeTls: null } }).global.maxconn).toBe(160_000);
  });

  it('when an allocation is zero, then the listener still answers (one connection, one request per second)', () => {
    const view = tenantView(
      withTenant(seedSnapshot('haproxy', DIR), 'a', (t) => ({
        ...t,
        allocation: { maxConnections: 0, requestsPerSecond: 0 },
      })),
      'a',
    );
    expect(view.frontends[0]!.maxconn).toBe(1);
    expect(view.caps).toEqual([
      { key: 'a', value: 1 },
      { key: 'a.conn', value: 1 },
    ]);
  });

  it('puts the moving caps in the map and the connection limit, a ceiling, on each frontend', () => {
    const view = tenantView(
      withTenant(seedSnapshot('haproxy', DIR), 'a', (t) => ({
        ...t,
        allocation: { maxConnections: 40, requestsPerSecond: 90, connectionLimit: 500 },
      })),
      'a',
    );
    expect(view.caps).toEqual([
      { key: 'a', value: 90 },
      { key: 'a.conn', value: 40 },
    ]);
    expect(view.frontends.map((f) => f.maxconn)).toEqual(view.frontends.map(() => 500));
    expect(view.capTable).toEqual({ name: 'st_a', period: '1s', expire: '30s' });
  });

  it('keeps the certificates no VIP uses off the node', () => {
    expect(shop.certificates.map((c) => c.file)).toEqual(['certs/shop/shop-cert.pem']);
  });
});

describe('the guard behind the view', () => {
  const seed = seedSnapshot('haproxy', DIR);
  const member = (field: string, value: unknown) =>
    withTenant(seed, 'a', (t) => ({
      ...t,
      pools: t.pools.map((p) => ({ ...p, members: p.members.map((m, i) => (i === 0 ? { ...m, [field]: value } : m)) })),
    }));

  it.each([
    ['address', 'not-an-ip', 'ip'],
    ['name', 'Web-1', 'slug'],
    ['weight', 257, 'an integer in 0..256'],
    ['port', 0, 'an integer in 1..65535'],
  ])('refuses a member %s of %j with the %s rule', (field, value, rule) => {
    const error = thrown(() => renderHaproxy(member(field, value)));
    expect(error).toBeInstanceOf(UnsafeValueError);
    expect((error as UnsafeValueError).rule).toBe(rule);
  });

  it('refuses a configDir that climbs out of itself', () => {
    expect(() => renderHaproxy(seedSnapshot('haproxy', '/etc/haproxy/../../tmp'))).toThrow(UnsafeValueError);
    expect(() => renderHaproxy(seedSnapshot('haproxy', 'relative/dir'))).toThrow(UnsafeValueError);
  });
});

describe('a snapshot that cannot be rendered', () => {
  const seed = seedSnapshot('haproxy', DIR);

  it.each([
    [
      'a VIP names a pool the tenant lacks',
      (t: TenantSnapshot) => ({ ...t, vips: t.vips.map((v) => ({ ...v, defaultPool: 'nope' })) }),
    ],
    [
      'a route names a pool the tenant lacks',
      (t: TenantSnapshot) => ({
        ...t,
        vips: [
          vip({ name: 'web', address: '192.168.1.100', port: 80, protocol: 'http' }, [
            { name: 'r', match: { pathPrefix: '/' }, pool: 'nope' },
          ]),
        ],
      }),
    ],
    [
      'an https VIP names a certificate the tenant lacks',
      (t: TenantSnapshot) => ({
        ...t,
        vips: [vip({ name: 'tls', address: '192.168.1.100', port: 443, protocol: 'https', certificate: 'nope' })],
      }),
    ],
    [
      'a tcp VIP has routes',
      (t: TenantSnapshot) => ({
        ...t,
        vips: [
          {
            ...vip({ name: 'raw', address: '192.168.1.100', port: 1, protocol: 'tcp' }),
            routes: vip({ name: 'x', address: '192.168.1.100', port: 1, protocol: 'http' }, [
              { name: 'r', match: { pathPrefix: '/' }, pool: 'web' },
            ]).routes,
          },
        ],
      }),
    ],
    ['two pools share a name', (t: TenantSnapshot) => ({ ...t, pools: [...t.pools, pool({ name: 'web' }, [])] })],
  ])('when %s, then it is a ValidationError naming the tenant', (_, change) => {
    const error = thrown(() => renderHaproxy(withTenant(seed, 'a', change)));
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).message).toContain('tenant a');
  });

  it('when two tenants listen on one address and port, then neither is rendered (SO_REUSEPORT would mix their traffic)', () => {
    const clash = withTenant(seed, 'c', (t) => ({
      ...t,
      vips: t.vips.map((v) => ({ ...v, address: '192.168.1.100', port: 80 })),
    }));
    expect(() => renderHaproxy(clash)).toThrow(/fe_c_ssh listens on 192.168.1.100:80, already used by fe_a_web/);
  });

  it('when two tenants share an id, then it is refused', () => {
    expect(() => renderHaproxy({ ...seed, tenants: [...seed.tenants, structuredClone(seed.tenants[0]!)] })).toThrow(
      /tenant a appears twice/,
    );
  });

  it('when a VIP listens on the Runtime API address, then it is refused', () => {
    const clash = withTenant(seed, 'c', (t) => ({
      ...t,
      vips: t.vips.map((v) => ({ ...v, address: '10.0.0.1', port: 9999 })),
    }));
    expect(() => renderHaproxy(clash)).toThrow(/already used by the Runtime API/);
  });
});
