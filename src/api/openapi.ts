import { z } from 'zod';
import { errorSchema } from './responses/error-response.js';
import { dryRunOutcomeSchema } from './responses/plan-responses.js';
import { checksIfMatch, type Answer, type Responses, type RouteSpec } from './route.js';
import { TAGS, type Tag } from './tags.js';

type JsonSchema = Record<string, unknown>;

const SCHEMAS = '#/components/schemas/';
const HEADER_SCHEMA = { type: 'string' };

/** The errors the framework answers, each documented once under components.responses. */
const ERRORS = {
  400: {
    name: 'BadRequest',
    description:
      'Invalid input (`validation_failed`: `details` lists every field as `body.x.y` with what is wrong), or a body that is not JSON (`invalid_json`)',
  },
  401: {
    name: 'Unauthorized',
    description: 'Missing or invalid bearer token',
    headers: { 'WWW-Authenticate': 'Bearer realm="switchyard"' },
  },
  403: {
    name: 'Forbidden',
    description: 'The token may not do this: the message names its role, the permission it lacks and who holds it',
  },
  404: { name: 'NotFound', description: 'Not found (also for objects of another tenant)' },
  409: {
    name: 'Conflict',
    description: 'Conflict with the current state, or an Idempotency-Key used for another request or still in progress',
  },
  412: {
    name: 'PreconditionFailed',
    description: 'If-Match names a version that is no longer current; nothing was written',
  },
  413: { name: 'PayloadTooLarge', description: 'The request body is larger than 1 MB (`payload_too_large`)' },
  415: {
    name: 'UnsupportedMediaType',
    description: 'The request body has a charset or content encoding the server does not read',
  },
  431: {
    name: 'RequestHeaderFieldsTooLarge',
    description: "The request's headers are too large (answered by the HTTP server itself, without a body)",
    body: false,
  },
  500: {
    name: 'InternalError',
    description: '`internal`: an unexpected error, logged with the request id that the message quotes',
  },
  503: {
    name: 'Unavailable',
    description:
      '`unavailable`: the database could not be reached and nothing was acknowledged; retry after `Retry-After` seconds (`upstream_unavailable`: a proxy or validator failed; `not_ready` from /readyz)',
    headers: { 'Retry-After': 'Seconds to wait before retrying (`unavailable`)' },
  },
} as const satisfies Record<
  number,
  { name: string; description: string; headers?: Record<string, string>; body?: false }
>;

export type ErrorStatus = keyof typeof ERRORS;

/** An endpoint outside the REST routes, reached without a token: probes, this document, the dashboard. */
export interface PublicEndpoint {
  readonly path: string;
  readonly summary: string;
  readonly tag: Tag;
  readonly responses: Responses;
  readonly errors: readonly ErrorStatus[];
}

/** The errors a route can answer, from what it takes and does. */
function errorStatuses(spec: RouteSpec): ErrorStatus[] {
  const out: ErrorStatus[] = [400, 401, 403];
  if (spec.path.includes(':') || spec.notFound) out.push(404);
  if (spec.method !== 'get') out.push(409);
  if (checksIfMatch(spec)) out.push(412);
  if (spec.method === 'post' || spec.method === 'put' || spec.method === 'patch') out.push(413, 415);
  out.push(431, 500, 503);
  return out;
}

/** JSON Schema (2020-12, as OpenAPI 3.1 uses) of what a client sends: the input side of a zod schema. */
function inputSchema(schema: z.ZodType): JsonSchema {
  const { $schema: _drop, ...rest } = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
  if ('$defs' in rest) throw new Error('a request schema holds a named response schema: give it its own');
  return tidy(rest);
}

/**
 * JSON Schema of what the server sends: the output side of a response schema. Named schemas
 * (`.meta({ id })`) are referred to in components.schemas, where `components()` puts them.
 */
