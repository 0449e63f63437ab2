import { z } from 'zod';
import { paging, slug } from '../domain/fields.js';
import { createPoolSchema, patchPoolSchema } from '../domain/pool.js';
import type { PoolService } from '../services/pool-service.js';
import { route, written, type RouteSpec } from './route.js';

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
      handler: async ({ write, params, body }) => written(await pools.create(write, params.tenant, body), 201),
    }),
    route({
      method: 'get',
      path: '/v1/tenants/:tenant/pools/:pool',
      summary: 'Get a pool',
      tag: 'pools',
      permission: 'tenant:read',
      params: poolParams,
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
      handler: async ({ write, params, body }) => written(await pools.patch(write, params.tenant, params.pool, body)),
    }),
    route({
      method: 'delete',
      path: '/v1/tenants/:tenant/pools/:pool',
      summary: 'Delete a pool and its members (refused while a VIP or route uses it)',
      tag: 'pools',
      permission: 'tenant:write',
      params: poolParams,
      handler: async ({ write, params }) => written(await pools.delete(write, params.tenant, params.pool)),
    }),
  ];
}
