import { createPrivateKey, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CertificateService } from '../../src/services/certificate-service.js';
import { SecretBoxError } from '../../src/services/secret-box.js';
import { startTestApp, type ApiResponse, type TestApp } from '../support/app.js';
import { TestPki, type Issued } from '../support/openssl.js';

let app: TestApp;
let pki: TestPki;
let intermediate: Issued;
let web: Issued;
let webRenewed: Issued;
let api: Issued;
let expired: Issued;

beforeAll(async () => {
  [app, pki] = await Promise.all([startTestApp(), TestPki.create()]);
  const root = await pki.root();
  intermediate = await pki.issue('Switchyard Test Intermediate', root, { ca: true });
  [web, webRenewed, api, expired] = await Promise.all([
    pki.issue('web.acme.example', intermediate, { kind: 'rsa', sans: ['DNS:web.acme.example', 'DNS:*.acme.example'] }),
    pki.issue('web.acme.example', intermediate, { sans: ['DNS:web.acme.example', 'DNS:www.acme.example'] }),
    pki.issue('api.acme.example', root, { sans: ['DNS:api.acme.example', 'IP:192.0.2.10'] }),
    pki.issue('old.acme.example', root, {
      sans: ['DNS:old.acme.example'],
      startDate: '20200101000000Z',
      endDate: '20200201000000Z',
    }),
  ]);
  for (const id of ['acme', 'globex']) expect((await app.admin('POST', '/v1/tenants', { id })).status).toBe(201);
});
afterAll(async () => {
  await Promise.all([app?.stop(), pki?.dispose()]);
});

const base = '/v1/tenants/acme/certificates';
const upload = (name: string, issued: Issued, chain = '') => ({
  name,
  certificate: issued.cert + chain,
  privateKey: issued.key,
});

/** No answer may ever carry key material, in plaintext or sealed. */
function expectNoKeyMaterial(res: ApiResponse): void {
  const text = JSON.stringify(res.body);
  expect(text).not.toContain('PRIVATE KEY');
  expect(text).not.toMatch(/v1:[A-Za-z0-9+/=]+:/);
  expect(text).not.toContain('privateKey');
}

async function storedRow(tenant: string, name: string) {
  return app.database.handle.db
    .selectFrom('certificates')
    .selectAll()
    .where('tenant_id', '=', tenant)
    .where('name', '=', name)
    .executeTakeFirstOrThrow();
}

