import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/app.js';

const run = promisify(execFile);

/** The README's seed scenario, run exactly as printed (bash + curl + openssl + node), so the docs stay true. */
function seedScript(): string {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const section = readme.slice(readme.indexOf('## The seed scenario'));
  const block = /```bash\n([\s\S]*?)```/.exec(section);
  if (!block) throw new Error('README has no bash block under "## The seed scenario"');
  return block[1]!;
}

let app: TestApp;
let dir: string;
beforeAll(async () => {
  app = await startTestApp();
  dir = mkdtempSync(join(tmpdir(), 'sy-readme-'));
});
afterAll(async () => {
  await app?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('README seed scenario', () => {
  it('runs as printed and creates the three tenants', async () => {
    await run('bash', ['-euo', 'pipefail', '-c', seedScript()], {
      cwd: dir,
      env: { ...process.env, SY: app.url, TOKEN: app.adminToken },
      timeout: 60_000,
    });
    const tenants = await app.admin('GET', '/v1/tenants');
    expect(tenants.body.items.map((t: any) => [t.id, t.reservation])).toEqual([
      ['tenant-a', { vcpu: 2, memoryMb: 4096 }],
      ['tenant-b', { vcpu: 4, memoryMb: 8192 }],
      ['tenant-c', { vcpu: 1, memoryMb: 2048 }],
    ]);
    const a = await app.admin('GET', '/v1/tenants/tenant-a/vips/www');
    expect(a.body).toMatchObject({
      address: '192.168.1.100',
      port: 80,
      protocol: 'http',
      persistence: 'cookie',
      defaultPool: 'web',
    });
    const b = await app.admin('GET', '/v1/tenants/tenant-b/vips/shop');
    expect(b.body).toMatchObject({ address: '192.168.1.101', port: 443, protocol: 'https', certificate: 'shop' });
    const bCert = await app.admin('GET', '/v1/tenants/tenant-b/certificates/shop');
    expect(bCert.body.sans).toEqual(['shop.tenant-b.example']);
    const c = await app.admin('GET', '/v1/tenants/tenant-c/vips/ssh');
    expect(c.body).toMatchObject({ address: '192.168.1.102', port: 22, protocol: 'tcp' });
    const checks = await Promise.all(
      [
        ['tenant-a', 'web'],
        ['tenant-b', 'shop'],
        ['tenant-c', 'ssh'],
      ].map(([t, p]) => app.admin('GET', `/v1/tenants/${t}/pools/${p}`)),
    );
    expect(checks.map((r) => r.body.healthCheck.type)).toEqual(['http', 'https', 'tcp']);
    // Tenant B's members speak TLS, verified against its own CA bundle with a fixed SNI.
    expect(checks.map((r) => r.body.tls)).toEqual([
      null,
      {
        verify: 'required',
        caBundle: 'members',
        sni: { from: 'fixed', name: 'shop.internal.tenant-b.example' },
        clientCertificate: null,
        alpn: [],
      },
      null,
    ]);
    const bundle = await app.admin('GET', '/v1/tenants/tenant-b/ca-bundles/members');
    expect(bundle.body.certificates.map((c: any) => c.subject)).toEqual(['CN=Tenant B members CA']);
    const members = await app.admin('GET', '/v1/tenants/tenant-a/pools/web/members');
    expect(members.body.items.map((m: any) => `${m.address}:${m.port}`)).toEqual(['10.0.1.11:8080', '10.0.1.12:8080']);
  });

  it('on two 8 vCPU / 16 GB nodes, a fourth tenant is refused with the 409 message docs/capacity.md prints', async () => {
    const doc = readFileSync(new URL('../../docs/capacity.md', import.meta.url), 'utf8');
    const section = doc.slice(doc.indexOf('## Placement'));
    const printed = /"message":"([^"]*)"/.exec(section.replace(/\n#\s+/g, ' '))![1];
    for (const name of ['edge-1', 'edge-2']) {
      const res = await app.admin('POST', '/v1/nodes', {
        name,
        kind: 'haproxy',
        capacity: { vcpu: 8, memoryMb: 16384 },
      });
      expect(res.status).toBe(201);
    }
    const res = await app.admin('POST', '/v1/tenants', { id: 'd', reservation: { vcpu: 2, memoryMb: 1024 } });
    expect(res.status).toBe(409);
    expect(res.body.error).toMatchObject({ code: 'conflict', message: printed });
  });
});