function outputSchema(schema: z.ZodType, named: Record<string, JsonSchema>): JsonSchema {
  if (z.globalRegistry.get(schema)?.id !== undefined) return refTo(schema);
  const {
    $schema: _drop,
    $defs,
    ...rest
  } = z.toJSONSchema(schema, { io: 'output', unrepresentable: 'any' }) as JsonSchema;
  for (const name of Object.keys(($defs ?? {}) as JsonSchema)) {
    if (!(name in named)) throw new Error(`response schema ${name} is not in components.schemas`);
  }
  return tidy(JSON.parse(JSON.stringify(rest).replaceAll('"#/$defs/', `"${SCHEMAS}`)) as JsonSchema);
}

/** A reference to a named schema in components.schemas. */
function refTo(schema: z.ZodType): JsonSchema {
  const id = z.globalRegistry.get(schema)?.id;
  if (id === undefined) throw new Error('only a schema named with .meta({ id }) is in components.schemas');
  return { $ref: `${SCHEMAS}${id}` };
}

/** Drops the bounds zod gives every integer (±2^53 - 1): they say nothing a client needs. */
function tidy(schema: JsonSchema): JsonSchema {
  return JSON.parse(JSON.stringify(schema), (key, value: unknown) =>
    (key === 'minimum' && value === Number.MIN_SAFE_INTEGER) || (key === 'maximum' && value === Number.MAX_SAFE_INTEGER)
      ? undefined
      : value,
  ) as JsonSchema;
}

/** Every named zod schema, as components.schemas: generated clients name their types after them. */
function components(): Record<string, JsonSchema> {
  const all = z.toJSONSchema(z.globalRegistry, {
    io: 'output',
    unrepresentable: 'any',
    uri: (id) => `${SCHEMAS}${id}`,
  }).schemas;
  const out: Record<string, JsonSchema> = {};
  for (const [id, schema] of Object.entries(all).sort(([a], [b]) => (a < b ? -1 : 1))) {
    const { $schema: _s, $id: _i, ...rest } = schema as JsonSchema;
    out[id] = tidy(rest);
  }
  return out;
}

/** Express `/v1/tenants/:tenant` → OpenAPI `/v1/tenants/{tenant}`. */
export const openApiPath = (path: string): string => path.replace(/:(\w+)/g, '{$1}');