describe('certificates', () => {
  it('uploads a chain with an intermediate and answers SANs, expiry and an ETag, never the key', async () => {
    const res = await app.admin('POST', base, upload('web', web, intermediate.cert));
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({
      name: 'web',
      sans: ['*.acme.example', 'web.acme.example'],
      subject: 'CN=web.acme.example',
      issuer: 'CN=Switchyard Test Intermediate',
      fingerprintSha256: expect.stringMatching(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/),
    });
    expect(Date.parse(res.body.notAfter)).toBeGreaterThan(Date.now());
    expect(Date.parse(res.body.notBefore)).toBeLessThan(Date.now());
    expect(Object.keys(res.body).sort()).toEqual([
      'createdAt',
      'fingerprintSha256',
      'issuer',
      'name',
      'notAfter',
      'notBefore',
      'revision',
      'sans',
      'subject',
      'updatedAt',
    ]);
    expect(res.headers.get('etag')).toBe(`"${res.body.revision}"`);
    expectNoKeyMaterial(res);
    const got = await app.admin('GET', `${base}/web`);
    expect(got.status).toBe(200);
    expect(got.body).toEqual(res.body);
    expectNoKeyMaterial(got);
  });

  it('stores the key encrypted: the row holds a v1 ciphertext, not the PEM', async () => {
    const row = await storedRow('acme', 'web');
    expect(row.key_ciphertext).toMatch(/^v1:[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+$/);
    expect(row.key_ciphertext).not.toContain('PRIVATE KEY');
    expect(row.chain_pem.match(/BEGIN CERTIFICATE/g)).toHaveLength(2);
    expect(row.chain_pem).not.toContain('PRIVATE KEY');
  });

  it('when stray shell text surrounds the PEM blocks, then none of it is stored', async () => {
    const res = await app.admin('POST', base, {
      name: 'api',
      certificate: `$ cat api.crt; echo "pwned" > /etc/haproxy/haproxy.cfg\n${api.cert}\n# end of chain\n`,
      privateKey: `$ cat api.key\n${api.key}\ndone\n`,
    });
    expect(res.status).toBe(201);
    expect(res.body.sans).toEqual(['192.0.2.10', 'api.acme.example']);
    const row = await storedRow('acme', 'api');
    expect(row.chain_pem).toMatch(/^-----BEGIN CERTIFICATE-----\n[A-Za-z0-9+/=\n]+-----END CERTIFICATE-----\n$/);
    // Line by line, never as substrings: fresh certificates' base64 can contain "cat" by chance.
    const lines = new Set(row.chain_pem.split('\n'));
    for (const stray of ['$ cat api.crt; echo "pwned" > /etc/haproxy/haproxy.cfg', '# end of chain'])
      expect(lines.has(stray)).toBe(false);
  });

  it('lists the tenant certificates by name, with paging', async () => {
    const page1 = await app.admin('GET', `${base}?limit=1`);
    expect(page1.status).toBe(200);
    expect(page1.body.items.map((c: { name: string }) => c.name)).toEqual(['api']);
    expectNoKeyMaterial(page1);
    const page2 = await app.admin('GET', `${base}?limit=1&cursor=${page1.body.nextCursor}`);
    expect(page2.body.items.map((c: { name: string }) => c.name)).toEqual(['web']);
    expect(page2.body.nextCursor).toBeNull();
    expect((await app.admin('GET', '/v1/tenants/globex/certificates')).body.items).toEqual([]);
  });

  it('refuses a duplicate name with 409', async () => {
    const res = await app.admin('POST', base, upload('web', web, intermediate.cert));
    expect(res.status).toBe(409);
    expect(res.body.error.message).toMatch(/already exists; rotate it with PUT/);
  });

  it.each([
    [
      'a certificate that is not PEM',
      { certificate: 'hello', privateKey: 'x' },
      'body.certificate',
      /BEGIN CERTIFICATE/,
    ],
    ['a private key that is not PEM', { privateKey: 'not a key' }, 'body.privateKey', /unencrypted PEM private key/],
    ['a key that does not match the leaf', { privateKey: 'API_KEY' }, 'body.privateKey', /does not match/],
    ['a chain in the wrong order', { certificate: 'INTERMEDIATE_FIRST' }, 'body.certificate', /did not issue/],
  ])('refuses %s with 400 naming the field', async (_label, override, path, message) => {
    const body: Record<string, string> = { ...upload('bad', web), ...override };
    if (body.privateKey === 'API_KEY') body.privateKey = api.key;
    if (body.certificate === 'INTERMEDIATE_FIRST') body.certificate = intermediate.cert + web.cert;
    const res = await app.admin('POST', base, body);
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('validation_failed');
    expect(res.body.error.details).toEqual([{ path, message: expect.stringMatching(message) }]);
    expect((await app.admin('GET', `${base}/bad`)).status).toBe(404);
  });

  it('refuses an expired certificate with 400 naming body.certificate and when it expired', async () => {
    const res = await app.admin('POST', base, upload('old', expired));
    expect(res.status).toBe(400);
    expect(res.body.error.details).toEqual([
      { path: 'body.certificate', message: 'the certificate expired on 2020-02-01T00:00:00.000Z' },
    ]);
  });

  it('validates the name and refuses unknown fields', async () => {
    const res = await app.admin('POST', base, { ...upload('Bad Name', web), chain: 'x' });
    expect(res.status).toBe(400);
    const paths = res.body.error.details.map((d: { path: string }) => d.path);
    expect(paths).toEqual(expect.arrayContaining(['body.name', 'body.chain']));
  });

  it('rotates with PUT: new chain and key, same name, a new revision; If-Match honoured', async () => {
    const before = await app.admin('GET', `${base}/web`);
    const etag = before.headers.get('etag')!;
    const put = { certificate: webRenewed.cert + intermediate.cert, privateKey: webRenewed.key };
    const res = await app.admin('PUT', `${base}/web`, put, { 'if-match': etag });
    expect(res.status).toBe(200);
    expect(res.body.name).toBe('web');
    expect(res.body.sans).toEqual(['web.acme.example', 'www.acme.example']);
    expect(res.body.fingerprintSha256).not.toBe(before.body.fingerprintSha256);
    expect(res.body.revision).toBeGreaterThan(before.body.revision);
    expect(res.body.createdAt).toBe(before.body.createdAt);
    expectNoKeyMaterial(res);
    const stale = await app.admin(
      'PUT',
      `${base}/web`,
      { certificate: web.cert, privateKey: web.key },
      { 'if-match': etag },
    );
    expect(stale.status).toBe(412);
    expect((await app.admin('GET', `${base}/web`)).body.fingerprintSha256).toBe(res.body.fingerprintSha256);
  });

  it('does not bump the revision when the same chain is uploaded again', async () => {
    const before = await app.admin('GET', `${base}/web`);
    const res = await app.admin('PUT', `${base}/web`, {
      certificate: webRenewed.cert + intermediate.cert,
      privateKey: webRenewed.key,
    });
    expect(res.status).toBe(200);
    expect(res.body.revision).toBe(before.body.revision);
  });

  it('answers 404 to a rotation of a certificate that does not exist, and 400 to a bad one', async () => {
    expect((await app.admin('PUT', `${base}/nope`, { certificate: web.cert, privateKey: web.key })).status).toBe(404);
    const bad = await app.admin('PUT', `${base}/web`, { certificate: web.cert, privateKey: api.key });
    expect(bad.status).toBe(400);
    expect(bad.body.error.details[0].path).toBe('body.privateKey');
  });

  it('records audit events without key material', async () => {
    const rows = await app.database.handle.db
      .selectFrom('audit_events')
      .selectAll()
      .where('resource_type', '=', 'certificate')
      .orderBy('id')
      .execute();
    expect(rows.map((r) => [r.action, r.resource_id, r.tenant_id])).toEqual([
      ['create', 'acme/certificates/web', 'acme'],
      ['create', 'acme/certificates/api', 'acme'],
      ['update', 'acme/certificates/web', 'acme'],
    ]);
    const text = JSON.stringify(rows);
    expect(text).not.toContain('PRIVATE KEY');
    expect(text).not.toMatch(/v1:[A-Za-z0-9+/=]+:/);
  });

  it('gives the renderer the decrypted material, which round-trips', async () => {
    const service = app.cp.services.certificates;
    const one = await service.loadMaterial(app.database.handle.db, 'acme', 'web');
    expect(one.name).toBe('web');
    expect(one.sans).toEqual(['web.acme.example', 'www.acme.example']);
    expect(one.chainPem.match(/BEGIN CERTIFICATE/g)).toHaveLength(2);
    // The decrypted key is the uploaded one (normalised to PKCS#8).
    const uploaded = createPrivateKey(webRenewed.key).export({ type: 'pkcs8', format: 'pem' }).toString();
    expect(one.keyPem).toBe(uploaded);
    const all = await service.listMaterial('acme');
    expect(all.map((m) => m.name)).toEqual(['api', 'web']);
    expect(all[0]!.keyPem).toBe(createPrivateKey(api.key).export({ type: 'pkcs8', format: 'pem' }).toString());
    expect(await service.listMaterial('globex')).toEqual([]);
    await expect(service.loadMaterial(app.database.handle.db, 'globex', 'web')).rejects.toThrow(
      /certificate 'web' not found/,
    );
  });

  it('when the secret key is wrong, then loading material fails loudly', async () => {
    const wrong = new CertificateService(app.database.handle.db, randomBytes(32));
    await expect(wrong.loadMaterial(app.database.handle.db, 'acme', 'web')).rejects.toThrow(SecretBoxError);
    await expect(wrong.listMaterial('acme')).rejects.toThrow(/SWITCHYARD_SECRET_KEY/);
  });

  it('lets a tenant-viewer read but not write, and hides the tenant from another tenant', async () => {
    const viewer = app.as(await app.token('tenant-viewer', { tenant: 'acme' }));
    expect((await viewer('GET', `${base}/web`)).status).toBe(200);
    expect((await viewer('POST', base, upload('v', api))).status).toBe(403);
    expect((await viewer('DELETE', `${base}/api`)).status).toBe(403);
    const other = app.as(await app.token('tenant-admin', { tenant: 'globex' }));
    for (const [method, path] of [
      ['GET', base],
      ['GET', `${base}/web`],
      ['DELETE', `${base}/web`],
    ] as const) {
      const res = await other(method, path);
      expect(res.status).toBe(404);
      expect(res.body.error.message).toBe("tenant 'acme' not found");
    }
    expect((await other('PUT', `${base}/web`, { certificate: web.cert, privateKey: web.key })).status).toBe(404);
  });

  it('refuses to delete a certificate a VIP serves, naming the VIP', async () => {
    await app.database.handle.db
      .insertInto('vips')
      .values({
        tenant_id: 'acme',
        name: 'shop',
        address: '192.0.2.80',
        port: 443,
        protocol: 'https',
        hostnames: JSON.stringify(['web.acme.example']),
        certificate: 'web',
        persistence: 'none',
        cookie_name: 'SRVID',
        timeouts: JSON.stringify({ clientMs: 30000, serverMs: 30000, connectMs: 5000 }),
        allowlist: '[]',
        revision: 1,
      })
      .execute();
    const res = await app.admin('DELETE', `${base}/web`);
    expect(res.status).toBe(409);
    expect(res.body.error.message).toMatch(/served by VIP\(s\) 'shop'/);
    expect(res.body.error.details).toEqual({ vips: ['shop'] });
    expect((await app.admin('GET', `${base}/web`)).status).toBe(200);
  });

  it('deletes an unused certificate with If-Match, then answers 404', async () => {
    const current = await app.admin('GET', `${base}/api`);
    expect((await app.admin('DELETE', `${base}/api`, undefined, { 'if-match': '"1"' })).status).toBe(412);
    const res = await app.admin('DELETE', `${base}/api`, undefined, { 'if-match': current.headers.get('etag')! });
    expect(res.status).toBe(200);
    expect(res.body.revision).toBeGreaterThan(current.body.revision);
    expect((await app.admin('GET', `${base}/api`)).status).toBe(404);
    expect((await app.admin('DELETE', `${base}/api`)).status).toBe(404);
  });

  it('replays an Idempotency-Key upload without creating anything', async () => {
    const headers = { 'idempotency-key': 'cert-upload-1' };
    const first = await app.admin('POST', base, upload('api2', api), headers);
    expect(first.status).toBe(201);
    const again = await app.admin('POST', base, upload('api2', api), headers);
    expect(again.status).toBe(201);
    expect(again.body).toEqual(first.body);
    expectNoKeyMaterial(again);
  });
});
