import { describe, expect, it } from 'vitest';
import { renderHaproxy } from '../../../src/render/haproxy.js';
import { toHaproxyRuntime } from '../../../src/render/haproxy-runtime-view.js';
import { featuresSnapshot } from '../../fixtures/features-snapshot.js';
import { seedSnapshot } from '../../fixtures/seed-snapshot.js';

/** The runtime projection names exactly what the rendered config has; checked against the config text itself. */
const DIR = '/etc/haproxy/switchyard';
const snapshot = featuresSnapshot('haproxy', DIR);
const runtime = toHaproxyRuntime(snapshot);
const cfg = renderHaproxy(snapshot)['haproxy.cfg']!;

describe('the runtime view of a rendered HAProxy config', () => {
  it('names every frontend and backend the config declares, with the frontends’ maxconn', () => {
    const declared = (kind: string) => [...cfg.matchAll(new RegExp(`^${kind} (\\S+)$`, 'gm'))].map((m) => m[1]!);
    expect(runtime.frontends.map((f) => f.name).sort()).toEqual(declared('frontend').sort());
    const tenantBackends = declared('backend').filter((b) => b.startsWith('be_'));
    expect(runtime.backends.map((b) => b.name).sort()).toEqual(tenantBackends.sort());
    for (const fe of runtime.frontends) {
      const section = cfg.slice(cfg.indexOf(`frontend ${fe.name}\n`)).split('\n\n')[0]!;
      expect(section).toContain(`    maxconn ${fe.maxconn}\n`);
    }
  });

  it('gives a pool used by HTTP and TCP VIPs both backends, each with the pool’s members', () => {
    const legacy = runtime.backends.filter((b) => b.pool === 'legacy');
    expect(legacy.map((b) => b.name)).toEqual(['be_shop_legacy', 'be_shop_legacy_tcp']);
    for (const b of legacy) expect(b.servers.map((s) => s.name)).toEqual(['l1']);
  });

  it('marks pools behind cookie persistence as not runtime-extensible, and the others as extensible', () => {
    const dynamic = Object.fromEntries(runtime.backends.map((b) => [b.name, b.dynamicMembers]));
    expect(dynamic).toEqual({
      be_shop_api: false,
      be_shop_legacy: false,
      be_shop_legacy_tcp: false,
      be_shop_spare: true,
      be_shop_web: false,
      be_quiet_batch: true,
    });
  });

  it('carries each server’s weight, state and backup flag as the server line renders them', () => {
    const web = runtime.backends.find((b) => b.name === 'be_shop_web')!;
    expect(
      web.servers.map((s) => `${s.name} ${s.address}:${s.port} w${s.weight} ${s.admin}${s.backup ? ' backup' : ''}`),
    ).toEqual([
      'w1 10.1.0.1:8080 w100 ready',
      'w2 10.1.0.2:8080 w0 drain',
      'w3 10.1.0.3:8080 w100 maint',
      'w4 10.1.0.4:8080 w100 ready backup',
      'w5 2001:db8::10:8080 w0 ready',
    ]);
    expect(cfg).toMatch(/server w2 10\.1\.0\.2:8080 weight 0 /);
    expect(cfg).toMatch(/server w3 10\.1\.0\.3:8080 weight 100 .* disabled/);
  });

  it('gives the check the config prints on server lines in the shape add server takes', () => {
    expect(runtime.backends.find((b) => b.name === 'be_shop_spare')!.check).toEqual({
      intervalMs: 2000,
      rise: 2,
      fall: 3,
      ssl: true,
      sni: 'spare.shop.example',
    });
    expect(runtime.backends.find((b) => b.name === 'be_shop_legacy_tcp')!.check).toEqual({
      intervalMs: 10_000,
      rise: 1,
      fall: 5,
      port: 7001,
    });
    expect(runtime.backends.find((b) => b.name === 'be_quiet_batch')!.check).toBeNull();
  });

  it('lists the caps map (rate and connection cap per tenant) with the file’s lines and only the certificates the config loads', () => {
    const files = renderHaproxy(snapshot);
    expect(runtime.capsMap).toEqual({
      file: `${DIR}/maps/tenant-caps.map`,
      entries: [
        ['quiet', '1'],
        ['quiet.conn', '1'],
        ['shop', '120'],
        ['shop.conn', '750'],
      ],
      referenced: true,
    });
    expect(runtime.capsMap.entries.map(([k, v]) => `${k} ${v}\n`).join('')).toBe(files['maps/tenant-caps.map']);
    expect(runtime.certificates.map((c) => c.file)).toEqual([`${DIR}/certs/shop/shop-cert.pem`]);
    expect(runtime.certificates[0]!.pem).toBe(files['certs/shop/shop-cert.pem']);
    expect(runtime.certificates[0]!.fingerprint).toMatch(/^[0-9A-F]{40}$/);
  });

  it('builds each tenant’s part once per tenant snapshot and configDir: a change to one tenant rebuilds only that one', () => {
    const again = toHaproxyRuntime(snapshot);
    expect(again).toEqual(runtime);
    expect(again.backends.every((b, i) => b === runtime.backends[i])).toBe(true);
    const shop = snapshot.tenants.find((t) => t.id === 'shop')!;
    const changed = {
      ...snapshot,
      tenants: snapshot.tenants.map((t) =>
        t === shop ? { ...t, allocation: { ...t.allocation, requestsPerSecond: 7 } } : t,
      ),
    };
    const next = toHaproxyRuntime(changed);
    expect(next.capsMap.entries).toEqual([
      ['quiet', '1'],
      ['quiet.conn', '1'],
      ['shop', '7'],
      ['shop.conn', '750'],
    ]);
    expect(next.backends.filter((b) => b.tenant !== 'shop').every((b) => runtime.backends.includes(b))).toBe(true);
    expect(next.backends.filter((b) => b.tenant === 'shop').some((b) => runtime.backends.includes(b))).toBe(false);
    expect(toHaproxyRuntime({ ...snapshot, node: { ...snapshot.node, configDir: '/elsewhere' } }).capsMap.file).toBe(
      '/elsewhere/maps/tenant-caps.map',
    );
  });

  it("holds the node's own Runtime API certificate, so a renewal is swapped in with set ssl cert rather than a reload", () => {
    const seed = seedSnapshot('haproxy', DIR);
    const files = renderHaproxy(seed);
    const node = toHaproxyRuntime(seed).certificates.find((c) => c.file === `${DIR}/runtime-api/node.pem`);
    expect(node).toEqual({
      file: `${DIR}/runtime-api/node.pem`,
      pem: files['runtime-api/node.pem'],
      fingerprint: expect.stringMatching(/^[0-9A-F]{40}$/),
    });
    const without = toHaproxyRuntime({ ...seed, node: { ...seed.node, runtimeTls: null } });
    expect(without.certificates.map((c) => c.file)).not.toContain(`${DIR}/runtime-api/node.pem`);
  });
});
