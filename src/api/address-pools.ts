import { z } from 'zod';
import { createAddressPoolSchema } from '../domain/address-pool.js';
import { paging, slug } from '../domain/fields.js';
import type { AddressPoolService } from '../services/address-pool-service.js';
import { route, written, type RouteSpec } from './route.js';

const params = z.strictObject({ pool: slug });

export function addressPoolRoutes(pools: AddressPoolService): RouteSpec[] {
  return [
    route({
      method: 'get',
      path: '/v1/address-pools',
      summary: 'List address pools',
      tag: 'address-pools',
      permission: 'fleet:read',
      query: z.strictObject(paging),
      handler: async ({ query }) => ({ body: await pools.list(query) }),
    }),
    route({
      method: 'post',
      path: '/v1/address-pools',
      summary: 'Create an address pool',
      tag: 'address-pools',
      permission: 'fleet:write',
      body: createAddressPoolSchema,
      handler: async ({ write, body }) => written(await pools.create(write, body), 201),
    }),
    route({
      method: 'get',
      path: '/v1/address-pools/:pool',
      summary: 'Get an address pool',
      tag: 'address-pools',
      permission: 'fleet:read',
      params,
      handler: async ({ params: p }) => {
        const pool = await pools.get(p.pool);
        return { body: pool, etag: pool.revision };
      },
    }),
    route({
      method: 'delete',
      path: '/v1/address-pools/:pool',
      summary: 'Delete an address pool (refused while addresses are leased)',
      tag: 'address-pools',
      permission: 'fleet:write',
      params,
      handler: async ({ write, params: p }) => written(await pools.delete(write, p.pool)),
    }),
  ];
}
