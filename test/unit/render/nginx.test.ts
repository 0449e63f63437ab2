import { readFileSync, readdirSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../../src/domain/errors.js';
import { entryHash, type NginxCaps, type NginxUpstream } from '../../../src/domain/nginx-runtime.js';
import type { NodeSnapshot, RenderedFiles, TenantSnapshot } from '../../../src/domain/snapshot.js';
import { memberCookieValue } from '../../../src/render/haproxy-names.js';
import { renderNginx, renderNginxSegments, renderNginxTenant } from '../../../src/render/nginx.js';
import { variableName } from '../../../src/render/nginx-names.js';
import { NGINX_MAX_PEERS } from '../../../src/render/nginx-runtime-view.js';
import { featuresSnapshot } from '../../fixtures/features-snapshot.js';
import { mulberry32, randomSnapshot, shuffleDeep } from '../../fixtures/random-snapshot.js';
import { GOLDEN_CONFIG_DIR, readGolden, writeGolden } from '../../fixtures/golden.js';
import { pool, seedCertificate, seedRuntimeTls, seedSnapshot, vip } from '../../fixtures/seed-snapshot.js';
import { assertProperty, choices, scenario } from '../../support/property.js';

const GOLDEN_DIR = GOLDEN_CONFIG_DIR.nginx;

const SCENARIOS: Record<string, (configDir: string) => NodeSnapshot> = {
  seed: (dir) => seedSnapshot('nginx', dir),
  features: (dir) => featuresSnapshot('nginx', dir),
};

const conf = (snapshot: NodeSnapshot): string => renderNginx(snapshot)['nginx.conf']!;

const STATE_FILE = 'runtime-state.jsonl';

interface RuntimeFile {
  readonly header: unknown;
  readonly upstreams: Readonly<Record<string, NginxUpstream>>;
  readonly caps: Readonly<Record<string, NginxCaps>>;
}

/**
 * runtime-state.jsonl as the Lua module reads it (a header, then one entry a line); every entry's
 * hash must be its value's, since the control plane compares what the node holds by hash alone.
 */
function runtimeState(files: RenderedFiles): RuntimeFile {
  const text = files[STATE_FILE]!;
  expect(text.endsWith('\n')).toBe(true);
  const [header, ...entries] = text
    .slice(0, -1)
    .split('\n')
    .map((line) => JSON.parse(line) as { upstream?: string; caps?: string; hash: string; value: never });
  const upstreams: Record<string, NginxUpstream> = {};
  const caps: Record<string, NginxCaps> = {};
  for (const entry of entries) {
    expect(entry.hash, JSON.stringify(entry)).toBe(entryHash(entry.value));
    if (entry.upstream !== undefined) upstreams[entry.upstream] = entry.value;
    else caps[entry.caps!] = entry.value;
  }
  return { header, upstreams, caps };
}

/** The one upstream block of that name in nginx.conf, from `upstream` to its closing brace. */
function upstreamBlock(config: string, name: string): string {
  const blocks = config.match(new RegExp(`^ {4}upstream ${name} \\{\\n[\\s\\S]*?\\n {4}\\}$`, 'gm')) ?? [];
  expect(blocks, `upstream ${name}`).toHaveLength(1);
  return blocks[0]!;
}

/** What every HTTP upstream block is: no member, the Lua balancer, and idle connections kept unless the SNI varies. */
const luaUpstream = (name: string, keepalive = true): string =>
  [
    `    upstream ${name} {`,
    "        server 0.0.0.1; # never used: switchyard.balancer sets each request's member",
    '        balancer_by_lua_block { require("switchyard.balancer").balance() }',
    ...(keepalive ? ['        keepalive 32;'] : []),
    '    }',
  ].join('\n');

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
  const LUA_SOURCE = new URL('../../../templates/nginx/lua/switchyard/', import.meta.url);
  const luaSources = readdirSync(LUA_SOURCE).filter((f) => f.endsWith('.lua'));

  it('refers to every file it renders, and everything nginx writes, by absolute path under configDir', () => {
    const files = renderNginx(seedSnapshot('nginx', '/srv/lb'));
    expect(Object.keys(files)).toEqual(
      [
        'certs/b/b-example.crt',
        'certs/b/b-example.key',
        ...luaSources.map((f) => `lua/switchyard/${f}`),
        'member-tls/b/ca/b-members.pem',
        'nginx.conf',
        STATE_FILE,
      ].sort(),
    );
    const config = files['nginx.conf']!;
    expect(config).toContain('ssl_certificate /srv/lb/certs/b/b-example.crt;');
    expect(config).toContain('ssl_certificate_key /srv/lb/certs/b/b-example.key;');
    expect(config).toContain('pid /srv/lb/nginx.pid;');
    expect(config).toContain('error_log /srv/lb/error.log warn;');
    expect(config).toContain('lua_package_path "/srv/lb/lua/?.lua;;";');
    expect(config).toContain(`stateFile = "/srv/lb/${STATE_FILE}"`);
    // Quoted paths too: validate-nginx retargets both kinds.
    const paths = [...config.matchAll(/[ "](\/[^\s;"]+)/g)].map((m) => m[1]!);
    expect(paths.filter((p) => !p.startsWith('/srv/lb/'))).toEqual([
      '/usr/lib/nginx/modules/ndk_http_module.so',
      '/usr/lib/nginx/modules/ngx_http_lua_module.so',
      '/usr/lib/nginx/modules/ngx_stream_module.so',
    ]);
    const rendered = paths.filter((p) => p.startsWith('/srv/lb/')).map((p) => p.slice('/srv/lb/'.length));
    for (const file of rendered.filter((p) => /\.(crt|key|pem|jsonl)$/.test(p))) expect(files).toHaveProperty([file]);
    expect(files['certs/b/b-example.crt']).toBe(seedCertificate().chainPem);
  });

  it('renders every Lua module the config requires, byte for byte as in templates/nginx/lua/', () => {
    const files = renderNginx(seedSnapshot('nginx', '/srv/lb'));
    const required = [...files['nginx.conf']!.matchAll(/require\("switchyard\.(\w+)"\)/g)].map((m) => m[1]!);
    expect(new Set(required)).toEqual(new Set(['init', 'caps', 'balancer', 'stats']));
    for (const module of required) expect(files).toHaveProperty([`lua/switchyard/${module}.lua`]);
    for (const file of luaSources)
      expect(files[`lua/switchyard/${file}`], file).toBe(readFileSync(new URL(file, LUA_SOURCE), 'utf8'));
  });

  it('loads the Lua modules always and the stream module only when a TCP VIP needs it, none when built in', () => {
    const seed = seedSnapshot('nginx', '/srv/lb');
    const loads = (config: string) => config.match(/^load_module .*$/gm) ?? [];
    expect(loads(renderNginx(seed, { streamModule: null })['nginx.conf']!)).toEqual([
      'load_module /usr/lib/nginx/modules/ndk_http_module.so;',
      'load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;',
    ]);
    expect(renderNginx(seed, { streamModule: null, luaModules: null })['nginx.conf']).not.toContain('load_module');
    const httpOnly = { ...seed, tenants: seed.tenants.filter((t) => t.id !== 'c') };
    expect(conf(httpOnly)).not.toMatch(/ngx_stream_module|^stream \{/m);
    expect(conf(httpOnly)).toContain('load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;');
  });

  it('when only one tenant changes, then the other tenants are not rendered again', () => {
    const before = seedSnapshot('nginx', GOLDEN_DIR);
    renderNginx(before);
    const [a, b, c] = before.tenants;
    expect(renderNginxTenant(a!, GOLDEN_DIR)).toBe(renderNginxTenant(a!, GOLDEN_DIR));
    const after = { ...before, tenants: [a!, { ...b!, allocation: { ...b!.allocation, maxConnections: 7 } }, c!] };
    expect(renderNginxTenant(after.tenants[0]!, GOLDEN_DIR)).toBe(renderNginxTenant(a!, GOLDEN_DIR));
    expect(runtimeState(renderNginx(after)).caps.b).toEqual({ maxConnections: 7, requestsPerSecond: 40_000 });
    expect(renderNginx(after)).toEqual(renderNginx(structuredClone(after)));
  });

  it("when an HTTP tenant's caps or members change, then nginx.conf stays byte for byte and only its runtime entries change", () => {
    const before = seedSnapshot('nginx', '/srv/lb');
    const [a, b, c] = before.tenants;
    const changed: TenantSnapshot = {
      ...a!,
      allocation: { ...a!.allocation, maxConnections: 3, requestsPerSecond: 2 },
      pools: a!.pools.map((p) => ({
        ...p,
        algorithm: 'leastconn',
        healthCheck: null,
        members: [
          ...p.members.map((m, i) => (i === 0 ? { ...m, weight: 7, state: 'drain' as const } : m)),
          { ...p.members[0]!, name: 'web-9', address: '10.0.1.99', backup: true },
        ],
      })),
    };
    const files = renderNginx(before);
    const next = renderNginx({ ...before, tenants: [changed, b!, c!] });
    expect(next['nginx.conf']).toBe(files['nginx.conf']);
    const [was, now] = [runtimeState(files), runtimeState(next)];
    expect(now.caps).toEqual({ ...was.caps, a: { maxConnections: 3, requestsPerSecond: 2 } });
    expect(now.upstreams.t_b_api).toEqual(was.upstreams.t_b_api);
    const web = now.upstreams.t_a_web_ck_srvid!;
    expect(web.algorithm).toBe('leastconn');
    expect(web.healthCheck).toBeNull();
    expect(web.peers.map((p) => [p.name, p.weight, p.admin, p.backup])).toEqual([
      ['web-1', 7, 'drain', false],
      ['web-2', 100, 'ready', false],
      ['web-3', 100, 'ready', false],
      ['web-9', 100, 'ready', true],
    ]);
  });

  it("puts each tenant's runtime entries in a piece of their own, the same string when another tenant changes", () => {
    const before = seedSnapshot('nginx', '/srv/lb');
    const pieces = renderNginxSegments(before)[STATE_FILE]!;
    expect(pieces[0]).toBe('{"complete":true,"revision":0}\n');
    expect(pieces.slice(1).map((piece) => JSON.parse(piece.split('\n').at(-2)!).caps)).toEqual(['a', 'b', 'c']);
    const [a, b, c] = before.tenants;
    const bigger: TenantSnapshot = {
      ...b!,
      pools: b!.pools.map((p) => ({ ...p, members: p.members.map((m) => ({ ...m, weight: 1 })) })),
    };
    const next = renderNginxSegments({ ...before, tenants: [c!, bigger, a!] })[STATE_FILE]!;
    expect(next[1]).toBe(pieces[1]);
    expect(next[3]).toBe(pieces[3]);
    expect(next[2]).not.toBe(pieces[2]);
    expect(next[2]).toContain('"upstream":"t_b_api"');
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
    renderNginx(
      node(
        tenant('a', {
          vips: [vip({ name: 'www', address: '192.0.2.1', port: 80, protocol: 'http', defaultPool: 'p', ...vipInput })],
          pools: [pool({ name: 'p', ...poolInput }, members)],
          certificates: [cert],
        }),
      ),
    );
  /** Each peer as the balancer reads it: [name, endpoint, weight, admin, backup]. */
  const peers = (u: NginxUpstream | undefined) =>
    u!.peers.map((p) => [p.name, `${p.address}:${p.port}`, p.weight, p.admin, p.backup]);
  const AS_GIVEN = [
    ['m1', '10.0.0.1:80', 200, 'ready', false],
    ['m2', '10.0.0.2:80', 100, 'ready', false],
    ['m3', '10.0.0.3:80', 100, 'drain', false],
    ['m4', '10.0.0.4:80', 100, 'maint', false],
    ['m5', '10.0.0.5:80', 0, 'ready', false],
    ['m6', 'fd00::6:80', 100, 'ready', true],
  ];

  it('gives the balancer every member as configured: weight, drain and maintenance, backup, and the active check', () => {
    const files = withPool({ algorithm: 'leastconn', healthCheck: check });
    const u = runtimeState(files).upstreams.t_a_p;
    expect(u).toMatchObject({ tenant: 'a', pool: 'p', algorithm: 'leastconn', cookie: null });
    // Weight 0, drain and backup are the balancer's to honour, as HAProxy does: none is turned into "down".
    expect(peers(u)).toEqual(AS_GIVEN);
    expect(u!.peers.every((p) => p.cookie === null)).toBe(true);
    expect(u!.healthCheck).toEqual({
      type: 'http',
      path: '/',
      host: null,
      expectedStatus: [[200, 200]],
      port: null,
      intervalMs: 2500,
      timeoutMs: 1000,
      rise: 2,
      fall: 4,
    });
    const config = files['nginx.conf']!;
    expect(upstreamBlock(config, 't_a_p')).toBe(luaUpstream('t_a_p'));
    expect(config).toContain('            set $sy_upstream t_a_p;\n            proxy_pass http://t_a_p;');
    // Nothing of the members reaches nginx.conf: changing them needs no reload.
    expect(config.replace(/#.*$/gm, '')).not.toMatch(/10\.0\.0\.|fd00::6|least_conn|max_fails/);
  });

  it('when the pool has no check, then its entry has none and no member is ever taken out by one', () => {
    expect(runtimeState(withPool({})).upstreams.t_a_p!.healthCheck).toBeNull();
  });

  it('reads expected statuses into ranges and keeps the check’s host and port', () => {
    const u = runtimeState(
      withPool({
        healthCheck: { type: 'http', path: '/ready', host: 'p.internal', port: 8443, expectedStatus: '200-299,404' },
      }),
    ).upstreams.t_a_p!;
    expect(u.healthCheck).toMatchObject({
      type: 'http',
      path: '/ready',
      host: 'p.internal',
      port: 8443,
      expectedStatus: [
        [200, 299],
        [404, 404],
      ],
    });
  });

  it.each(['roundrobin', 'leastconn', 'source'] as const)(
    'with the %s algorithm and no persistence, the entry balances by it',
    (algorithm) => {
      const files = withPool({ algorithm });
      expect(Object.keys(runtimeState(files).upstreams)).toEqual(['t_a_p']);
      expect(runtimeState(files).upstreams.t_a_p!.algorithm).toBe(algorithm);
      expect(files['nginx.conf']).not.toMatch(/hash \$|least_conn/);
    },
  );

  it('when persistence is by source, then its variant balances by the client address, over the weights as given', () => {
    const files = withPool({ algorithm: 'roundrobin' }, { persistence: 'source' });
    const state = runtimeState(files);
    expect(Object.keys(state.upstreams)).toEqual(['t_a_p_src']);
    const u = state.upstreams.t_a_p_src!;
    expect(u).toMatchObject({ pool: 'p', algorithm: 'source', cookie: null });
    // No reduction for a hash ring, and the backup stays a backup.
    expect(peers(u)).toEqual(AS_GIVEN);
    const config = files['nginx.conf']!;
    expect(upstreamBlock(config, 't_a_p_src')).toBe(luaUpstream('t_a_p_src'));
    expect(config).toContain('            set $sy_upstream t_a_p_src;\n            proxy_pass http://t_a_p_src;');
  });

  it.each(['roundrobin', 'leastconn', 'source'] as const)(
    'when persistence is by cookie, then each member carries HAProxy’s cookie value and new clients are balanced by %s',
    (algorithm) => {
      const files = withPool({ algorithm }, { persistence: 'cookie', cookieName: 'SRVID' });
      const state = runtimeState(files);
      expect(Object.keys(state.upstreams)).toEqual(['t_a_p_ck_srvid']);
      const u = state.upstreams.t_a_p_ck_srvid!;
      expect(u).toMatchObject({ pool: 'p', algorithm, cookie: 'SRVID' });
      expect(peers(u)).toEqual(AS_GIVEN);
      expect(u.peers.map((p) => p.cookie)).toEqual(members.map((m) => memberCookieValue('a', 'p', m.name)));
      expect(new Set(u.peers.map((p) => p.cookie)).size).toBe(members.length);
      const config = files['nginx.conf']!;
      // The balancer reads the cookie and header_filter sets it: no maps, no add_header.
      expect(config).not.toMatch(/\$cookie_|Set-Cookie|hash \$/);
      expect(config).toContain('    header_filter_by_lua_block { require("switchyard.balancer").header_filter() }\n');
      // leastconn's count is given back as the answer ends, before the client can send its next request.
      expect(config).toContain('    body_filter_by_lua_block { require("switchyard.balancer").body_filter() }\n');
      expect(config).toContain(
        '            set $sy_upstream t_a_p_ck_srvid;\n            proxy_pass http://t_a_p_ck_srvid;',
      );
    },
  );

  it('gives a cookie name nginx variables cannot hold to the balancer as written, for HTTPS too', () => {
    const files = withPool(
      {},
      { persistence: 'cookie', cookieName: 'lb-Sticky', protocol: 'https', certificate: 'c', port: 443 },
    );
    const state = runtimeState(files);
    expect(Object.keys(state.upstreams)).toEqual(['t_a_p_ck_lb-sticky']);
    expect(state.upstreams['t_a_p_ck_lb-sticky']!.cookie).toBe('lb-Sticky');
    expect(files['nginx.conf']).toContain('proxy_pass http://t_a_p_ck_lb-sticky;');
  });

  it('names every runtime entry within what the Lua module takes, even with the longest tenant, pool and cookie', () => {
    const lua = readFileSync(
      new URL('../../../templates/nginx/lua/switchyard/state_check.lua', import.meta.url),
      'utf8',
    );
    const maxName = Number(/^local MAX_NAME = (\d+)$/m.exec(lua)?.[1]);
    const [id, poolName, cookieName] = ['t'.repeat(63), 'p'.repeat(63), `C${'k'.repeat(31)}`];
    const files = renderNginx(
      node(
        tenant(id, {
          vips: [
            vip({
              name: 'www',
              address: '192.0.2.1',
              port: 80,
              protocol: 'http',
              defaultPool: poolName,
              persistence: 'cookie',
              cookieName,
            }),
          ],
          pools: [pool({ name: poolName }, members)],
        }),
      ),
    );
    const [name] = Object.keys(runtimeState(files).upstreams);
    expect(name).toBe(`t_${id}_${poolName}_ck_${cookieName.toLowerCase()}`);
    expect(name!.length).toBe(165);
    expect(name!.length).toBeLessThanOrEqual(maxName);
  });

  it('passes backups as backups even when every member is one: the balancer falls back to them', () => {
    const onlyBackups = (algorithm: string) =>
      runtimeState(
        renderNginx(
          node(
            tenant('a', {
              vips: [vip({ name: 'www', address: '192.0.2.1', port: 80, protocol: 'http', defaultPool: 'p' })],
              pools: [pool({ name: 'p', algorithm }, [{ name: 'b1', address: '10.0.0.9', port: 80, backup: true }])],
            }),
          ),
        ),
      ).upstreams.t_a_p;
    expect(peers(onlyBackups('roundrobin'))).toEqual([['b1', '10.0.0.9:80', 100, 'ready', true]]);
    expect(peers(onlyBackups('source'))).toEqual([['b1', '10.0.0.9:80', 100, 'ready', true]]);
  });

  it('keeps no idle connections for a pool whose SNI follows the Host, as nginx would reuse them across hosts', () => {
    const files = withPool({ tls: { verify: 'none', sni: { from: 'host' } } });
    expect(upstreamBlock(files['nginx.conf']!, 't_a_p')).toBe(luaUpstream('t_a_p', false));
    expect(upstreamBlock(withPool({})['nginx.conf']!, 't_a_p')).toBe(luaUpstream('t_a_p'));
  });

  it('keeps TCP pools in nginx.conf, balanced by the stream module: weights, down, backup and passive checks', () => {
    const files = withPool({ algorithm: 'leastconn', healthCheck: check }, { protocol: 'tcp' });
    const config = files['nginx.conf']!;
    const stream = config.slice(config.indexOf('\nstream {'));
    expect(upstreamBlock(stream, 't_a_p')).toBe(
      [
        '    upstream t_a_p {',
        '        least_conn;',
        '        server 10.0.0.1:80 weight=200 max_fails=4 fail_timeout=10s; # m1',
        '        server 10.0.0.2:80 weight=100 max_fails=4 fail_timeout=10s; # m2',
        '        server 10.0.0.3:80 weight=100 max_fails=4 fail_timeout=10s down; # m3: draining: nginx has no drain, so no new requests',
        '        server 10.0.0.4:80 weight=100 max_fails=4 fail_timeout=10s down; # m4: disabled',
        '        server 10.0.0.5:80 weight=1 max_fails=4 fail_timeout=10s down; # m5: weight 0: nginx weights start at 1, so no new requests',
        '        server [fd00::6]:80 weight=100 max_fails=4 fail_timeout=10s backup; # m6',
        '    }',
      ].join('\n'),
    );
    expect(config).not.toContain('balancer_by_lua');
    // A pool only a TCP VIP uses is no runtime entry: the stream module has no Lua.
    expect(runtimeState(files).upstreams).toEqual({});
    const source = withPool({}, { protocol: 'tcp', persistence: 'source' })['nginx.conf']!;
    expect(source).toContain('    upstream t_a_p_src {\n        hash $remote_addr consistent;\n');
    expect(source).toContain(
      'server [fd00::6]:80 weight=1 max_fails=0 down; # m6: backup: hash balancing cannot hold backup servers',
    );
  });

  it('when an HTTP pool has no members yet, then its upstream is there with no peer, so the first member needs no reload', () => {
    const withMembers = (list: Record<string, unknown>[]) =>
      renderNginx(
        node(
          tenant('a', {
            vips: [vip({ name: 'www', address: '192.0.2.1', port: 80, protocol: 'http', defaultPool: 'p' })],
            pools: [pool({ name: 'p' }, list), pool({ name: 'spare' }, [])],
          }),
        ),
      );
    const empty = withMembers([]);
    // The balancer answers 503 while the entry has no peer; nginx.conf is the same as with members.
    expect(runtimeState(empty).upstreams.t_a_p!.peers).toEqual([]);
    expect(runtimeState(empty).upstreams.t_a_spare!.peers).toEqual([]);
    expect(upstreamBlock(empty['nginx.conf']!, 't_a_p')).toBe(luaUpstream('t_a_p'));
    const one = withMembers([{ name: 'm1', address: '10.0.0.1', port: 80 }]);
    expect(one['nginx.conf']).toBe(empty['nginx.conf']);
    expect(runtimeState(one).upstreams.t_a_p!.peers.map((p) => p.name)).toEqual(['m1']);
  });

  it('when a TCP pool has no members, then its VIP closes connections, and nginx gets no empty upstream', () => {
    const files = renderNginx(
      node(
        tenant('a', {
          vips: [vip({ name: 'raw', address: '192.0.2.1', port: 81, protocol: 'tcp', defaultPool: 'p' })],
          pools: [pool({ name: 'p' }, [])],
        }),
      ),
    );
    const config = files['nginx.conf']!;
    expect(config).not.toMatch(/^\s+upstream /m);
    expect(config).toContain('        return "";\n');
    expect(runtimeState(files).upstreams).toEqual({});
  });
});

describe('limits and listeners', () => {
  it('caps the tenant as a whole through the Lua module (HTTP) and each TCP VIP in nginx.conf', () => {
    const { fingerprintSha256: _, ...cert } = seedCertificate('c');
    const files = renderNginx(
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
    // HTTP: the caps are a runtime entry, as allocated (no limit_conn ceiling), read by caps.access() per request.
    expect(runtimeState(files).caps).toEqual({ a: { maxConnections: 1_000_000, requestsPerSecond: 25 } });
    const config = files['nginx.conf']!;
    const http = config.slice(0, config.indexOf('\nstream {'));
    const stream = config.slice(config.indexOf('\nstream {'));
    expect(http).not.toMatch(/limit_req|limit_conn/);
    expect(http).toContain('    access_by_lua_block { require("switchyard.caps").access() }\n');
    expect(http).toContain(
      'listen 192.0.2.1:443 ssl http2 reuseport;\n        server_name a.example b.example;\n        set $sy_tenant a;\n        set $sy_vip www;',
    );
    // TCP: the stream module has no Lua, so its connection cap stays in nginx.conf (at most 65535).
    expect(stream).toContain('limit_conn sy_tcp_conn 65535;');
    expect(stream).toContain('limit_conn_zone $server_addr:$server_port zone=sy_tcp_conn:64k;');
    expect(stream).not.toContain('$sy_tenant');
    expect(config).toContain(
      'geo $sy_a__www__allow {\n        default 0;\n        10.0.0.0/8 1;\n        192.0.2.7/32 1;\n    }',
    );
    // The allowlist answers in the rewrite phase, before the access phase where the caps count a request.
    expect(config).toContain(
      'set $sy_vip www;\n        ssl_certificate /srv/lb/certs/a/c.crt;\n        ssl_certificate_key /srv/lb/certs/a/c.key;\n        if ($sy_a__www__allow = 0) {\n            return 403;\n        }',
    );
    expect(config).toContain('listen [2001:db8::1]:22 reuseport;\n        allow 2001:db8::/32;\n        deny all;');
    expect(config).toContain('proxy_connect_timeout 250ms;\n        proxy_timeout 60s;');
  });
});

describe('the runtime channel', () => {
  const channelNode = (settings: Partial<NodeSnapshot['node']>): NodeSnapshot => {
    const seed = seedSnapshot('nginx', '/srv/lb');
    return { ...seed, node: { ...seed.node, ...settings } };
  };
  const server = (config: string) => config.match(/\n {4}# The runtime channel[\s\S]*?\n {4}\}\n/)?.[0] ?? null;

  it('with a runtime address and its TLS material, serves the module’s admin API over mutual TLS, uncapped', () => {
    const tls = seedRuntimeTls();
    const files = renderNginx(channelNode({ runtimeAddress: { host: '10.0.0.1', port: 9443 }, runtimeTls: tls }));
    expect(server(files['nginx.conf']!)).toBe(
      [
        '',
        '    # The runtime channel: the control plane reads and changes the runtime state here. TLS with a',
        "    # client certificate from Switchyard's CA, and the module refuses any request without one.",
        '    server {',
        '        listen 10.0.0.1:9443 ssl;',
        '        ssl_certificate /srv/lb/runtime-api/node.pem;',
        '        ssl_certificate_key /srv/lb/runtime-api/node.pem;',
        '        ssl_client_certificate /srv/lb/runtime-api/ca.pem;',
        '        ssl_verify_client on;',
        '        ssl_protocols TLSv1.2 TLSv1.3;',
        '        set $sy_tenant "";',
        '        access_log off;',
        '        client_max_body_size 16m;',
        '        client_body_buffer_size 1m;',
        '        location /switchyard/v1/ {',
        '            content_by_lua_block { require("switchyard.admin").handle() }',
        '        }',
        '        location / {',
        '            return 404;',
        '        }',
        '    }',
        '',
      ].join('\n'),
    );
    expect(files['runtime-api/node.pem']).toBe(tls.certificatePem + tls.keyPem);
    expect(files['runtime-api/ca.pem']).toBe(tls.caBundlePem);
  });

  it('listens on an IPv6 runtime address in brackets', () => {
    const config = conf(
      channelNode({ runtimeAddress: { host: '2001:db8::9', port: 9443 }, runtimeTls: seedRuntimeTls() }),
    );
    expect(config).toContain('        listen [2001:db8::9]:9443 ssl;\n');
  });

  it.each([
    ['no runtime address', { runtimeAddress: null, runtimeTls: seedRuntimeTls() }],
    ['no TLS material', { runtimeAddress: { host: '10.0.0.1', port: 9443 }, runtimeTls: null }],
    ['neither', { runtimeAddress: null, runtimeTls: null }],
  ] as const)('with %s, renders no channel and no channel files', (_, settings) => {
    const files = renderNginx(channelNode(settings));
    expect(server(files['nginx.conf']!)).toBeNull();
    expect(files['nginx.conf']).not.toMatch(/switchyard\.admin|ssl_verify_client|runtime-api/);
    expect(Object.keys(files).filter((f) => f.startsWith('runtime-api/'))).toEqual([]);
    // The node still balances from its state file.
    expect(files[STATE_FILE]).toContain('"upstream":"t_a_web_ck_srvid"');
  });
});

describe('shared dictionaries', () => {
  const dicts = (config: string) => config.match(/lua_shared_dict \S+ \S+;/g);
  const FLOORS = [
    'lua_shared_dict sy_state 16m;',
    'lua_shared_dict sy_stats 16m;',
    'lua_shared_dict sy_live 16m;',
    'lua_shared_dict sy_health 16m;',
    'lua_shared_dict sy_locks 1m;',
  ];
  /** Tenant t<i>: one HTTP VIP (and `alt`, a second one on the same pool, with that persistence) on pool web. */
  const web = (i: number, members: number, alt?: string) => {
    const address = `10.${(i >> 8) & 255}.${i & 255}.1`;
    const www = { name: 'www', address, port: 80, protocol: 'http', defaultPool: 'web' };
    return tenant(`t${i}`, {
      vips: [vip(www), ...(alt === undefined ? [] : [vip({ ...www, name: 'alt', port: 81, persistence: alt })])],
      pools: [
        pool(
          { name: 'web' },
          Array.from({ length: members }, (_, m) => ({
            name: `m${m}`,
            address: `10.200.${m >> 8}.${m & 255}`,
            port: 8080,
          })),
        ),
      ],
    });
  };

  it('when members are added, then no dictionary changes size, and nginx.conf not at all', () => {
    const few = renderNginx(node(web(1, 2)));
    const many = renderNginx(node(web(1, NGINX_MAX_PEERS)));
    expect(dicts(few['nginx.conf']!)).toEqual(FLOORS);
    expect(many['nginx.conf']).toBe(few['nginx.conf']);
    expect(runtimeState(many).upstreams.t_t1_web!.peers).toHaveLength(NGINX_MAX_PEERS);
  });

  it('refuses a pool with more members than the Lua module takes, which would leave the whole node without entries', () => {
    const lua = readFileSync(
      new URL('../../../templates/nginx/lua/switchyard/state_check.lua', import.meta.url),
      'utf8',
    );
    expect(Number(/^local MAX_PEERS = (\d+)$/m.exec(lua)?.[1])).toBe(NGINX_MAX_PEERS);
    const tooMany = web(1, NGINX_MAX_PEERS + 1);
    expect(() => renderNginxTenant(tooMany, '/srv/lb')).toThrow(ValidationError);
    expect(() => renderNginx(node(web(2, 1), tooMany))).toThrow(
      `tenant t1: pool web has ${NGINX_MAX_PEERS + 1} members; NGINX nodes balance at most ${NGINX_MAX_PEERS} per pool`,
    );
  });

  it('grows them in 16 MB steps with the upstreams, VIPs and tenants a node holds', () => {
    const tenants = (n: number) => Array.from({ length: n }, (_, i) => web(i, 1));
    expect(dicts(conf(node(...tenants(100))))).toEqual(FLOORS);
    // 1,500 upstreams: counters of nine objects each (the upstream and its room for eight peers) pass 16 MB.
    const config = conf(node(...tenants(1500)));
    expect(dicts(config)).toEqual([
      'lua_shared_dict sy_state 16m;',
      'lua_shared_dict sy_stats 32m;',
      'lua_shared_dict sy_live 16m;',
      'lua_shared_dict sy_health 16m;',
      'lua_shared_dict sy_locks 1m;',
    ]);
    // A second VIP on the same pool adds no upstream, but a persistence variant does.
    const twoVips = (persistence: string) => Array.from({ length: 1500 }, (_, i) => web(i, 1, persistence));
    expect(dicts(conf(node(...twoVips('none'))))).toEqual(dicts(config));
    expect(dicts(conf(node(...twoVips('source'))))).toContain('lua_shared_dict sy_stats 48m;');
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
    expect(config).toContain('        10.1.0.0/16 1;\n        10.2.0.1/32 1;\n');
    const files = renderNginx(
      node(
        tenant('a', {
          vips: [vip({ name: 'www', address: '192.0.2.1', port: 80, protocol: 'http', defaultPool: 'web' })],
          pools: [web],
        }),
      ),
    );
    expect(runtimeState(files).upstreams.t_a_web!.peers[0]).toMatchObject({ address: '10.0.0.1', port: 80 });
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
