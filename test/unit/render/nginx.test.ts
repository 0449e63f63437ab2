import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../../src/domain/errors.js';
import type { NodeSnapshot, RenderedFiles, TenantSnapshot } from '../../../src/domain/snapshot.js';
import { renderNginx, renderNginxTenant } from '../../../src/render/nginx.js';
import { variableName } from '../../../src/render/nginx-names.js';
import { featuresSnapshot } from '../../fixtures/features-snapshot.js';
import { mulberry32, randomSnapshot, shuffleDeep } from '../../fixtures/random-snapshot.js';
import { GOLDEN_CONFIG_DIR, readGolden, writeGolden } from '../../fixtures/golden.js';
import { pool, seedCertificate, seedSnapshot, vip } from '../../fixtures/seed-snapshot.js';
import { assertProperty, choices, scenario } from '../../support/property.js';

const GOLDEN_DIR = GOLDEN_CONFIG_DIR.nginx;

const SCENARIOS: Record<string, (configDir: string) => NodeSnapshot> = {
  seed: (dir) => seedSnapshot('nginx', dir),
  features: (dir) => featuresSnapshot('nginx', dir),
};

const conf = (snapshot: NodeSnapshot): string => renderNginx(snapshot)['nginx.conf']!;

/** One tenant on an otherwise empty node. */
function node(...tenants: TenantSnapshot[]): NodeSnapshot {
  return {
    revision: 7,
    node: {
      name: 'edge-9',
      kind: 'nginx',
      runtimeAddress: null,
      capacity: { vcpu: 2, memoryMb: 2048 },
      configDir: '/srv/lb',
    },
    tenants,
  };
}

function tenant(id: string, parts: Partial<TenantSnapshot>): TenantSnapshot {
  return {
    id,
    vips: [],
    pools: [],
    certificates: [],
    allocation: { maxConnections: 100, requestsPerSecond: 50 },
    ...parts,
  };
}

describe.each(Object.keys(SCENARIOS))('the %s scenario', (name) => {
  const build = SCENARIOS[name]!;

  it('renders its golden files byte for byte', () => {
    const files = renderNginx(build(GOLDEN_DIR));
    if (process.env.UPDATE_GOLDEN) writeGolden('nginx', name, files);
    const golden = readGolden('nginx', name);
    expect(Object.keys(files)).toEqual(Object.keys(golden));
    for (const [file, content] of Object.entries(files)) expect(content, file).toBe(golden[file]);
  });

  it('gives the same bytes for the same state, however its arrays are ordered', () => {
    const expected = renderNginx(build(GOLDEN_DIR));
    expect(renderNginx(build(GOLDEN_DIR))).toEqual(expected);
    for (const seed of [1, 2, 3, 4, 5]) {
      expect(renderNginx(shuffleDeep(build(GOLDEN_DIR), mulberry32(seed)))).toEqual(expected);
    }
  });
});

