import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/app.js';
import { makeCert } from '../support/certs.js';
import { TestPki, type Issued } from '../support/openssl.js';
import { currentRevision } from '../support/fixture.js';

/** TLS to pool members through the API: CA bundles, pool `tls`, and every rule that refuses bad input. */
let app: TestApp;
let pki: TestPki;
let ca: Issued;
const client = makeCert('client.a.internal');

beforeAll(async () => {
  app = await startTestApp();
  pki = await TestPki.create();
  ca = await pki.root('Tenant A member CA');
  for (const id of ['a', 'b']) expect((await app.admin('POST', '/v1/tenants', { id })).status).toBe(201);
  expect((await app.admin('POST', '/v1/tenants/a/ca-bundles', { name: 'members', certificates: ca.cert })).status).toBe(
    201,
  );
  expect((await app.admin('POST', '/v1/tenants/a/certificates', { name: 'client', ...client })).status).toBe(201);
  expect((await app.admin('POST', '/v1/tenants/b/ca-bundles', { name: 'b-only', certificates: ca.cert })).status).toBe(
    201,
  );
});
afterAll(async () => {
  await app?.stop();
  await pki?.dispose();
});

const revision = () => currentRevision(app);

/** Sends a write that must be refused with 400 naming `field`, and checks that nothing was committed. */
async function refused(method: string, path: string, body: unknown, field: string): Promise<string> {
  const before = await revision();
  const res = await app.admin(method, path, body);
  expect(res.status, JSON.stringify(res.body)).toBe(400);
  expect(res.body.error.details.map((d: { path: string }) => d.path)).toContain(field);
  expect(await revision()).toBe(before);
  return res.body.error.message as string;
}

const TLS = { caBundle: 'members', sni: { from: 'fixed', name: 'api.a.internal' } };

describe('CA bundles', () => {
  it("answers a bundle with each certificate's subject, expiry and fingerprint, never the PEM", async () => {
    const res = await app.admin('GET', '/v1/tenants/a/ca-bundles/members');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      name: 'members',
      certificates: [
        {
          subject: 'CN=Tenant A member CA',
          notAfter: expect.any(String),
          fingerprintSha256: expect.stringMatching(/^[0-9A-F:]{95}$/),
        },
      ],
      notAfter: res.body.certificates[0].notAfter,
      revision: expect.any(Number),
      createdAt: expect.any(String),
      updatedAt: expect.any(String),
    });
    expect(res.headers.get('etag')).toBe(`"${res.body.revision}"`);
  });

  it('refuses text that is not PEM certificates, and an expired CA, naming body.certificates', async () => {
    await refused('POST', '/v1/tenants/a/ca-bundles', { name: 'junk', certificates: 'hello' }, 'body.certificates');
    await refused(
      'POST',
      '/v1/tenants/a/ca-bundles',
      { name: 'junk', certificates: client.privateKey },
      'body.certificates',
    );
    const expired = await pki.issue('Old CA', ca, {
      ca: true,
      startDate: '20200101000000Z',
      endDate: '20210101000000Z',
    });
    const message = await refused(
      'POST',
      '/v1/tenants/a/ca-bundles',
      { name: 'old', certificates: expired.cert },
      'body.certificates',
    );
    expect(message).toContain('expired');
  });

  it('replaces the certificates under the same name, and a repeated upload commits nothing', async () => {
    const other = await pki.root('Rotated CA');
    expect(
      (await app.admin('POST', '/v1/tenants/a/ca-bundles', { name: 'rotating', certificates: ca.cert })).status,
    ).toBe(201);
    const put = await app.admin('PUT', '/v1/tenants/a/ca-bundles/rotating', {
      certificates: `${ca.cert}${other.cert}`,
    });
    expect(put.status).toBe(200);
    expect(put.body.certificates.map((c: { subject: string }) => c.subject)).toEqual([
      'CN=Tenant A member CA',
      'CN=Rotated CA',
    ]);
    const before = await revision();
    const again = await app.admin('PUT', '/v1/tenants/a/ca-bundles/rotating', {
      certificates: `${ca.cert}${other.cert}`,
    });
    expect(again.status).toBe(200);
    expect(await revision()).toBe(before);
  });
});

