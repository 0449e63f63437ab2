import { Validator } from '@seriousme/openapi-schema-validator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openApiPath } from '../../src/api/openapi.js';
import { allRoutes } from '../../src/api/registry.js';
import { startTestApp, type TestApp } from '../support/app.js';

let app: TestApp;
let doc: any;
beforeAll(async () => {
  app = await startTestApp();
  const res = await fetch(`${app.url}/openapi.json`);
  expect(res.status).toBe(200);
  doc = await res.json();
});
afterAll(async () => {
  await app?.stop();
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

describe('OpenAPI document', () => {
  it('is a valid OpenAPI 3.1 document', async () => {
    const result = await new Validator().validate(doc);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    expect(doc.openapi).toBe('3.1.0');
  });

  it('documents every routed endpoint, and routes every documented one', () => {
    const documented = Object.entries(doc.paths as Record<string, Record<string, unknown>>)
      .flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`))
      .sort();
    const routed = mountedRoutes().map((r) => {
      const [method, path] = r.split(' ');
      return `${method} ${openApiPath(path!)}`;
    });
    expect(routed.length).toBeGreaterThan(30);
    expect(documented).toEqual(routed);
    expect(allRoutes(app.cp.services)).toHaveLength(routed.length);
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

  it('serves Swagger UI at /docs', async () => {
    const res = await fetch(`${app.url}/docs/`);
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('swagger-ui');
  });
});
