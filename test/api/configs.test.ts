import { randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { findNode } from '../../src/db/node-repository.js';
import { validateHaproxy } from '../../src/render/validate-haproxy.js';
import { validateNginx } from '../../src/render/validate-nginx.js';
import { nodeSettingsOf } from '../../src/services/config/node-settings.js';
import { startTestApp, type Caller, type TestApp } from '../support/app.js';
import { makeCert } from '../support/certs.js';
import { currentRevision } from '../support/fixture.js';

let app: TestApp;
let agent: Caller;

/** What the reconciler would push to the node's Runtime API now. */
async function runtimeSnapshot(node: string) {
  const found = (await findNode(app.database.handle.db, node))!;
  return app.cp.services.configs.runtimeSnapshot(nodeSettingsOf(found));
}
const haproxyDir = join(tmpdir(), `sy-node-${randomUUID()}`);
const nginxDir = join(tmpdir(), `sy-node-${randomUUID()}`);

beforeAll(async () => {
  app = await startTestApp();
  const cert = makeCert('shop.b.example');
  const steps: [string, string, unknown][] = [
    ['POST', '/v1/tenants', { id: 'a', reservation: { vcpu: 2, memoryMb: 4096 } }],
    ['POST', '/v1/tenants/a/pools', { name: 'web', healthCheck: { type: 'http', path: '/healthz' } }],
    [
      'PUT',
      '/v1/tenants/a/pools/web/members',
      {
        members: [
          { name: 'web-1', address: '10.0.1.11', port: 8080 },
          { name: 'web-2', address: '10.0.1.12', port: 8080 },
        ],
      },
    ],
    [
      'POST',
      '/v1/tenants/a/vips',
      { name: 'www', address: '192.168.1.100', port: 80, protocol: 'http', persistence: 'cookie', defaultPool: 'web' },
    ],
    ['POST', '/v1/tenants', { id: 'b', reservation: { vcpu: 4, memoryMb: 8192 } }],
    ['POST', '/v1/tenants/b/certificates', { name: 'shop', ...cert }],
    [
      'POST',
      '/v1/tenants/b/pools',
      { name: 'shop', healthCheck: { type: 'https', path: '/health' }, tls: { verify: 'none' } },
    ],
    ['PUT', '/v1/tenants/b/pools/shop/members', { members: [{ name: 'shop-1', address: '10.0.2.21', port: 8443 }] }],
    [
      'POST',
      '/v1/tenants/b/vips',
      {
        name: 'shop',
        address: '192.168.1.101',
        port: 443,
        protocol: 'https',
        certificate: 'shop',
        defaultPool: 'shop',
      },
    ],
    [
      'POST',
      '/v1/nodes',
      {
        name: 'edge-1',
        kind: 'haproxy',
        runtimeAddress: { host: '127.0.0.1', port: 19999 },
        capacity: { vcpu: 8, memoryMb: 16384 },
        configDir: haproxyDir,
      },
    ],
    [
      'POST',
      '/v1/nodes',
      { name: 'edge-2', kind: 'nginx', capacity: { vcpu: 8, memoryMb: 16384 }, configDir: nginxDir },
    ],
  ];
  for (const [method, path, body] of steps) {
    const res = await app.admin(method, path, body);
    expect(res.status, `${method} ${path} ${JSON.stringify(res.body)}`).toBeLessThan(300);
  }
  agent = app.as(await app.token('agent', { node: 'edge-1' }));
});
afterAll(async () => {
  await app?.stop();
});

describe('node configuration', () => {
  it('gives an agent its node’s files, which the real haproxy accepts, with an ETag and the revision', async () => {
    const res = await agent('GET', '/v1/nodes/edge-1/config');
    expect(res.status).toBe(200);
    expect(res.body.kind).toBe('haproxy');
    expect(res.headers.get('etag')).toBe(`"${res.body.contentHash}"`);
    expect(Number(res.headers.get('x-switchyard-revision'))).toBe(res.body.revision);
    const cfg: string = res.body.files['haproxy.cfg'];
    expect(cfg).toContain('fe_a_www');
    expect(cfg).toContain('bind 192.168.1.100:80');
    expect(cfg).toContain('bind 127.0.0.1:19999 ssl crt ');
    expect(cfg).not.toContain('stats socket ipv4@');
    expect(res.body.heldTenants).toEqual([]);
    const verdict = await validateHaproxy(res.body.files, haproxyDir);
    expect(verdict).toMatchObject({ ok: true });
  });

  it('answers 304 to If-None-Match with the current hash, and a new hash after a change', async () => {
    const first = await agent('GET', '/v1/nodes/edge-1/config');
    const etag = first.headers.get('etag')!;
    expect((await agent('GET', '/v1/nodes/edge-1/config', undefined, { 'if-none-match': etag })).status).toBe(304);
    await app.admin('PATCH', '/v1/tenants/a/pools/web/members/web-1', { weight: 5 });
    const second = await agent('GET', '/v1/nodes/edge-1/config', undefined, { 'if-none-match': etag });
    expect(second.status).toBe(200);
    expect(second.body.revision).toBeGreaterThan(first.body.revision);
    expect(second.body.files['haproxy.cfg']).toMatch(/server web-1 10\.0\.1\.11:8080 .*weight 5/);
  });

  it('renders nginx nodes too, accepted by the real nginx', async () => {
    const res = await app.admin('GET', '/v1/nodes/edge-2/config');
    expect(res.status).toBe(200);
    expect(res.body.kind).toBe('nginx');
    expect(res.body.files['nginx.conf']).toContain('listen 192.168.1.101:443 ssl http2 reuseport');
    const verdict = await validateNginx(res.body.files, nginxDir);
    expect(verdict).toMatchObject({ ok: true });
  });

  it('keeps private keys away from everyone but the node’s agent and admins', async () => {
    expect((await app.as(await app.token('agent', { node: 'edge-2' }))('GET', '/v1/nodes/edge-1/config')).status).toBe(
      404,
    );
    expect((await app.as(await app.token('operator'))('GET', '/v1/nodes/edge-1/config')).status).toBe(403);
    expect(
      (await app.as(await app.token('tenant-admin', { tenant: 'a' }))('GET', '/v1/nodes/edge-1/config')).status,
    ).toBe(403);
  });

  it('previews a tenant’s part, validated, with its private key withheld', async () => {
    const res = await app.as(await app.token('tenant-viewer', { tenant: 'b' }))(
      'GET',
      '/v1/tenants/b/render?kind=haproxy',
    );
    expect(res.status).toBe(200);
    expect(res.body.validation).toEqual({ ok: true });
    const files = Object.values(res.body.files as Record<string, string>).join('\n');
    expect(files).toContain('BEGIN CERTIFICATE');
    expect(files).not.toMatch(/PRIVATE KEY-----/);
    expect(files).toContain('# private key withheld');
    expect(res.body.files['haproxy.cfg']).toContain('fe_b_shop');
    expect(res.body.files['haproxy.cfg']).not.toContain('fe_a_www');
    const bad = await app.admin('GET', '/v1/tenants/b/render?kind=apache');
    expect(bad.status).toBe(400);
    expect(bad.body.error.details[0].path).toBe('query.kind');
  });
});

describe('per-tenant blast radius', () => {
  it('holds only the tenant whose certificate the proxy rejects at its last good state; others go out', async () => {
    const before = await agent('GET', '/v1/nodes/edge-1/config');
    const goodCfg: string = before.body.files['haproxy.cfg'];
    // Damage tenant b's stored chain the way a bad upload would look to the proxy (well-formed PEM, not a certificate).
    await app.database.handle.db
      .updateTable('certificates')
      .set({ chain_pem: '-----BEGIN CERTIFICATE-----\nTm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n' })
      .where('tenant_id', '=', 'b')
      .execute();
    await app.admin('PATCH', '/v1/tenants/b/vips/shop', { timeouts: { clientMs: 12345 } });
    await app.admin('PATCH', '/v1/tenants/a/vips/www', { timeouts: { clientMs: 23456 } });

    const after = await agent('GET', '/v1/nodes/edge-1/config');
    expect(after.status).toBe(200);
    const cfg: string = after.body.files['haproxy.cfg'];
    expect(cfg).toContain('timeout client 23456ms'); // tenant a's change went out
    expect(cfg).not.toContain('timeout client 12345ms'); // tenant b's did not
    expect(after.body.heldTenants).toHaveLength(1);
    expect(after.body.heldTenants[0]).toMatchObject({ tenant: 'b', servingRevision: expect.any(Number) });
    expect(after.body.heldTenants[0].error).toMatch(/certificate|PEM|SSL/i);
    // b still serves exactly its last good part.
    const bPart = (text: string) =>
      text
        .split('\n')
        .filter((l) => l.includes('fe_b_shop') || l.includes('be_b_shop'))
        .join('\n');
    expect(bPart(cfg)).toBe(bPart(goodCfg));
    expect(await validateHaproxy(after.body.files, haproxyDir)).toMatchObject({ ok: true });
    // Runtime pushes hold b where its files do (its last good part), not left alone as if unsettled.
    const runtime = await runtimeSnapshot('edge-1');
    expect(runtime.unsettled).toBeUndefined();
    const b = runtime.tenants.find((t) => t.id === 'b')!;
    expect(b.vips.find((v) => v.name === 'shop')!.timeouts.clientMs).not.toBe(12345);

    // Later builds line b up unchanged with the build before; it never validated at this state, so
    // they hold it still.
    await app.admin('PATCH', '/v1/tenants/a/vips/www', { timeouts: { clientMs: 34567 } });
    const later = await agent('GET', '/v1/nodes/edge-1/config');
    expect(later.body.files['haproxy.cfg']).toContain('timeout client 34567ms');
    expect(later.body.files['haproxy.cfg']).not.toContain('timeout client 12345ms');
    expect(later.body.heldTenants.map((h: { tenant: string }) => h.tenant)).toEqual(['b']);
    expect(bPart(later.body.files['haproxy.cfg'])).toBe(bPart(goodCfg));
  });

  it('leaves out a new tenant that never validated, flagged, without holding anyone else', async () => {
    const cert = makeCert('new.c.example');
    await app.admin('POST', '/v1/tenants', { id: 'c' });
    await app.admin('POST', '/v1/tenants/c/certificates', { name: 'tls', ...cert });
    await app.database.handle.db
      .updateTable('certificates')
      .set({ chain_pem: '-----BEGIN CERTIFICATE-----\nTm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n' })
      .where('tenant_id', '=', 'c')
      .execute();
    await app.admin('POST', '/v1/tenants/c/vips', {
      name: 'tls',
      address: '192.168.1.103',
      port: 443,
      protocol: 'https',
      certificate: 'tls',
    });
    const res = await agent('GET', '/v1/nodes/edge-1/config');
    expect(res.body.files['haproxy.cfg']).not.toContain('fe_c_tls');
    expect(res.body.heldTenants.find((h: any) => h.tenant === 'c')).toMatchObject({ servingRevision: null });
    expect(await validateHaproxy(res.body.files, haproxyDir)).toMatchObject({ ok: true });
    // Refused, c is in no file: runtime pushes leave it out too, rather than waiting on it as unsettled.
    const runtime = await runtimeSnapshot('edge-1');
    expect(runtime.tenants.map((t) => t.id)).not.toContain('c');
    expect(runtime.unsettled).toBeUndefined();
  });
});

describe('agent protocol', () => {
  it('long-polls: answers as soon as a write changes the node’s files, or 304 when the wait runs out', async () => {
    const current = await agent('GET', '/v1/nodes/edge-1/config');
    const etag = current.headers.get('etag')!;
    const started = Date.now();
    const idle = await agent('GET', '/v1/nodes/edge-1/config?wait=1', undefined, { 'if-none-match': etag });
    expect(idle.status).toBe(304);
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    const listening = app.cp.feed.listenerCount('change');
    const waiting = agent('GET', '/v1/nodes/edge-1/config?wait=30', undefined, { 'if-none-match': etag });
    // The write must find the poll waiting (listening for commits), or the test would pass without waking one.
    await vi.waitFor(() => expect(app.cp.feed.listenerCount('change')).toBeGreaterThan(listening), {
      timeout: 10_000,
      interval: 5,
    });
    await app.admin('PATCH', '/v1/tenants/a/pools/web/members/web-2', { weight: 9 });
    const changed = await waiting;
    expect(changed.status).toBe(200);
    expect(changed.body.files['haproxy.cfg']).toMatch(/server web-2 10\.0\.1\.12:8080 .*weight 9/);
    expect(Date.now() - started).toBeLessThan(15_000);
  });

  it('under writes not built yet, answers the newest config already built at once, then the next one', async () => {
    const old = (await agent('GET', '/v1/nodes/edge-1/config')).headers.get('etag')!;
    await app.admin('PATCH', '/v1/tenants/a/pools/web/members/web-2', { weight: 21 });
    const built = await agent('GET', '/v1/nodes/edge-1/config');
    // A later write that nothing has built for the node yet (the reconciler is off here).
    await app.admin('PATCH', '/v1/tenants/a/pools/web/members/web-2', { weight: 22 });
    const behind = Number(built.headers.get('x-switchyard-revision'));
    expect(await currentRevision(app)).toBeGreaterThan(behind);
    // The agent, still on the old config, gets the built one without waiting for a build of the newest write.
    const first = await agent('GET', '/v1/nodes/edge-1/config?wait=30', undefined, { 'if-none-match': old });
    expect(first.status).toBe(200);
    expect(first.headers.get('etag')).toBe(built.headers.get('etag'));
    expect(Number(first.headers.get('x-switchyard-revision'))).toBe(behind);
    // Holding that one, it gets the newest, built for it.
    const next = await agent('GET', '/v1/nodes/edge-1/config?wait=30', undefined, {
      'if-none-match': first.headers.get('etag')!,
    });
    expect(next.status).toBe(200);
    expect(next.body.files['haproxy.cfg']).toMatch(/server web-2 10\.0\.1\.12:8080 .*weight 22/);
    expect(Number(next.headers.get('x-switchyard-revision'))).toBe(await currentRevision(app));
  });

  it('under a stream of writes built back to back by another builder, a poll holding the newest built config gets the next one without sitting out its wait', async () => {
    const holding = (await agent('GET', '/v1/nodes/edge-1/config')).headers.get('etag')!;
    // A reconciler's build lane: a build of the node always running or about to start.
    let streaming = true;
    const builder = (async () => {
      while (streaming) await app.cp.services.configs.build('edge-1');
    })();
    const writer = (async () => {
      for (let w = 30; streaming && w < 230; w++) {
        await app.admin('PATCH', '/v1/tenants/a/pools/web/members/web-2', { weight: w });
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    try {
      const started = Date.now();
      const next = await agent('GET', '/v1/nodes/edge-1/config?wait=20', undefined, { 'if-none-match': holding });
      expect(next.status).toBe(200);
      expect(next.headers.get('etag')).not.toBe(holding);
      // A build's time, not the 20 s wait (a poll that waited on one build in particular re-queued
      // behind each next one and sat out all of it). Half the wait leaves room for a loaded machine.
      expect(Date.now() - started).toBeLessThan(10_000);
    } finally {
      streaming = false;
      await Promise.all([builder, writer]);
    }
  });

  it('changes only the content hash, not the structural hash, for a weight change; a new pool changes both', async () => {
    const before = (await agent('GET', '/v1/nodes/edge-1/config')).body;
    await app.admin('PATCH', '/v1/tenants/a/pools/web/members/web-2', { weight: 10 });
    const weight = (await agent('GET', '/v1/nodes/edge-1/config')).body;
    expect(weight.contentHash).not.toBe(before.contentHash);
    expect(weight.structuralHash).toBe(before.structuralHash);
    await app.admin('PATCH', '/v1/tenants/a/pools/web', { healthCheck: { type: 'http', path: '/ready' } });
    const check = (await agent('GET', '/v1/nodes/edge-1/config')).body;
    expect(check.structuralHash).not.toBe(weight.structuralHash);
  });

  it('records heartbeats, applied versions and failures with the proxy’s own message', async () => {
    const config = (await agent('GET', '/v1/nodes/edge-1/config')).body;
    const hb = await agent('POST', '/v1/nodes/edge-1/status', {
      event: 'heartbeat',
      proxyVersion: 'HAProxy 2.6.12',
      agentVersion: '0.1.0',
    });
    expect(hb.status).toBe(200);
    expect(hb.body.status).toMatchObject({ proxyVersion: 'HAProxy 2.6.12', agentVersion: '0.1.0' });
    expect(hb.body.lastHeartbeatAt).not.toBeNull();
    const failed = await agent('POST', '/v1/nodes/edge-1/status', {
      event: 'failed',
      error: "[ALERT] config : parsing [haproxy.cfg:12] : unknown keyword 'bogus'",
    });
    expect(failed.body.status.lastError).toContain("unknown keyword 'bogus'");
    const applied = await agent('POST', '/v1/nodes/edge-1/status', {
      event: 'applied',
      contentHash: config.contentHash,
      revision: config.revision,
      reloaded: true,
    });
    expect(applied.body).toMatchObject({
      appliedRevision: config.revision,
      status: { appliedHash: config.contentHash, reloadCount: 1, lastError: null },
    });
    const bad = await agent('POST', '/v1/nodes/edge-1/status', { event: 'applied' });
    expect(bad.status).toBe(400);
    expect(bad.body.error.details[0].path).toBe('body.contentHash');
    expect(
      (
        await app.as(await app.token('agent', { node: 'edge-2' }))('POST', '/v1/nodes/edge-1/status', {
          event: 'heartbeat',
        })
      ).status,
    ).toBe(404);
  });
});
