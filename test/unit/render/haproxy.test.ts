import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { NodeSnapshot, RenderedFiles } from '../../../src/domain/snapshot.js';
import { ValidationError } from '../../../src/domain/errors.js';
import { assembleHaproxy, renderHaproxy, renderHaproxyTenant } from '../../../src/render/haproxy.js';
import { featuresSnapshot } from '../../fixtures/features-snapshot.js';
import { mulberry32, randomSnapshot, shuffleDeep } from '../../fixtures/random-snapshot.js';
import { GOLDEN_CONFIG_DIR, readGolden, writeGolden } from '../../fixtures/golden.js';
import { seedSnapshot } from '../../fixtures/seed-snapshot.js';
import { assertProperty, choices, scenario } from '../../support/property.js';

const GOLDEN_DIR = GOLDEN_CONFIG_DIR.haproxy;

const SCENARIOS: Record<string, (configDir: string) => NodeSnapshot> = {
  seed: (dir) => seedSnapshot('haproxy', dir),
  features: (dir) => featuresSnapshot('haproxy', dir),
};

/** The same files as if rendered for another configDir: only to compare, never to deploy. */
function relocated(files: RenderedFiles, from: string, to: string): RenderedFiles {
  return Object.fromEntries(Object.entries(files).map(([file, content]) => [file, content.split(from).join(to)]));
}

describe.each(Object.keys(SCENARIOS))('the %s scenario', (name) => {
  const build = SCENARIOS[name]!;

  it('renders its golden files byte for byte', () => {
    const files = renderHaproxy(build(GOLDEN_DIR));
    if (process.env.UPDATE_GOLDEN) writeGolden('haproxy', name, files);
    const golden = readGolden('haproxy', name);
    expect(Object.keys(files)).toEqual(Object.keys(golden));
    for (const [file, content] of Object.entries(files)) expect(content, file).toBe(golden[file]);
  });

  // The real haproxy -c checks these files where they point: test/integration/validate-haproxy.test.ts.
  it('renders for another configDir the golden files with only configDir changed', () => {
    const configDir = '/srv/lb-elsewhere';
    expect(relocated(renderHaproxy(build(configDir)), configDir, GOLDEN_DIR)).toEqual(readGolden('haproxy', name));
  });

  it('gives the same bytes for the same state, however its arrays are ordered', () => {
    const expected = renderHaproxy(build(GOLDEN_DIR));
    expect(renderHaproxy(build(GOLDEN_DIR))).toEqual(expected);
    for (const seed of [1, 2, 3, 4, 5]) {
      expect(renderHaproxy(shuffleDeep(build(GOLDEN_DIR), mulberry32(seed)))).toEqual(expected);
    }
  });
});