function parameters(spec: RouteSpec): JsonSchema[] {
  const out: JsonSchema[] = [];
  for (const [where, schema] of [
    ['path', spec.params],
    ['query', spec.query],
  ] as const) {
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
  for (const [name, description] of Object.entries(spec.headers ?? {})) {
    out.push({ name, in: 'header', required: false, schema: HEADER_SCHEMA, description });
  }
  if (dryRunnable(spec)) {
    out.push({
      name: 'dryRun',
      in: 'query',
      required: false,
      schema: { type: 'boolean' },
      description: 'Answer with the plan and change nothing',
    });
  }
  if (checksIfMatch(spec)) {
    out.push({
      name: 'If-Match',
      in: 'header',
      required: false,
      schema: { type: 'string' },
      description: 'ETag from a read; 412 when stale',
    });
  }
  // Writes that record observed state (agent reports) bypass mutate(), where keys are kept.
  if (spec.method === 'post' && spec.dryRun !== false) {
    out.push({
      name: 'Idempotency-Key',
      in: 'header',
      required: false,
      schema: { type: 'string', pattern: '^[A-Za-z0-9_.:-]{1,128}$' },
      description: 'A replay returns the first answer and creates nothing',
    });
  }
  return out;
}

/**
 * Writes accept `?dryRun=true` (mount.ts) and answer 200 with the plan, except those that refuse
 * dry runs (agent reports) and those that answer them themselves (their query schema says how).
 */
const dryRunnable = (spec: RouteSpec): boolean => spec.method !== 'get' && spec.dryRun === undefined;

/** `required`: always sent with the answer (a route's own headers), or only with some (an error's). */
const headerObjects = (headers: Readonly<Record<string, string>>, required: boolean): Record<string, JsonSchema> =>
  Object.fromEntries(
    Object.entries(headers).map(([name, description]) => [name, { description, required, schema: HEADER_SCHEMA }]),
  );

function answer(a: Answer, named: Record<string, JsonSchema>): JsonSchema {
  const head = { description: a.description, ...(a.headers && { headers: headerObjects(a.headers, true) }) };
  if (a.kind === 'empty') return head;
  if (a.kind === 'text') return { ...head, content: { [a.contentType]: { schema: { type: 'string' } } } };
  return { ...head, content: { 'application/json': { schema: outputSchema(a.schema, named) } } };
}

function responses(
  declared: Responses,
  errors: readonly ErrorStatus[],
  dryRun: boolean,
  named: Record<string, JsonSchema>,
): Record<string, JsonSchema> {
  const out: Record<string, JsonSchema> = {};
  for (const [status, a] of Object.entries(declared) as [string, Answer][]) out[status] = answer(a, named);
  if (dryRun) {
    const plan = refTo(dryRunOutcomeSchema);
    const ok = out['200'];
    const json = (ok?.content as Record<string, { schema: JsonSchema }> | undefined)?.['application/json'];
    if (ok === undefined) {
      out['200'] = {
        description: 'Dry run (`?dryRun=true`): what the write would commit, and the plan for it',
        content: { 'application/json': { schema: plan } },
      };
    } else if (json !== undefined) {
      out['200'] = {
        description: `${ok.description as string}; with \`?dryRun=true\`, the plan instead`,
        content: { 'application/json': { schema: { anyOf: [json.schema, plan] } } },
      };
    } else {
      throw new Error('a dry-runnable write must answer 200 with JSON, or not at all');
    }
  }
  for (const status of errors) out[String(status)] = { $ref: `#/components/responses/${ERRORS[status].name}` };
  return out;
}

function errorResponses(): Record<string, JsonSchema> {
  const out: Record<string, JsonSchema> = {};
  for (const e of Object.values(ERRORS) as (typeof ERRORS)[ErrorStatus][]) {
    const headers = 'headers' in e ? headerObjects(e.headers, false) : undefined;
    out[e.name] = {
      description: e.description,
      ...(headers && { headers }),
      ...(!('body' in e) && { content: { 'application/json': { schema: refTo(errorSchema) } } }),
    };
  }
  return out;
}

/** `getV1TenantsTenantVips` from `get /v1/tenants/{tenant}/vips`. */
const operationId = (method: string, path: string): string =>
  `${method}${path.replace(/[{}]/g, '').replace(/[^A-Za-z0-9]+(\w)?/g, (_, c: string | undefined) => (c ?? '').toUpperCase())}`;

/**
 * The OpenAPI 3.1 document, generated from the same route specs that are mounted, so it cannot
 * drift from what the server accepts and answers: paths, parameters, request bodies and answers
 * come from the zod schemas the handlers are checked against; errors from what each route can meet.
 */
export function buildOpenApi(
  routes: readonly RouteSpec[],
  version: string,
  publicEndpoints: readonly PublicEndpoint[] = [],
): JsonSchema {
  const named = components();
  const paths: Record<string, Record<string, JsonSchema>> = {};
  const seenOperationIds = new Map<string, number>();
  for (const spec of routes) {
    const path = openApiPath(spec.path);
    const base = operationId(spec.method, path);
    const n = seenOperationIds.get(base) ?? 0;
    seenOperationIds.set(base, n + 1);
    (paths[path] ??= {})[spec.method] = {
      operationId: n === 0 ? base : `${base}${n + 1}`,
      summary: spec.summary,
      tags: [spec.tag],
      parameters: parameters(spec),
      ...(spec.body && {
        requestBody: { required: true, content: { 'application/json': { schema: inputSchema(spec.body) } } },
      }),
      responses: responses(spec.responses, errorStatuses(spec), dryRunnable(spec), named),
      ...(spec.permission !== null && { 'x-permission': spec.permission }),
    };
  }
  for (const endpoint of publicEndpoints) {
    (paths[endpoint.path] ??= {}).get = {
      operationId: operationId('get', endpoint.path),
      summary: endpoint.summary,
      tags: [endpoint.tag],
      security: [],
      responses: responses(endpoint.responses, endpoint.errors, false, named),
    };
  }
  const tags = new Set<Tag>([...routes.map((r) => r.tag), ...publicEndpoints.map((e) => e.tag)]);
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
    tags: [...tags].sort().map((name) => ({ name, description: TAGS[name] })),
    paths,
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      schemas: named,
      responses: errorResponses(),
    },
  };
}