describe('renderNginx files', () => {
  it('refers to every file it renders, and everything nginx writes, by absolute path under configDir', () => {
    const files = renderNginx(seedSnapshot('nginx', '/srv/lb'));
    expect(Object.keys(files)).toEqual([
      'certs/b/b-example.crt',
      'certs/b/b-example.key',
      'member-tls/b/ca/b-members.pem',
      'nginx.conf',
    ]);
    const config = files['nginx.conf']!;
    expect(config).toContain('ssl_certificate /srv/lb/certs/b/b-example.crt;');
    expect(config).toContain('ssl_certificate_key /srv/lb/certs/b/b-example.key;');
    expect(config).toContain('pid /srv/lb/nginx.pid;');
    expect(config).toContain('error_log /srv/lb/error.log warn;');
    const paths = [...config.matchAll(/ (\/[^\s;]+)/g)].map((m) => m[1]!);
    expect(paths.filter((p) => !p.startsWith('/srv/lb/'))).toEqual(['/usr/lib/nginx/modules/ngx_stream_module.so']);
    expect(files['certs/b/b-example.crt']).toBe(seedCertificate().chainPem);
  });

  it('loads the stream module only when a TCP VIP needs it, and not at all when it is built in', () => {
    const seed = seedSnapshot('nginx', '/srv/lb');
    expect(renderNginx(seed, { streamModule: null })['nginx.conf']).not.toContain('load_module');
    const httpOnly = { ...seed, tenants: seed.tenants.filter((t) => t.id !== 'c') };
    expect(conf(httpOnly)).not.toMatch(/load_module|stream \{/);
  });

  it('when only one tenant changes, then the other tenants are not rendered again', () => {
    const before = seedSnapshot('nginx', GOLDEN_DIR);
    renderNginx(before);
    const [a, b, c] = before.tenants;
    expect(renderNginxTenant(a!, GOLDEN_DIR)).toBe(renderNginxTenant(a!, GOLDEN_DIR));
    const after = { ...before, tenants: [a!, { ...b!, allocation: { ...b!.allocation, maxConnections: 7 } }, c!] };
    expect(conf(after)).toContain('limit_conn sy_vip_conn 7;');
    expect(renderNginx(after)).toEqual(renderNginx(structuredClone(after)));
  });

  it('refuses two VIPs on one address and port, whichever tenants hold them', () => {
    const web = pool({ name: 'web' }, [{ name: 'm1', address: '10.0.0.1', port: 80 }]);
    const one = tenant('one', {
      vips: [vip({ name: 'a', address: '192.0.2.1', port: 80, protocol: 'http', defaultPool: 'web' })],
      pools: [web],
    });
    const two = tenant('two', {
      vips: [vip({ name: 'b', address: '192.0.2.1', port: 80, protocol: 'tcp', defaultPool: 'web' })],
      pools: [web],
    });
    expect(() => renderNginx(node(one, two))).toThrow(ValidationError);
    expect(() => renderNginx(node(one, two))).toThrow(
      /vip two\/b listens on 192\.0\.2\.1:80, already used by vip one\/a/,
    );
  });
});

describe('content routing', () => {
  const pools = ['web', 'api', 'beta'].map((name, i) =>
    pool({ name }, [{ name: 'm1', address: `10.0.${i}.1`, port: 80 }]),
  );
  const routed = (routes: Record<string, unknown>[], defaultPool: string | null = 'web') =>
    node(
      tenant('a', {
        vips: [vip({ name: 'www', address: '192.0.2.1', port: 80, protocol: 'http', defaultPool }, routes)],
        pools,
      }),
    );

  it('when routes overlap, then the one with the lowest priority number wins, whatever the match kind', () => {
    const config = conf(
      routed([
        { name: 'by-path', priority: 20, match: { pathPrefix: '/api' }, pool: 'api' },
        { name: 'by-header', priority: 5, match: { header: { name: 'X-Beta', value: 'on' } }, pool: 'beta' },
        { name: 'both', priority: 10, match: { host: 'a.example', pathPrefix: '/api' }, pool: 'beta' },
      ]),
    );
    const map = config.slice(config.indexOf('map "$sy_a__www__c0'));
    expect(map).toContain('default "t_a_web";');
    const lines = map.split('\n').filter((l) => l.includes('# route'));
    expect(lines.map((l) => l.trim())).toEqual([
      '~^1..$ "t_a_beta"; # route by-header, priority 5',
      '~^.11$ "t_a_beta"; # route both, priority 10',
      '~^..1$ "t_a_api"; # route by-path, priority 20',
    ]);
    expect(config).toContain(
      'map $http_x_beta $sy_a__www__c0 {\n        default 0;\n        ~^on$ 1; # header X-Beta is on',
    );
    expect(config).toContain('map $host $sy_a__www__c1 {\n        default 0;\n        ~^a[.]example$ 1;');
    expect(config).toContain('map $sy_request_path $sy_a__www__c2 {\n        default 0;\n        ~^/api(/|$) 1;');
    expect(config).toContain('proxy_pass http://$sy_a__www__up;');
    expect(config).not.toContain('return 503;');
  });

  it('gives equal priorities a stable order by route name, and shares one condition between routes', () => {
    const config = conf(
      routed([
        { name: 'zz', priority: 1, match: { pathPrefix: '/a.b+c' }, pool: 'api' },
        { name: 'aa', priority: 1, match: { pathPrefix: '/a.b+c', host: '*.example.com' }, pool: 'beta' },
      ]),
    );
    expect(config).toContain('~^/a[.]b[+]c(/|$) 1;');
    expect(config).toContain('~^[^.]+[.]example[.]com$ 1; # host *.example.com');
    expect(config.match(/# route \w+/g)).toEqual(['# route aa', '# route zz']);
    expect(config).toContain('~^11$ "t_a_beta"; # route aa');
    expect(config).toContain('~^.1$ "t_a_api"; # route zz');
  });

  it('when nothing routes a request and there is no default pool, then it is answered 503', () => {
    const config = conf(routed([{ name: 'only', match: { host: 'a.example' }, pool: 'api' }], null));
    expect(config).toContain('default "";');
    expect(config).toContain('if ($sy_a__www__up = "") {\n                return 503;');
    const bare = conf(routed([], null));
    expect(bare).toMatch(/location \/ \{\n\s+return 503;\n\s+\}/);
  });

  it('names the variables of tenants and VIPs so that no two pairs can share one', () => {
    expect(variableName('a-b', 'c', 'up')).toBe('sy_a_b__c__up');
    expect(variableName('a', 'b-c', 'up')).toBe('sy_a__b_c__up');
    expect(variableName('a--b', 'c', 'up')).not.toBe(variableName('a', 'b--c', 'up'));
    expect(variableName('a-', 'b', 'up')).not.toBe(variableName('a', '-b', 'up'));
    expect(variableName('x--y', 'v', 'up')).toMatch(/^sy_[a-z0-9_]+$/);
  });
});

describe('upstreams', () => {
  const members = [
    { name: 'm1', address: '10.0.0.1', port: 80, weight: 200 },
    { name: 'm2', address: '10.0.0.2', port: 80, weight: 100 },
    { name: 'm3', address: '10.0.0.3', port: 80, state: 'drain' },
    { name: 'm4', address: '10.0.0.4', port: 80, state: 'disabled' },
    { name: 'm5', address: '10.0.0.5', port: 80, weight: 0 },
    { name: 'm6', address: 'fd00::6', port: 80, backup: true },
  ];
  const check = { type: 'http', intervalMs: 2500, fall: 4 };
  const { fingerprintSha256: _, ...cert } = seedCertificate('c');
  const withPool = (poolInput: Record<string, unknown>, vipInput: Record<string, unknown> = {}) =>
    conf(
      node(
        tenant('a', {
          vips: [vip({ name: 'www', address: '192.0.2.1', port: 80, protocol: 'http', defaultPool: 'p', ...vipInput })],
          pools: [pool({ name: 'p', ...poolInput }, members)],
          certificates: [cert],
        }),
      ),
    );
  const serverLines = (config: string) =>
    config
      .split('\n')
      .filter((l) => l.trim().startsWith('server ') && !l.includes('{'))
      .map((l) => l.trim());

  it('renders weights, backups and member states, with passive checks from fall and interval', () => {
    const config = withPool({ algorithm: 'leastconn', healthCheck: check });
    expect(config).toContain('upstream t_a_p {\n        least_conn;\n');
    expect(serverLines(config)).toEqual([
      'server 10.0.0.1:80 weight=200 max_fails=4 fail_timeout=10s; # m1',
      'server 10.0.0.2:80 weight=100 max_fails=4 fail_timeout=10s; # m2',
      'server 10.0.0.3:80 weight=100 max_fails=4 fail_timeout=10s down; # m3: draining: nginx has no drain, so no new requests',
      'server 10.0.0.4:80 weight=100 max_fails=4 fail_timeout=10s down; # m4: disabled',
      'server 10.0.0.5:80 weight=1 max_fails=4 fail_timeout=10s down; # m5: weight 0: nginx weights start at 1, so no new requests',
      'server [fd00::6]:80 weight=100 max_fails=4 fail_timeout=10s backup; # m6',
    ]);
    expect(config).toContain('        keepalive 32;\n    }');
  });

  it('when the pool has no check, then failures never mark a member down (HAProxy assumes it up)', () => {
    expect(serverLines(withPool({}))[0]).toBe('server 10.0.0.1:80 weight=200 max_fails=0; # m1');
  });

  it('when persistence is by source, then it hashes the client address, with weights reduced for the ring', () => {
    const config = withPool({ algorithm: 'roundrobin' }, { persistence: 'source' });
    expect(config).toContain('upstream t_a_p_src {\n        hash $remote_addr consistent;\n');
    expect(config).toContain('proxy_pass http://t_a_p_src;');
    expect(serverLines(config)).toEqual([
      'server 10.0.0.1:80 weight=2 max_fails=0; # m1',
      'server 10.0.0.2:80 weight=1 max_fails=0; # m2',
      'server 10.0.0.3:80 weight=1 max_fails=0 down; # m3: draining: nginx has no drain, so no new requests',
      'server 10.0.0.4:80 weight=1 max_fails=0 down; # m4: disabled',
      'server 10.0.0.5:80 weight=1 max_fails=0 down; # m5: weight 0: nginx weights start at 1, so no new requests',
      'server [fd00::6]:80 weight=1 max_fails=0 down; # m6: backup: hash balancing cannot hold backup servers',
    ]);
  });

  it('when persistence is by cookie, then it hashes the cookie and gives a client without one its request id', () => {
    const config = withPool({}, { persistence: 'cookie', cookieName: 'SRVID' });
    expect(config).toContain(
      'map $cookie_srvid $sy_a__ck__srvid__key {\n        default $cookie_srvid;\n        "" $request_id;\n    }',
    );
    expect(config).toContain('"" "SRVID=$request_id; Path=/; HttpOnly";');
    expect(config).toContain('hash $sy_a__ck__srvid__key consistent;');
    expect(config).toContain('add_header Set-Cookie $sy_a__www__setck always;');
    expect(config).toContain('proxy_pass http://t_a_p_ck_srvid;');
  });

  it('reads a cookie whose name nginx variables cannot hold from the Cookie header', () => {
    const config = withPool(
      {},
      { persistence: 'cookie', cookieName: 'lb-Sticky', protocol: 'https', certificate: 'c', port: 443 },
    );
    expect(config).toContain(
      'map $http_cookie $sy_a__ck__lb_sticky__val {\n        default "";\n        "~*(?:^|;)[ ]*lb-sticky=([^;]*)" $1;\n    }',
    );
    expect(config).toContain('"" "lb-Sticky=$request_id; Path=/; HttpOnly; Secure";');
  });

  it('when no primary member can serve, then backups serve as ordinary members', () => {
    const onlyBackups = (algorithm: string) =>
      conf(
        node(
          tenant('a', {
            vips: [vip({ name: 'www', address: '192.0.2.1', port: 80, protocol: 'http', defaultPool: 'p' })],
            pools: [pool({ name: 'p', algorithm }, [{ name: 'b1', address: '10.0.0.9', port: 80, backup: true }])],
          }),
        ),
      );
    expect(onlyBackups('roundrobin')).toContain(
      'server 10.0.0.9:80 weight=100 max_fails=0; # b1: backup serving as an ordinary member: no primary can serve',
    );
    expect(onlyBackups('source')).toContain(
      'server 10.0.0.9:80 weight=1 max_fails=0; # b1: backup serving as an ordinary member: no primary can serve',
    );
  });

  it('when a pool has no members, then its VIPs answer 503 or close, and nginx gets no empty upstream', () => {
    const empty = pool({ name: 'p' }, []);
    const config = conf(
      node(
        tenant('a', {
          vips: [
            vip({ name: 'www', address: '192.0.2.1', port: 80, protocol: 'http', defaultPool: 'p' }),
            vip({ name: 'raw', address: '192.0.2.1', port: 81, protocol: 'tcp', defaultPool: 'p' }),
          ],
          pools: [empty],
        }),
      ),
    );
    expect(config).not.toMatch(/^\s+upstream /m);
    expect(config).toMatch(/location \/ \{\n\s+return 503;/);
    expect(config).toContain('        return "";\n');
  });
});

describe('limits and listeners', () => {
  it('caps each VIP at the tenant allocation and rate-limits the tenant as a whole, answering 429', () => {
    const { fingerprintSha256: _, ...cert } = seedCertificate('c');
    const config = conf(
      node(
        tenant('a', {
          vips: [
            vip({
              name: 'www',
              address: '192.0.2.1',
              port: 443,
              protocol: 'https',
              certificate: 'c',
              hostnames: ['b.example', 'a.example'],
              allowlist: ['10.0.0.0/8', '192.0.2.7'],
            }),
            vip({
              name: 'raw',
              address: '2001:db8::1',
              port: 22,
              protocol: 'tcp',
              allowlist: ['2001:db8::/32'],
              timeouts: { clientMs: 1500, serverMs: 60_000, connectMs: 250 },
            }),
          ],
          certificates: [cert],
          allocation: { maxConnections: 1_000_000, requestsPerSecond: 25 },
        }),
      ),
    );
    expect(config).toContain('limit_req_zone a zone=t_a_req:32k rate=25r/s;');
    expect(config).toContain('limit_req zone=t_a_req burst=25 nodelay;');
    expect(config).toContain('limit_req_status 429;');
    expect(config).toContain('limit_conn sy_vip_conn 65535;');
    expect(config).toContain('limit_conn sy_tcp_conn 65535;');
    expect(config).toContain('limit_conn_zone $server_addr:$server_port zone=sy_vip_conn:64k;');
    expect(config).toContain('limit_conn_zone $server_addr:$server_port zone=sy_tcp_conn:64k;');
    expect(config).toContain('listen 192.0.2.1:443 ssl http2 reuseport;\n        server_name a.example b.example;');
    expect(config).toContain(
      'geo $sy_a__www__allow {\n        default 0;\n        10.0.0.0/8 1;\n        192.0.2.7/32 1;\n    }',
    );
    expect(config).toContain(
      'server_name a.example b.example;\n        ssl_certificate /srv/lb/certs/a/c.crt;\n        ssl_certificate_key /srv/lb/certs/a/c.key;\n        if ($sy_a__www__allow = 0) {\n            return 403;\n        }',
    );
    expect(config).toContain('listen [2001:db8::1]:22 reuseport;\n        allow 2001:db8::/32;\n        deny all;');
    expect(config).toContain('proxy_connect_timeout 250ms;\n        proxy_timeout 60s;');
  });
});

describe('addresses', () => {
  const web = pool({ name: 'web' }, [{ name: 'm1', address: '::ffff:10.0.0.1', port: 80 }]);
  const at = (address: string, allowlist: string[] = []) =>
    conf(
      node(
        tenant('a', {
          vips: [vip({ name: 'www', address, port: 80, protocol: 'http', defaultPool: 'web', allowlist })],
          pools: [web],
        }),
      ),
    );

  it('treats IPv4-mapped IPv6 addresses as the IPv4 ones they carry, as HAProxy does', () => {
    const config = at('::ffff:192.0.2.1', ['::ffff:10.1.0.0/112', '::ffff:10.2.0.1']);
    expect(config).toContain('listen 192.0.2.1:80 reuseport;');
    expect(config).toContain('server 10.0.0.1:80 ');
    expect(config).toContain('        10.1.0.0/16 1;\n        10.2.0.1/32 1;\n');
  });

  it("lets an IPv6 range wider than every mapped address admit IPv4 clients too, without repeating geo's default", () => {
    const config = at('2001:db8::1', ['::/0']);
    expect(config).toContain('        0.0.0.0/1 1;\n        128.0.0.0/1 1;\n        8000::/1 1;\n        ::/1 1;\n');
  });

  it('refuses a VIP on an IPv6 link-local or multicast address, which nothing can listen on', () => {
    expect(() => at('fe80::1')).toThrow(ValidationError);
    expect(() => at('ff02::1')).toThrow(/no proxy can listen on it/);
  });
});

describe('renderNginx: properties over random valid snapshots', () => {
  // The real nginx -t checks thousands of these: test/integration/nginx-property.test.ts.
  it('renders every random valid snapshot it can listen on, and the same bytes however its arrays are ordered', () => {
    const snapshots = scenario((rng) => randomSnapshot(rng.next, 'nginx', '/srv/lb', rng.int(1, 3)));
    assertProperty(
      fc.property(snapshots, choices(), (snapshot, rng) => {
        let files: RenderedFiles;
        try {
          files = renderNginx(snapshot);
        } catch (err) {
          // Nothing can listen on an IPv6 link-local or multicast VIP: the renderer refuses it by name.
          if (err instanceof ValidationError && err.message.includes('no proxy can listen on it')) return;
          throw err;
        }
        expect(renderNginx(shuffleDeep(snapshot, rng.next))).toEqual(files);
      }),
      50,
    );
  });
});