describe('pool tls', () => {
  it('defaults to verify required and shows every setting, and verify none only when chosen', async () => {
    const res = await app.admin('POST', '/v1/tenants/a/pools', {
      name: 'secure',
      tls: { ...TLS, clientCertificate: 'client', alpn: ['http/1.1', 'h2'] },
    });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.body.tls).toEqual({
      verify: 'required',
      caBundle: 'members',
      sni: { from: 'fixed', name: 'api.a.internal' },
      clientCertificate: 'client',
      alpn: ['h2', 'http/1.1'],
    });
    const insecure = await app.admin('POST', '/v1/tenants/a/pools', { name: 'insecure', tls: { verify: 'none' } });
    expect(insecure.body.tls).toEqual({ verify: 'none', caBundle: null, sni: null, clientCertificate: null, alpn: [] });
    const plain = await app.admin('POST', '/v1/tenants/a/pools', { name: 'plain' });
    expect(plain.body.tls).toBeNull();
    expect((await app.admin('GET', '/v1/tenants/a/pools/secure')).body.tls).toEqual(res.body.tls);
  });

  it('refuses each bad setting with a 400 naming its field, and commits nothing', async () => {
    const post = (tls: unknown) => ['POST', '/v1/tenants/a/pools', { name: 'bad', tls }] as const;
    await refused(...post({ verify: 'sometimes', ...TLS }), 'body.tls.verify');
    await refused(...post({ caBundle: 'members' }), 'body.tls.sni');
    await refused(...post({ ...TLS, sni: { from: 'fixed', name: 'bad host;name' } }), 'body.tls.sni.name');
    await refused(...post({ ...TLS, sni: { from: 'header' } }), 'body.tls.sni.from');
    await refused(...post({ ...TLS, alpn: ['h3'] }), 'body.tls.alpn.0');
    await refused(...post({ ...TLS, alpn: ['h2'] }), 'body.tls.alpn');
    await refused(...post({ ...TLS, alpn: ['http/1.1', 'http/1.1'] }), 'body.tls.alpn');
    await refused(...post({ verify: 'none', caBundle: 'members' }), 'body.tls.caBundle');
    await refused(...post({ ...TLS, caBundle: 'Not A Slug' }), 'body.tls.caBundle');
    await refused(...post({ ...TLS, ciphers: 'ALL' }), 'body.tls.ciphers');
  });

  it("names only the tenant's own CA bundle and certificate: another tenant's is as absent as a missing one", async () => {
    const theirs = await refused(
      'POST',
      '/v1/tenants/a/pools',
      { name: 'x', tls: { ...TLS, caBundle: 'b-only' } },
      'body.tls.caBundle',
    );
    const missing = await refused(
      'POST',
      '/v1/tenants/a/pools',
      { name: 'x', tls: { ...TLS, caBundle: 'nope' } },
      'body.tls.caBundle',
    );
    expect(theirs.replace('b-only', 'X')).toBe(missing.replace('nope', 'X'));
    await refused(
      'POST',
      '/v1/tenants/b/pools',
      { name: 'x', tls: { ...TLS, caBundle: 'b-only', clientCertificate: 'client' } },
      'body.tls.clientCertificate',
    );
  });

  it('refuses an https check on plain members (create and patch), naming the field that made it so', async () => {
    await refused(
      'POST',
      '/v1/tenants/a/pools',
      { name: 'x', healthCheck: { type: 'https' } },
      'body.healthCheck.type',
    );
    await refused('PATCH', '/v1/tenants/a/pools/plain', { healthCheck: { type: 'https' } }, 'body.healthCheck.type');
    const ok = await app.admin('POST', '/v1/tenants/a/pools', {
      name: 'checked',
      healthCheck: { type: 'https', path: '/healthz' },
      tls: TLS,
    });
    expect(ok.status, JSON.stringify(ok.body)).toBe(201);
    await refused('PATCH', '/v1/tenants/a/pools/checked', { tls: null }, 'body.tls');
    const both = await app.admin('PATCH', '/v1/tenants/a/pools/checked', { tls: null, healthCheck: { type: 'http' } });
    expect(both.status).toBe(200);
    expect(both.body).toMatchObject({ tls: null, healthCheck: { type: 'http' } });
  });

  it('keeps TLS members away from tcp VIPs, which pass bytes through', async () => {
    await refused(
      'POST',
      '/v1/tenants/a/vips',
      { name: 'raw', address: '192.168.5.1', port: 5000, protocol: 'tcp', defaultPool: 'secure' },
      'body.defaultPool',
    );
    expect(
      (
        await app.admin('POST', '/v1/tenants/a/vips', {
          name: 'raw',
          address: '192.168.5.1',
          port: 5000,
          protocol: 'tcp',
          defaultPool: 'plain',
        })
      ).status,
    ).toBe(201);
    await refused('PATCH', '/v1/tenants/a/pools/plain', { tls: { verify: 'none' } }, 'body.tls');
    const http = await app.admin('POST', '/v1/tenants/a/vips', {
      name: 'www',
      address: '192.168.5.1',
      port: 80,
      protocol: 'http',
      defaultPool: 'secure',
    });
    expect(http.status).toBe(201);
  });

  it('refuses to delete a CA bundle or certificate a pool uses (409), and allows it once no pool does', async () => {
    const bundle = await app.admin('DELETE', '/v1/tenants/a/ca-bundles/members');
    expect(bundle.status).toBe(409);
    expect(bundle.body.error.message).toContain("pool(s) 'secure'");
    const cert = await app.admin('DELETE', '/v1/tenants/a/certificates/client');
    expect(cert.status).toBe(409);
    expect(cert.body.error.message).toContain('client certificate of pool(s)');
    expect((await app.admin('DELETE', '/v1/tenants/a/ca-bundles/rotating')).status).toBe(200);
  });

  it('puts the settings into the rendered HAProxy and NGINX parts the tenant previews', async () => {
    expect(
      (
        await app.admin('PUT', '/v1/tenants/a/pools/secure/members', {
          members: [{ name: 'm1', address: '10.0.0.1', port: 8443 }],
        })
      ).status,
    ).toBe(200);
    const haproxy = await app.admin('GET', '/v1/tenants/a/render?kind=haproxy');
    expect(haproxy.status, JSON.stringify(haproxy.body)).toBe(200);
    const cfg = JSON.stringify(haproxy.body);
    expect(cfg).toContain('member-tls/a/ca/members.pem sni str(api.a.internal) alpn h2,http/1.1 crt ');
    const nginx = JSON.stringify((await app.admin('GET', '/v1/tenants/a/render?kind=nginx')).body);
    expect(nginx).toContain('proxy_pass https://t_a_secure;');
    expect(nginx).toContain('proxy_ssl_name api.a.internal;');
  });
});
