import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allRoutes } from '../../src/api/registry.js';
import { startTestApp, type TestApp } from '../support/app.js';
import { currentRevision, fillPath, seedTenantA } from '../support/fixture.js';
import type { TestCert } from '../support/certs.js';

/** Strings that could leave a directive in a proxy config, or confuse a parser, or a database. */
const HOSTILE: readonly string[] = [
  'a\nb',
  'a\r\nbind :1',
  'x;y',
  'x{',
  '}',
  '#x',
  '"',
  "'",
  '\\',
  '$x',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell variable, sent as text on purpose.
  '${HOME}',
  'a b',
  'a\tb',
  'a\u0000b',
  '\u0085',
  '\u2028',
  'ｗｅｂ',
  'аpi',
  'weｂ',
  '%0a',
  '',
  ' ',
  'x'.repeat(1_000_000),
];
/** Control characters and oversize values are refused even in free text. */
const REFUSED_IN_FREE_TEXT: readonly string[] = [
  'a\nb',
  'a\r\nbind :1',
  'a\tb',
  'a\u0000b',
  '\u0085',
  '\u2028',
  '',
  ' ',
  'x'.repeat(1_000_000),
];
const FREE_TEXT_FIELDS = new Set(['displayName', 'proxyVersion', 'agentVersion', 'reason']);
/** A proxy's error output spans lines; only NUL and oversize values are refused there. */
const MESSAGE_FIELDS = new Set(['error']);
const REFUSED_IN_MESSAGES: readonly string[] = ['a\u0000b', '', 'x'.repeat(1_000_000)];

/** The two walks send every hostile value to every field of every body: they grow with the API. */
const WALK_TIMEOUT_MS = 120_000;

let app: TestApp;
let cert: TestCert;
let validBodies: Record<string, unknown>;

beforeAll(async () => {
  app = await startTestApp();
  ({ cert } = await seedTenantA(app));
  expect(
    (await app.admin('POST', '/v1/nodes', { name: 'edge-1', kind: 'haproxy', capacity: { vcpu: 4, memoryMb: 8192 } }))
      .status,
  ).toBe(201);
  validBodies = {
    'POST /v1/tenants': {
      id: 'newt',
      displayName: 'New',
      reservation: { vcpu: 1, memoryMb: 1024 },
      limit: { vcpu: 2, memoryMb: 2048 },
      weight: 10,
      labels: { env: 'prod' },
    },
    'PATCH /v1/tenants/:tenant': { displayName: 'Acme', weight: 5, labels: { team: 'web' } },
    'POST /v1/tenants/:tenant/approve': { reason: 'ok' },
    'POST /v1/tenants/:tenant/reject': { reason: 'no' },
    'POST /v1/tenants/:tenant/vips': {
      name: 'v2',
      address: '192.168.1.120',
      port: 8080,
      protocol: 'http',
      hostnames: ['a.example.com'],
      persistence: 'cookie',
      cookieName: 'SID',
      timeouts: { clientMs: 1000 },
      allowlist: ['10.0.0.0/8'],
      defaultPool: 'web',
    },
    'PATCH /v1/tenants/:tenant/vips/:vip': {
      hostnames: ['b.example.com'],
      allowlist: ['10.0.0.1'],
      cookieName: 'SID2',
    },
    'POST /v1/tenants/:tenant/vips/:vip/routes': {
      name: 'r2',
      priority: 5,
      match: { host: 'x.example.com', pathPrefix: '/p', header: { name: 'X-A', value: 'b' } },
      pool: 'web',
    },
    'PATCH /v1/tenants/:tenant/vips/:vip/routes/:route': { match: { pathPrefix: '/q', host: '*.example.com' } },
    'POST /v1/tenants/:tenant/pools': {
      name: 'p2',
      algorithm: 'leastconn',
      healthCheck: {
        type: 'https',
        path: '/health',
        expectedStatus: '200-399',
        host: 'h.example.com',
        intervalMs: 2000,
        timeoutMs: 500,
        rise: 2,
        fall: 3,
      },
      tls: {
        verify: 'required',
        caBundle: 'members',
        sni: { from: 'fixed', name: 'api.internal' },
        clientCertificate: 'shop',
        alpn: ['h2', 'http/1.1'],
      },
    },
    'PATCH /v1/tenants/:tenant/pools/:pool': { healthCheck: { type: 'http', path: '/h' } },
    'POST /v1/tenants/:tenant/pools/:pool/members': {
      name: 'm2',
      address: '10.0.0.2',
      port: 80,
      weight: 5,
      state: 'drain',
      backup: true,
    },
    'PUT /v1/tenants/:tenant/pools/:pool/members': {
      members: [{ name: 'm1', address: '10.0.0.1', port: 8080, weight: 7 }],
    },
    'PATCH /v1/tenants/:tenant/pools/:pool/members/:member': { weight: 3, state: 'disabled' },
    'POST /v1/tenants/:tenant/certificates': { name: 'c2', ...cert },
    'PUT /v1/tenants/:tenant/certificates/:certificate': { ...cert },
    'POST /v1/tenants/:tenant/ca-bundles': { name: 'b2', certificates: cert.certificate },
    'PUT /v1/tenants/:tenant/ca-bundles/:bundle': { certificates: cert.certificate },
    'POST /v1/address-pools': { name: 'ap', cidr: '10.50.0.0/24' },
    'POST /v1/nodes': {
      name: 'n1',
      kind: 'haproxy',
      group: 'g',
      zone: 'z',
      runtimeAddress: { host: '127.0.0.1', port: 9999 },
      capacity: { vcpu: 4, memoryMb: 8192 },
      configDir: '/etc/switchyard/n1',
    },
    'PATCH /v1/nodes/:node': { zone: 'z2', capacity: { vcpu: 8, memoryMb: 16384 } },
    'POST /v1/nodes/:node/status': { event: 'failed', error: 'x', proxyVersion: 'HAProxy 2.6', agentVersion: '0.1.0' },
    'POST /v1/tokens': { name: 'tk', role: 'tenant-viewer', tenant: 'a' },
  };
});
afterAll(async () => {
  await app?.stop();
});

