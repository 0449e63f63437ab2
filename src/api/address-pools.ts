import { z } from 'zod';
import { createAddressPoolSchema } from '../domain/address-pool.js';
import { paging, slug } from '../domain/fields.js';
import type { AddressPoolService } from '../services/address-pool-service.js';
import { ETAG, json, route, written, type RouteSpec } from './route.js';
import { addressPoolPageSchema, addressPoolSchema } from './responses/address-pool-responses.js';
import { deletedSchema } from './responses/response-fields.js';

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
      responses: { 200: json(addressPoolPageSchema, 'A page of address pools') },
      handler: async ({ query }) => ({ body: await pools.list(query) }),
    }),
    route({
      method: 'post',
      path: '/v1/address-pools',
      summary: 'Create an address pool',
      tag: 'address-pools',
      permission: 'fleet:write',
      body: createAddressPoolSchema,
      responses: { 201: json(addressPoolSchema, 'The address pool created', ETAG) },
      handler: async ({ write, body }) => written(await pools.create(write, body), 201),
    }),
    route({
      method: 'get',
      path: '/v1/address-pools/:pool',
      summary: 'Get an address pool',
      tag: 'address-pools',
      permission: 'fleet:read',
      params,
      responses: { 200: json(addressPoolSchema, 'The address pool', ETAG) },
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
      responses: { 200: json(deletedSchema, 'Deleted') },
      handler: async ({ write, params: p }) => written(await pools.delete(write, p.pool)),
    }),
  ];
}
