import { execFile } from 'node:child_process';
import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Validator } from '@seriousme/openapi-schema-validator';
import openapiTS, { astToString } from 'openapi-typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PUBLIC_ENDPOINTS } from '../../src/api/app.js';
import { openApiPath } from '../../src/api/openapi.js';
import { allRoutes } from '../../src/api/registry.js';
import { startTestApp, type TestApp } from '../support/app.js';
import { OpenApiConformance } from '../support/openapi-conformance.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

let app: TestApp;
let doc: any;
let work: string;
beforeAll(async () => {
  app = await startTestApp();
  const res = await fetch(`${app.url}/openapi.json`);
  expect(res.status).toBe(200);
  doc = await res.json();
  work = await mkdtemp(join(tmpdir(), 'switchyard-openapi-'));
});
afterAll(async () => {
  await app?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

/** Every route the express app actually dispatches, read from its router stack. */
function mountedRoutes(): string[] {
  const out: string[] = [];
  const walk = (stack: any[]) => {
    for (const layer of stack) {
      if (layer.route) {
        for (const method of Object.keys(layer.route.methods)) out.push(`${method.toUpperCase()} ${layer.route.path}`);
      } else if (layer.handle?.stack) {
        walk(layer.handle.stack);
      }
    }
  };
  walk((app.cp.server.listeners('request')[0] as any).router.stack);
  return out.filter((r) => r.includes(' /v1/') || r.endsWith(' /metrics')).sort();
}

/** Every operation of the document: method, path and the operation object. */
const operations = (): [string, string, any][] =>
  Object.entries(doc.paths as Record<string, Record<string, any>>).flatMap(([path, ops]) =>
    Object.entries(ops).map(([m, op]): [string, string, any] => [m, path, op]),
  );

const publicPaths = new Set(PUBLIC_ENDPOINTS.map((e) => e.path));

describe('OpenAPI document', () => {
  it('is a valid OpenAPI 3.1 document', async () => {
    const result = await new Validator().validate(doc);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    expect(doc.openapi).toBe('3.1.0');
  });

  it('documents every routed endpoint, and routes every documented one', () => {
    const documented = operations()
      .filter(([, path]) => !publicPaths.has(path))
      .map(([m, path]) => `${m.toUpperCase()} ${path}`)
      .sort();
    const routed = mountedRoutes().map((r) => {
      const [method, path] = r.split(' ');
      return `${method} ${openApiPath(path!)}`;
    });
    expect(routed.length).toBeGreaterThan(30);
    expect(documented).toEqual(routed);
    expect(allRoutes(app.cp.services)).toHaveLength(routed.length);
  });

  it('documents the endpoints answered without a token, and they answer as documented', async () => {
    const conformance = new OpenApiConformance(doc);
    expect([...publicPaths].sort()).toEqual(['/healthz', '/openapi.json', '/readyz', '/ui/index.html']);
    for (const path of publicPaths) {
      expect(doc.paths[path].get.security, path).toEqual([]);
      const res = await fetch(`${app.url}${path}`);
      expect(res.status, path).toBe(200);
      const text = await res.text();
      const body = res.headers.get('content-type')?.startsWith('application/json') ? JSON.parse(text) : text;
      expect(
        conformance.problem({
          method: 'GET',
          path,
          status: res.status,
          contentType: res.headers.get('content-type'),
          body,
        }),
      ).toBeNull();
    }
  });

  it('describes request bodies from the zod schemas, with limits and required fields', () => {
    const body = doc.paths['/v1/tenants/{tenant}/vips'].post.requestBody.content['application/json'].schema;
    expect(body.required).toContain('name');
    expect(body.properties.port).toMatchObject({ type: 'integer', minimum: 1, maximum: 65535 });
    expect(body.properties.protocol.enum).toEqual(['http', 'https', 'tcp']);
    expect(body.additionalProperties).toBe(false);
    const params = doc.paths['/v1/tenants/{tenant}/vips/{vip}'].patch.parameters.map((p: any) => `${p.in}:${p.name}`);
    expect(params).toEqual(expect.arrayContaining(['path:tenant', 'path:vip', 'header:If-Match']));
  });

  it('gives every success answer its schema, named where a client wants a type', () => {
    for (const [method, path, op] of operations()) {
      const success = Object.entries(op.responses as Record<string, any>).filter(([status]) => /^[23]/.test(status));
      expect(success.length, `${method} ${path}`).toBeGreaterThan(0);
      for (const [status, response] of success) {
        for (const [type, media] of Object.entries((response.content ?? {}) as Record<string, any>)) {
          // No `{}`: every answer says what it holds.
          expect(Object.keys(media.schema).length, `${method} ${path} ${status} ${type}`).toBeGreaterThan(0);
        }
      }
    }
    const json = (method: string, path: string, status: string) =>
      doc.paths[path][method].responses[status].content['application/json'].schema;
    expect(json('get', '/v1/tenants/{tenant}', '200')).toEqual({ $ref: '#/components/schemas/Tenant' });
    expect(json('post', '/v1/tenants', '201')).toEqual({ $ref: '#/components/schemas/Tenant' });
    expect(json('get', '/v1/tenants/{tenant}/pools/{pool}', '200')).toEqual({ $ref: '#/components/schemas/Pool' });
    expect(json('get', '/v1/tenants/{tenant}/status', '200')).toEqual({ $ref: '#/components/schemas/TenantStatus' });
    expect(doc.components.schemas.Tenant.required).toEqual(
      expect.arrayContaining(['id', 'state', 'reservation', 'revision']),
    );
    expect(doc.components.schemas.Tenant.properties.state.enum).toEqual([
      'pending_approval',
      'active',
      'suspended',
      'rejected',
    ]);
    expect(doc.components.schemas.CreatedApiToken.properties.secret.type).toEqual(['string', 'null']);
  });

  it('documents the statuses the server sends: 201 only for creations, 200 for the other writes and every dry run, 304 where a GET is conditional', () => {
    const statuses = (method: string, path: string) =>
      Object.keys(doc.paths[path][method].responses).filter((s) => /^[23]/.test(s));
    for (const [method, path] of [
      ['post', '/v1/tenants/{tenant}/approve'],
      ['post', '/v1/tenants/{tenant}/reject'],
      ['post', '/v1/rebalance'],
      ['post', '/v1/nodes/{node}/status'],
    ]) {
      expect(statuses(method!, path!), `${method} ${path}`).toEqual(['200']);
    }
    for (const path of [
      '/v1/tenants',
      '/v1/tokens',
      '/v1/nodes',
      '/v1/address-pools',
      '/v1/tenants/{tenant}/vips',
      '/v1/tenants/{tenant}/pools/{pool}/members',
    ]) {
      expect(statuses('post', path), path).toEqual(['200', '201']);
      expect(doc.paths[path].post.responses['200'].content['application/json'].schema, path).toEqual({
        $ref: '#/components/schemas/DryRun',
      });
    }
    // A change answers the resource, or with ?dryRun=true the plan.
    expect(doc.paths['/v1/tenants/{tenant}'].patch.responses['200'].content['application/json'].schema.anyOf).toEqual([
      { $ref: '#/components/schemas/Tenant' },
      { $ref: '#/components/schemas/DryRun' },
    ]);
    expect(statuses('get', '/v1/nodes/{node}/config')).toEqual(['200', '304']);
    expect(doc.paths['/v1/nodes/{node}/config'].get.responses['304'].content).toBeUndefined();
  });

  it('documents content types as sent: Prometheus text for /metrics, HTML for the dashboard', () => {
    expect(Object.keys(doc.paths['/metrics'].get.responses['200'].content)).toEqual([
      'text/plain; version=0.0.4; charset=utf-8',
    ]);
    expect(Object.keys(doc.paths['/ui/index.html'].get.responses['200'].content)).toEqual(['text/html; charset=utf-8']);
  });

  it('documents errors where they can happen, and not where they cannot', () => {
    for (const [method, path, op] of operations()) {
      const where = `${method} ${path}`;
      const errors = Object.keys(op.responses).filter((s) => /^[45]/.test(s));
      expect(errors, where).toEqual(expect.arrayContaining(['431']));
      if (publicPaths.has(path)) continue;
      expect(errors, where).toEqual(expect.arrayContaining(['400', '401', '403', '500', '503']));
      if (method === 'get') {
        expect(errors, where).not.toContain('409');
        expect(errors, where).not.toContain('412');
      } else {
        expect(errors, where).toContain('409');
      }
      expect(errors.includes('413') && errors.includes('415'), where).toBe(['post', 'put', 'patch'].includes(method));
      // If-Match is documented, and 412 with it, exactly where the write checks it.
      const ifMatch = (op.parameters as any[]).some((p) => p.name === 'If-Match');
      expect(errors.includes('412'), where).toBe(ifMatch);
    }
    expect(doc.paths['/v1/tenants/{tenant}/approve'].post.responses['412']).toBeDefined();
    expect(doc.paths['/v1/tokens/{token}'].delete.responses['412']).toBeUndefined();
    expect(doc.paths['/v1/tenants'].get.responses['404']).toBeUndefined();
    expect(doc.components.responses.Unavailable.headers['Retry-After']).toBeDefined();
    expect(doc.components.responses.RequestHeaderFieldsTooLarge.content).toBeUndefined();
  });

  it('answers as documented: 201 for a creation, 200 for a dry run of it, 200 for an approval, 304 for an unchanged config', async () => {
    // app.admin checks every answer against the document; these pin the statuses too.
    expect((await app.admin('POST', '/v1/tenants?dryRun=true', { id: 'dry' })).status).toBe(200);
    expect((await app.admin('POST', '/v1/tenants', { id: 'wet', reservation: { vcpu: 0, memoryMb: 0 } })).status).toBe(
      201,
    );
    expect(
      (await app.admin('POST', '/v1/nodes', { name: 'edge-1', kind: 'nginx', capacity: { vcpu: 4, memoryMb: 8192 } }))
        .status,
    ).toBe(201);
    const registrar = app.as(await app.token('registrar'));
    expect(
      (await registrar('POST', '/v1/tenants', { id: 'pending', reservation: { vcpu: 1, memoryMb: 512 } })).status,
    ).toBe(201);
    expect((await app.admin('POST', '/v1/tenants/pending/approve', { reason: 'planned' })).status).toBe(200);
    const agent = app.as(await app.token('agent', { node: 'edge-1' }));
    const config = await agent('GET', '/v1/nodes/edge-1/config');
    expect(config.status).toBe(200);
    expect(
      (await agent('GET', '/v1/nodes/edge-1/config', undefined, { 'if-none-match': config.headers.get('etag')! }))
        .status,
    ).toBe(304);
    const metrics = await app.admin('GET', '/metrics');
    expect(metrics.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
  });

  it('is what the test harness checks every answer against, and the check refuses what the document does not say', async () => {
    const conformance = new OpenApiConformance(doc);
    expect((await app.admin('POST', '/v1/tenants', { id: 'checked' })).status).toBe(201);
    const tenant = (await app.admin('GET', '/v1/tenants/checked')).body;
    const headers = new Headers({ etag: `"${tenant.revision}"` });
    const answer = {
      method: 'GET',
      path: '/v1/tenants/checked',
      status: 200,
      contentType: 'application/json; charset=utf-8',
      body: tenant,
      headers,
    };
    expect(conformance.problem(answer)).toBeNull();
    expect(conformance.problem({ ...answer, status: 201 })).toMatch(/status 201 is not documented/);
    expect(conformance.problem({ ...answer, body: { ...tenant, secret: 'x' } })).toMatch(
      /must NOT have additional properties \(secret\)/,
    );
    expect(conformance.problem({ ...answer, body: { ...tenant, state: 'gone' } })).toMatch(
      /\/state must be equal to one of the allowed values/,
    );
    expect(conformance.problem({ ...answer, contentType: 'text/html' })).toMatch(
      /content type text\/html is not one of application\/json/,
    );
    expect(conformance.problem({ ...answer, headers: new Headers() })).toMatch(/header ETag is missing/);
    expect(conformance.problem({ ...answer, status: 409 })).toMatch(/status 409 is not documented/);
    expect(
      conformance.problem({ ...answer, status: 404, body: { error: { code: 'not_found', message: 'no' } } }),
    ).toMatch(/must have required property 'details'/);
  });

  it('serves Swagger UI at /docs', async () => {
    const res = await fetch(`${app.url}/docs/`);
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('swagger-ui');
  });
});

/**
 * A client of the kind users generate: typed by openapi-typescript from the live document,
 * compiled by tsc in strict mode, then run against this server. It holds no cast and no `any`:
 * every field it reads is typed by the document, so a route without a response schema (typed
 * `unknown`) or with a wrong one fails to compile or to run.
 */
const CLIENT_PROGRAM = `
import createClient from 'openapi-fetch';
import type { components, paths } from './schema.js';

type Tenant = components['schemas']['Tenant'];

const client = createClient<paths>({
  baseUrl: process.env['SWITCHYARD_URL'],
  headers: { authorization: \`Bearer \${process.env['SWITCHYARD_TOKEN']}\` },
});

function fail(what: string, problem: unknown): never {
  throw new Error(\`\${what}: \${JSON.stringify(problem)}\`);
}

const created = await client.POST('/v1/tenants', { body: { id: 'typed', displayName: 'Typed client' } });
if (created.data === undefined) fail('create the tenant', created.error);
// 200 is a dry run's plan, 201 the tenant: the type says both, the program picks.
if ('dryRun' in created.data) fail('create the tenant', 'answered with a dry run');
const tenant: Tenant = created.data;

const pool = await client.POST('/v1/tenants/{tenant}/pools', {
  params: { path: { tenant: tenant.id } },
  body: { name: 'web', algorithm: 'leastconn', healthCheck: { type: 'http', path: '/health' } },
});
if (pool.error !== undefined) fail('create the pool', pool.error);

const members = await client.PUT('/v1/tenants/{tenant}/pools/{pool}/members', {
  params: { path: { tenant: tenant.id, pool: 'web' } },
  body: { members: [{ name: 'm1', address: '10.0.0.1', port: 8080 }] },
});
if (members.data === undefined) fail('replace the members', members.error);
if ('dryRun' in members.data) fail('replace the members', 'answered with a dry run');

const read = await client.GET('/v1/tenants/{tenant}/pools/{pool}', { params: { path: { tenant: tenant.id, pool: 'web' } } });
if (read.data === undefined) fail('read the pool', read.error);

const status = await client.GET('/v1/tenants/{tenant}/status', { params: { path: { tenant: tenant.id } } });
if (status.data === undefined) fail('read the status', status.error);

const missing = await client.GET('/v1/tenants/{tenant}', { params: { path: { tenant: 'nobody' } } });

console.log(JSON.stringify({
  tenant: { id: tenant.id, displayName: tenant.displayName, state: tenant.state, memoryMb: tenant.reservation.memoryMb, pending: tenant.approval.pending },
  members: members.data.items.map((m) => \`\${m.name} \${m.address}:\${m.port} \${m.state}\`),
  pool: { name: read.data.name, algorithm: read.data.algorithm, check: read.data.healthCheck?.path ?? null, memberCount: read.data.memberCount },
  status: { converged: status.data.converged, nodes: status.data.nodes.length, vips: status.data.vips.map((v) => v.name) },
  missing: { status: missing.response.status, code: missing.error?.error.code ?? null },
}));
`;

describe('a client generated from the document', () => {
  it('compiles with tsc, without casts, and runs against the server', async () => {
    expect(CLIENT_PROGRAM).not.toMatch(/\bas\b|\bany\b|@ts-|!\./);
    await symlink(join(ROOT, 'node_modules'), join(work, 'node_modules'), 'dir');
    await writeFile(join(work, 'schema.d.ts'), astToString(await openapiTS(doc)));
    await writeFile(join(work, 'program.ts'), CLIENT_PROGRAM);
    await writeFile(join(work, 'package.json'), JSON.stringify({ type: 'module' }));
    await writeFile(
      join(work, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2022',
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          strict: true,
          noUncheckedIndexedAccess: true,
          types: ['node'],
          skipLibCheck: true,
        },
        files: ['program.ts'],
      }),
    );
    const compiled = await run(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', work]).catch(
      (err: { stdout: string }) => {
        throw new Error(`the client does not compile:\n${err.stdout}`);
      },
    );
    expect(compiled.stdout).toBe('');
    const token = await app.token('admin');
    const { stdout } = await run(process.execPath, [join(work, 'program.js')], {
      env: { ...process.env, SWITCHYARD_URL: app.url, SWITCHYARD_TOKEN: token },
    });
    const status = (await app.admin('GET', '/v1/tenants/typed/status')).body;
    expect(JSON.parse(stdout)).toEqual({
      tenant: { id: 'typed', displayName: 'Typed client', state: 'active', memoryMb: 0, pending: null },
      members: ['m1 10.0.0.1:8080 enabled'],
      pool: { name: 'web', algorithm: 'leastconn', check: '/health', memberCount: 1 },
      status: { converged: status.converged, nodes: status.nodes.length, vips: [] },
      missing: { status: 404, code: 'not_found' },
    });
  }, 120_000);
});

describe('Redocly lint', () => {
  it('passes with the recommended rules (redocly.yaml), without a warning', async () => {
    const file = join(work, 'openapi.json');
    await writeFile(file, JSON.stringify(doc, null, 2));
    const { stdout } = await run(
      process.execPath,
      [
        join(ROOT, 'node_modules/@redocly/cli/bin/cli.js'),
        'lint',
        file,
        '--config',
        join(ROOT, 'redocly.yaml'),
        '--format',
        'json',
      ],
      {
        env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' },
        maxBuffer: 16 * 1024 * 1024,
      },
    ).catch((err: { stdout: string }) => ({ stdout: err.stdout }));
    const report = JSON.parse(stdout) as {
      totals: { errors: number; warnings: number };
      problems: { ruleId: string; message: string; location: { pointer: string }[] }[];
    };
    expect(report.problems.map((p) => `${p.ruleId} at ${p.location[0]?.pointer}: ${p.message}`)).toEqual([]);
    expect(report.totals).toMatchObject({ errors: 0, warnings: 0 });
  }, 60_000);
});