type Leaf = { path: (string | number)[]; value: unknown };

function leaves(value: unknown, path: (string | number)[] = []): Leaf[] {
  if (Array.isArray(value)) return value.flatMap((v, i) => leaves(v, [...path, i]));
  if (typeof value === 'object' && value !== null)
    return Object.entries(value).flatMap(([k, v]) => leaves(v, [...path, k]));
  return [{ path, value }];
}

function replaced(body: unknown, path: (string | number)[], value: unknown): unknown {
  const copy = structuredClone(body) as Record<string | number, unknown>;
  let node: Record<string | number, unknown> = copy;
  for (const p of path.slice(0, -1)) node = node[p] as Record<string | number, unknown>;
  node[path[path.length - 1]!] = value;
  return copy;
}

/** The `cursor` field of a route's query schema, if it pages. */
const cursorField = (query: unknown): unknown =>
  (query as { shape?: Record<string, unknown> } | undefined)?.shape?.cursor;

const writeRoutes = () => allRoutes(app.cp.services).filter((r) => r.body !== undefined);
const routeKey = (r: { method: string; path: string }) => `${r.method.toUpperCase()} ${r.path}`;

describe('hostile input', () => {
  it('has a valid body for every route that takes one', () => {
    expect(
      writeRoutes()
        .map(routeKey)
        .filter((k) => !(k in validBodies)),
    ).toEqual([]);
  });

  it(
    'refuses a hostile string in every field of every body with 400 (or 413), never 500, and changes nothing',
    async () => {
      const before = await currentRevision(app);
      let checked = 0;
      for (const r of writeRoutes()) {
        const body = validBodies[routeKey(r)];
        for (const leaf of leaves(body)) {
          if (typeof leaf.value !== 'string') continue;
          const field = String(leaf.path[leaf.path.length - 1]);
          const free = FREE_TEXT_FIELDS.has(field);
          // An empty label value is a legitimate value ("present, no value"), as in Kubernetes.
          const isLabelValue = leaf.path.includes('labels');
          const corpus = MESSAGE_FIELDS.has(field) ? REFUSED_IN_MESSAGES : free ? REFUSED_IN_FREE_TEXT : HOSTILE;
          for (const bad of corpus.filter((v) => !(isLabelValue && v === ''))) {
            const res = await app.admin(r.method.toUpperCase(), fillPath(r.path), replaced(body, leaf.path, bad));
            const where = `${routeKey(r)} ${leaf.path.join('.')}=${JSON.stringify(bad.slice(0, 20))}`;
            expect([400, 413], `${where} → ${res.status} ${JSON.stringify(res.body).slice(0, 300)}`).toContain(
              res.status,
            );
            if (res.status === 400) {
              expect(res.body.error.code, where).toBe('validation_failed');
              expect(res.body.error.details.length, where).toBeGreaterThan(0);
            }
            checked++;
          }
        }
      }
      expect(checked).toBeGreaterThan(500);
      expect(await currentRevision(app)).toBe(before);
    },
    WALK_TIMEOUT_MS,
  );

  it(
    'refuses wrong types, out-of-range numbers and unknown fields with 400 naming the field',
    async () => {
      const before = await currentRevision(app);
      for (const r of writeRoutes()) {
        const body = validBodies[routeKey(r)];
        for (const leaf of leaves(body)) {
          const wrong: unknown[] =
            typeof leaf.value === 'string'
              ? [12345, true, {}, []]
              : typeof leaf.value === 'number'
                ? ['80', -1, 1e308, 1.5, {}]
                : ['yes', 1];
          for (const bad of wrong) {
            // A few numbers are legitimately fractional (vCPU); 1.5 is valid there.
            if (bad === 1.5 && leaf.path.includes('vcpu')) continue;
            const res = await app.admin(r.method.toUpperCase(), fillPath(r.path), replaced(body, leaf.path, bad));
            const where = `${routeKey(r)} ${leaf.path.join('.')}=${JSON.stringify(bad)}`;
            expect(res.status, `${where} → ${JSON.stringify(res.body).slice(0, 300)}`).toBe(400);
            const paths = res.body.error.details.map((d: { path: string }) => d.path);
            expect(
              paths.some((p: string) => p.startsWith(`body.${leaf.path.join('.')}`)),
              `${where} names ${paths}`,
            ).toBe(true);
          }
        }
        const extra = await app.admin(r.method.toUpperCase(), fillPath(r.path), { ...(body as object), bogus: 1 });
        expect(extra.status).toBe(400);
        expect(extra.body.error.details).toContainEqual({ path: 'body.bogus', message: 'unknown field' });
      }
      expect(await currentRevision(app)).toBe(before);
    },
    WALK_TIMEOUT_MS,
  );

  it('refuses malformed JSON, non-object bodies and hostile path parameters without a 500', async () => {
    const raw = await fetch(`${app.url}/v1/tenants`, {
      method: 'POST',
      headers: { authorization: `Bearer ${app.adminToken}`, 'content-type': 'application/json' },
      body: '{"id": "x",',
    });
    expect(raw.status).toBe(400);
    expect(((await raw.json()) as { error: { code: string } }).error.code).toBe('invalid_json');
    for (const body of ['"a string"', '[]', '42', 'null']) {
      const res = await app.admin('POST', '/v1/tenants', body);
      expect(res.status, body).toBe(400);
    }
    for (const seg of ['a%0Ab', 'a%3Bb', '%7B', 'a%00', '%D0%B0pi', 'A', '..', 'x'.repeat(300)]) {
      const res = await app.admin('GET', `/v1/tenants/${seg}/vips`);
      expect([400, 404], seg).toContain(res.status);
    }
  });

  it('refuses a cursor no page could have given, on every paged list, with 400 naming query.cursor', async () => {
    const paged = allRoutes(app.cp.services).filter((r) => r.method === 'get' && cursorField(r.query) !== undefined);
    // The nine name-keyed lists, the audit log (event ids) and the allocations (tenant/node).
    expect(paged.map((r) => r.path).sort()).toEqual([
      '/v1/address-pools',
      '/v1/allocations',
      '/v1/audit',
      '/v1/nodes',
      '/v1/tenants',
      '/v1/tenants/:tenant/ca-bundles',
      '/v1/tenants/:tenant/certificates',
      '/v1/tenants/:tenant/pools',
      '/v1/tenants/:tenant/pools/:pool/members',
      '/v1/tenants/:tenant/vips',
      '/v1/tokens',
    ]);
    for (const r of paged) {
      for (const bad of [
        'a\u0000b',
        '\u0000',
        'web\u2028',
        "a' OR '1'='1",
        '../x',
        'A',
        '-1',
        'x'.repeat(201),
        'a/b/c',
      ]) {
        const res = await app.admin('GET', `${fillPath(r.path)}?cursor=${encodeURIComponent(bad)}`);
        const where = `GET ${r.path}?cursor=${JSON.stringify(bad)}`;
        expect(res.status, `${where} → ${JSON.stringify(res.body).slice(0, 300)}`).toBe(400);
        expect(
          res.body.error.details.map((d: { path: string }) => d.path),
          where,
        ).toEqual(['query.cursor']);
      }
      // A cursor a page gave is still taken.
      const page = await app.admin('GET', `${fillPath(r.path)}?limit=1`);
      expect(page.status, r.path).toBe(200);
      if (page.body.nextCursor !== null) {
        const next = await app.admin(
          'GET',
          `${fillPath(r.path)}?limit=1&cursor=${encodeURIComponent(page.body.nextCursor)}`,
        );
        expect(next.status, `${r.path} next page`).toBe(200);
      }
    }
  });

  it('accepts printable punctuation in free text, which never reaches a config', async () => {
    const res = await app.admin('PATCH', '/v1/tenants/a', { displayName: 'Acme; {"quoted"} #1 $HOME' });
    expect(res.status).toBe(200);
    expect(res.body.displayName).toBe('Acme; {"quoted"} #1 $HOME');
  });

  it('accepts every valid body it mutated above (so the 400s were the mutations’ doing)', async () => {
    // Order matters where one body creates what another changes; creation routes come first in the registry.
    for (const r of writeRoutes()) {
      const res = await app.admin(r.method.toUpperCase(), fillPath(r.path), validBodies[routeKey(r)]);
      // Approving or rejecting with nothing pending is a 409 about state: the body itself was accepted.
      const accepted = /\/(approve|reject)$/.test(r.path) ? [200, 409] : [200, 201];
      expect(accepted, `${routeKey(r)} → ${JSON.stringify(res.body).slice(0, 300)}`).toContain(res.status);
    }
  });
});
