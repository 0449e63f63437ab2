import { z } from 'zod';
import type { RouteSpec } from './route.js';

type JsonSchema = Record<string, unknown>;

const ERROR_SCHEMA: JsonSchema = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message', 'details'],
      properties: {
        code: { type: 'string', examples: ['validation_failed'] },
        message: { type: 'string' },
        details: {},
      },
    },
  },
};

const ERROR_STATUSES: Record<string, string> = {
  '400': 'Invalid input; `details` lists every field as `body.x.y` with what is wrong',
  '401': 'Missing or invalid bearer token',
  '403': 'The token may not do this',
  '404': 'Not found (also for objects of another tenant)',
  '409': 'Conflict with the current state',
  '412': 'If-Match names a version that is no longer current',
  '503': '`unavailable`: the database could not be reached and nothing was acknowledged; retry after `Retry-After` seconds (`upstream_unavailable`: a proxy or validator failed)',
};

/** Response headers some error statuses carry. */
const ERROR_HEADERS: Record<string, JsonSchema> = {
  '503': { 'Retry-After': { description: 'Seconds to wait before retrying', schema: { type: 'integer', minimum: 1 } } },
};

/** JSON Schema (2020-12, as OpenAPI 3.1 uses) of what a client sends: the input side of a zod schema. */
function inputSchema(schema: z.ZodType): JsonSchema {
  const { $schema: _drop, ...rest } = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
  return rest;
}

/** Express `/v1/tenants/:tenant` → OpenAPI `/v1/tenants/{tenant}`. */
export const openApiPath = (path: string): string => path.replace(/:(\w+)/g, '{$1}');

function parameters(spec: RouteSpec): JsonSchema[] {
  const out: JsonSchema[] = [];
  for (const [where, schema] of [['path', spec.params], ['query', spec.query]] as const) {
    if (!schema) continue;
    const json = inputSchema(schema);
    const props = (json.properties ?? {}) as Record<string, JsonSchema>;
    const required = new Set((json.required ?? []) as string[]);
    for (const [name, prop] of Object.entries(props)) {
      const { description, ...schemaOnly } = prop;
      out.push({
        name,
        in: where,
        required: where === 'path' || required.has(name),
        schema: schemaOnly,
        ...(description !== undefined && { description }),
      });
    }
  }
  // Writes that record observed state (agent reports) refuse dry runs: see RouteSpec.dryRun.
  // A route answering dry runs itself ('own') documents `dryRun` in its own query schema.
  const dryRunnable = spec.method !== 'get' && spec.dryRun === undefined;
  if (dryRunnable) {
    out.push({ name: 'dryRun', in: 'query', required: false, schema: { type: 'boolean' }, description: 'Answer with the plan and change nothing' });
  }
  if (spec.method === 'patch' || spec.method === 'put' || spec.method === 'delete') {
    out.push({ name: 'If-Match', in: 'header', required: false, schema: { type: 'string' }, description: 'ETag from a read; 412 when stale' });
  }
  if (spec.method === 'post') {
    out.push({ name: 'Idempotency-Key', in: 'header', required: false, schema: { type: 'string', pattern: '^[A-Za-z0-9_.:-]{1,128}$' }, description: 'A replay returns the first answer and creates nothing' });
  }
  return out;
}

/**
 * The OpenAPI 3.1 document, generated from the same route specs that are mounted, so it cannot
 * drift from what the server accepts: paths, parameters and request bodies come from the zod schemas.
 */
export function buildOpenApi(routes: readonly RouteSpec[], version: string): JsonSchema {
  const paths: Record<string, Record<string, JsonSchema>> = {};
  const seenOperationIds = new Map<string, number>();
  for (const spec of routes) {
    const path = openApiPath(spec.path);
    const base = `${spec.method}${path.replace(/[{}]/g, '').replace(/[^A-Za-z0-9]+(\w)?/g, (_, c: string | undefined) => (c ?? '').toUpperCase())}`;
    const n = seenOperationIds.get(base) ?? 0;
    seenOperationIds.set(base, n + 1);
    const responses: Record<string, JsonSchema> = {
      [spec.method === 'post' ? '201' : '200']: { description: 'Success', content: { 'application/json': { schema: {} } } },
    };
    for (const [status, description] of Object.entries(ERROR_STATUSES)) {
      responses[status] = {
        description,
        ...(ERROR_HEADERS[status] && { headers: ERROR_HEADERS[status] }),
        content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
      };
    }
    (paths[path] ??= {})[spec.method] = {
      operationId: n === 0 ? base : `${base}${n + 1}`,
      summary: spec.summary,
      tags: [spec.tag],
      parameters: parameters(spec),
      ...(spec.body && { requestBody: { required: true, content: { 'application/json': { schema: inputSchema(spec.body) } } } }),
      responses,
      ...(spec.permission !== null && { 'x-permission': spec.permission }),
    };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Switchyard',
      version,
      description: 'Multi-tenant load-balancer control plane for HAProxy and NGINX fleets.',
      license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
    },
    servers: [{ url: '/' }],
    security: [{ bearer: [] }],
    tags: [...new Set(routes.map((r) => r.tag))].sort().map((name) => ({ name })),
    paths,
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      schemas: { Error: ERROR_SCHEMA },
    },
  };
}
