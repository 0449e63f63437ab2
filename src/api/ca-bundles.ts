import { z } from 'zod';
import { createCaBundleSchema, replaceCaBundleSchema } from '../domain/ca-bundle.js';
import { paging, slug } from '../domain/fields.js';
import type { CaBundleService } from '../services/ca-bundle-service.js';
import { ETAG, json, route, written, type RouteSpec } from './route.js';
import { caBundlePageSchema, caBundleSchema } from './responses/ca-bundle-responses.js';
import { deletedSchema } from './responses/response-fields.js';

const tenantParams = z.strictObject({ tenant: slug });
const bundleParams = z.strictObject({ tenant: slug, bundle: slug });

/** CA bundles a pool's `tls.caBundle` names: what proxies trust when they verify TLS members. */
export function caBundleRoutes(bundles: CaBundleService): RouteSpec[] {
  return [
    route({
      method: 'get',
      path: '/v1/tenants/:tenant/ca-bundles',
      summary: 'List CA bundles',
      tag: 'ca-bundles',
      permission: 'tenant:read',
      params: tenantParams,
      query: z.strictObject(paging),
      responses: { 200: json(caBundlePageSchema, 'A page of CA bundles') },
      handler: async ({ params, query }) => ({ body: await bundles.list(params.tenant, query) }),
    }),
    route({
      method: 'post',
      path: '/v1/tenants/:tenant/ca-bundles',
      summary: 'Upload a CA bundle that verifies TLS members',
      tag: 'ca-bundles',
      permission: 'tenant:write',
      params: tenantParams,
      body: createCaBundleSchema,
      responses: { 201: json(caBundleSchema, 'The CA bundle stored', ETAG) },
      handler: async ({ write, params, body }) => written(await bundles.create(write, params.tenant, body), 201),
    }),
    route({
      method: 'get',
      path: '/v1/tenants/:tenant/ca-bundles/:bundle',
      summary: 'Get a CA bundle',
      tag: 'ca-bundles',
      permission: 'tenant:read',
      params: bundleParams,
      responses: { 200: json(caBundleSchema, 'The CA bundle', ETAG) },
      handler: async ({ params }) => {
        const bundle = await bundles.get(params.tenant, params.bundle);
        return { body: bundle, etag: bundle.revision };
      },
    }),
    route({
      method: 'put',
      path: '/v1/tenants/:tenant/ca-bundles/:bundle',
      summary: 'Replace the certificates of a CA bundle',
      tag: 'ca-bundles',
      permission: 'tenant:write',
      params: bundleParams,
      body: replaceCaBundleSchema,
      responses: { 200: json(caBundleSchema, 'The CA bundle replaced', ETAG) },
      handler: async ({ write, params, body }) =>
        written(await bundles.replace(write, params.tenant, params.bundle, body)),
    }),
    route({
      method: 'delete',
      path: '/v1/tenants/:tenant/ca-bundles/:bundle',
      summary: 'Delete a CA bundle (refused while a pool trusts it)',
      tag: 'ca-bundles',
      permission: 'tenant:write',
      params: bundleParams,
      responses: { 200: json(deletedSchema, 'Deleted') },
      handler: async ({ write, params }) => written(await bundles.delete(write, params.tenant, params.bundle)),
    }),
  ];
}