describe('renderHaproxy', () => {
  it('refers to every file it renders by its absolute path under configDir', () => {
    const files = renderHaproxy(seedSnapshot('haproxy', '/srv/lb'));
    expect(Object.keys(files)).toEqual([
      'certs/b/b-example.pem',
      'crt-lists/b/api.crt-list',
      'haproxy.cfg',
      'maps/ambiguous-path.pat',
      'maps/tenant-caps.map',
      'member-tls/b/ca/b-members.pem',
      'runtime-api/ca.pem',
      'runtime-api/node.pem',
    ]);
    expect(files['haproxy.cfg']).toContain(
      'ssl verify required ca-file /srv/lb/member-tls/b/ca/b-members.pem sni str(api.b.internal) ',
    );
    expect(files['haproxy.cfg']).toContain('if { path -m reg -f /srv/lb/maps/ambiguous-path.pat }');
    expect(files['haproxy.cfg']).toContain('ssl crt-list /srv/lb/crt-lists/b/api.crt-list ');
    expect(files['haproxy.cfg']).toContain(
      'ssl crt /srv/lb/runtime-api/node.pem ca-file /srv/lb/runtime-api/ca.pem verify required',
    );
    expect(files['haproxy.cfg']).toContain('map_str_int(/srv/lb/maps/tenant-caps.map,');
    expect(files['crt-lists/b/api.crt-list']).toBe('/srv/lb/certs/b/b-example.pem\n');
  });

  it('never binds the admin socket or the master CLI to an address: only mTLS listeners forward to them', () => {
    const files = renderHaproxy(seedSnapshot('haproxy', '/srv/lb'));
    const cfg = files['haproxy.cfg']!;
    expect(cfg).toMatch(/^ {4}stats socket \/run\/switchyard\/admin\.sock level admin mode 600 expose-fd listeners$/m);
    expect(cfg).not.toMatch(/stats socket (?:ipv4|ipv6)@/);
    const listeners = [...cfg.matchAll(/^listen (\S+)\n((?: {4}.*\n)+)/gm)].map((m) => [
      m[1],
      m[2]!.split('\n').filter((l) => l.startsWith('    bind') || l.startsWith('    server')),
    ]);
    expect(listeners).toEqual([
      [
        'sy_runtime_api',
        [
          '    bind 10.0.0.1:9999 ssl crt /srv/lb/runtime-api/node.pem ca-file /srv/lb/runtime-api/ca.pem verify required',
          '    server admin unix@/run/switchyard/admin.sock',
        ],
      ],
      [
        'sy_master_cli',
        [
          '    bind 10.0.0.1:9998 ssl crt /srv/lb/runtime-api/node.pem ca-file /srv/lb/runtime-api/ca.pem verify required',
          '    server master unix@/run/switchyard/master.sock',
        ],
      ],
    ]);
    // The node's certificate file holds the leaf and its key; the CA file the trusted CAs only.
    expect(files['runtime-api/node.pem']).toMatch(/^-----BEGIN CERTIFICATE-----[\s\S]+-----BEGIN PRIVATE KEY-----/);
    expect(files['runtime-api/ca.pem']).not.toContain('PRIVATE KEY');
  });

  it('without its certificate, a node renders no network listener for the Runtime API (the local socket only)', () => {
    const snapshot = seedSnapshot('haproxy', '/srv/lb');
    const files = renderHaproxy({
      ...snapshot,
      node: { ...snapshot.node, runtimeTls: null, socketDir: '/var/run/sy-edge' },
    });
    expect(files['haproxy.cfg']).toContain('stats socket /var/run/sy-edge/admin.sock level admin mode 600');
    expect(files['haproxy.cfg']).not.toContain('listen sy_');
    expect(files['haproxy.cfg']).not.toContain('10.0.0.1:99');
    expect(Object.keys(files).filter((f) => f.startsWith('runtime-api/'))).toEqual([]);
  });

  it("refuses a tenant listener on the master CLI's address", () => {
    const snapshot = seedSnapshot('haproxy', '/srv/lb');
    const node = { ...snapshot.node, masterAddress: { host: '192.168.1.100', port: 80 } };
    expect(() => renderHaproxy({ ...snapshot, node })).toThrow(/already used by the master CLI/);
  });

  it('when only one tenant changes, then the other tenants are not rendered again', () => {
    const before = seedSnapshot('haproxy', GOLDEN_DIR);
    renderHaproxy(before);
    const [a, b, c] = before.tenants;
    const changedB = { ...b!, allocation: { ...b!.allocation, maxConnections: 7 } };
    const after = { ...before, tenants: [a!, changedB, c!] };
    expect(renderHaproxyTenant(a!, GOLDEN_DIR)).toBe(renderHaproxyTenant(a!, GOLDEN_DIR));
    const files = renderHaproxy(after);
    expect(files['maps/tenant-caps.map']).toContain('b.conn 7\n');
    expect(files).toEqual(renderHaproxy(structuredClone(after)));
  });

  it('when one tenant cannot be rendered, then the node is assembled with its last good part (the files haproxy -c passed before)', () => {
    const configDir = '/srv/lb';
    const good = seedSnapshot('haproxy', configDir);
    const lastGoodB = renderHaproxyTenant(good.tenants[1]!, configDir);
    const brokenB = { ...good.tenants[1]!, vips: good.tenants[1]!.vips.map((v) => ({ ...v, defaultPool: 'gone' })) };
    const next = { ...good, tenants: [good.tenants[0]!, brokenB, good.tenants[2]!] };
    expect(() => renderHaproxyTenant(brokenB, configDir)).toThrow(ValidationError);
    const files = assembleHaproxy(next, [
      renderHaproxyTenant(next.tenants[0]!, configDir),
      lastGoodB,
      renderHaproxyTenant(next.tenants[2]!, configDir),
    ]);
    // The same bytes as the good node's, which the real haproxy -c passes: test/integration/validate-haproxy.test.ts.
    expect(files).toEqual(renderHaproxy(good));
  });

  it('renders a tenant again when the node configDir changes', () => {
    const snapshot = seedSnapshot('haproxy', '/one');
    const tenant = snapshot.tenants[1]!;
    expect(renderHaproxyTenant(tenant, '/one').config).toContain('/one/crt-lists/');
    expect(renderHaproxyTenant(tenant, '/two').config).toContain('/two/crt-lists/');
  });
});

describe('renderHaproxy: properties over random valid snapshots', () => {
  // The real haproxy -c checks thousands of these: test/integration/haproxy-property.test.ts.
  it('renders every random valid snapshot, and the same bytes however its arrays are ordered', () => {
    const snapshots = scenario((rng) => randomSnapshot(rng.next, 'haproxy', '/srv/lb', rng.int(1, 3)));
    assertProperty(
      fc.property(snapshots, choices(), (snapshot, rng) => {
        expect(renderHaproxy(shuffleDeep(snapshot, rng.next))).toEqual(renderHaproxy(snapshot));
      }),
      50,
    );
  });
});
