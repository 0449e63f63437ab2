import { z } from 'zod';
import { paging, slug } from '../domain/fields.js';
import { createVipSchema, patchVipSchema } from '../domain/vip.js';
import type { VipService } from '../services/vip-service.js';
import { ETAG, json, route, written, type RouteSpec } from './route.js';
import { deletedSchema } from './responses/response-fields.js';
import { vipPageSchema, vipSchema } from './responses/vip-responses.js';

const tenantParams = z.strictObject({ tenant: slug });
const vipParams = z.strictObject({ tenant: slug, vip: slug });

export function vipRoutes(vips: VipService): RouteSpec[] {
  return [
    route({
      method: 'get',
      path: '/v1/tenants/:tenant/vips',
      summary: 'List VIPs',
      tag: 'vips',
      permission: 'tenant:read',
      params: tenantParams,
      query: z.strictObject(paging),
      responses: { 200: json(vipPageSchema, 'A page of VIPs') },
      handler: async ({ params, query }) => ({ body: await vips.list(params.tenant, query) }),
    }),
    route({
      method: 'post',
      path: '/v1/tenants/:tenant/vips',
      summary: 'Create a VIP on an explicit or leased address',
      tag: 'vips',
      permission: 'tenant:write',
      params: tenantParams,
      body: createVipSchema,
      responses: { 201: json(vipSchema, 'The VIP created', ETAG) },
      handler: async ({ write, params, body }) => written(await vips.create(write, params.tenant, body), 201),
    }),
    route({
      method: 'get',
      path: '/v1/tenants/:tenant/vips/:vip',
      summary: 'Get a VIP',
      tag: 'vips',
      permission: 'tenant:read',
      params: vipParams,
      responses: { 200: json(vipSchema, 'The VIP', ETAG) },
      handler: async ({ params }) => {
        const vip = await vips.get(params.tenant, params.vip);
        return { body: vip, etag: vip.revision };
      },
    }),
    route({
      method: 'patch',
      path: '/v1/tenants/:tenant/vips/:vip',
      summary: 'Change a VIP',
      tag: 'vips',
      permission: 'tenant:write',
      params: vipParams,
      body: patchVipSchema,
      responses: { 200: json(vipSchema, 'The VIP changed', ETAG) },
      handler: async ({ write, params, body }) => written(await vips.patch(write, params.tenant, params.vip, body)),
    }),
    route({
      method: 'delete',
      path: '/v1/tenants/:tenant/vips/:vip',
      summary: 'Delete a VIP, its routes and its address lease',
      tag: 'vips',
      permission: 'tenant:write',
      params: vipParams,
      responses: { 200: json(deletedSchema, 'Deleted') },
      handler: async ({ write, params }) => written(await vips.delete(write, params.tenant, params.vip)),
    }),
  ];
}
