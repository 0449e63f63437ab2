import { z } from 'zod';
import { paging, slug } from '../domain/fields.js';
import { createPoolSchema, patchPoolSchema } from '../domain/pool.js';
import type { PoolService } from '../services/pool-service.js';
import { ETAG, json, route, written, type RouteSpec } from './route.js';
import { deletedSchema } from './responses/response-fields.js';
import { poolPageSchema, poolSchema } from './responses/pool-responses.js';

const tenantParams = z.strictObject({ tenant: slug });
const poolParams = z.strictObject({ tenant: slug, pool: slug });

export function poolRoutes(pools: PoolService): RouteSpec[] {
  return [
    route({
      method: 'get',
      path: '/v1/tenants/:tenant/pools',
      summary: 'List pools',
      tag: 'pools',
      permission: 'tenant:read',
      params: tenantParams,
      query: z.strictObject({ ...paging }),
      responses: { 200: json(poolPageSchema, 'A page of pools') },
      handler: async ({ params, query }) => ({ body: await pools.list(params.tenant, query) }),
    }),
    route({
      method: 'post',
      path: '/v1/tenants/:tenant/pools',
      summary: 'Create a pool',
      tag: 'pools',
      permission: 'tenant:write',
      params: tenantParams,
      body: createPoolSchema,
      responses: { 201: json(poolSchema, 'The pool created', ETAG) },
      handler: async ({ write, params, body }) => written(await pools.create(write, params.tenant, body), 201),
    }),
    route({
      method: 'get',
      path: '/v1/tenants/:tenant/pools/:pool',
      summary: 'Get a pool',
      tag: 'pools',
      permission: 'tenant:read',
      params: poolParams,
      responses: { 200: json(poolSchema, 'The pool', ETAG) },
      handler: async ({ params }) => {
        const pool = await pools.get(params.tenant, params.pool);
        return { body: pool, etag: pool.revision };
      },
    }),
    route({
      method: 'patch',
      path: '/v1/tenants/:tenant/pools/:pool',
      summary: 'Change a pool',
      tag: 'pools',
      permission: 'tenant:write',
      params: poolParams,
      body: patchPoolSchema,
      responses: { 200: json(poolSchema, 'The pool changed', ETAG) },
      handler: async ({ write, params, body }) => written(await pools.patch(write, params.tenant, params.pool, body)),
    }),
    route({
      method: 'delete',
      path: '/v1/tenants/:tenant/pools/:pool',
      summary: 'Delete a pool and its members (refused while a VIP or route uses it)',
      tag: 'pools',
      permission: 'tenant:write',
      params: poolParams,
      responses: { 200: json(deletedSchema, 'Deleted, with its members') },
      handler: async ({ write, params }) => written(await pools.delete(write, params.tenant, params.pool)),
    }),
  ];
}
