import { z } from 'zod';
import { slug } from '../domain/fields.js';
import { createRouteSchema, patchRouteSchema } from '../domain/route.js';
import type { RouteService } from '../services/route-service.js';
import { ETAG, json, route, written, type RouteSpec } from './route.js';
import { deletedSchema } from './responses/response-fields.js';
import { contentRoutePageSchema, contentRouteSchema } from './responses/route-responses.js';

const vipParams = z.strictObject({ tenant: slug, vip: slug });
const routeParams = z.strictObject({ tenant: slug, vip: slug, route: slug });

/** Content routes of a VIP (the resource called "route"; not to be confused with REST routes). */
export function routeRoutes(routes: RouteService): RouteSpec[] {
  return [
    route({
      method: 'get',
      path: '/v1/tenants/:tenant/vips/:vip/routes',
      summary: 'List the routes of a VIP in evaluation order',
      tag: 'routes',
      permission: 'tenant:read',
      params: vipParams,
      responses: { 200: json(contentRoutePageSchema, 'The routes, in evaluation order (one page)') },
      handler: async ({ params }) => ({ body: await routes.list(params.tenant, params.vip) }),
    }),
    route({
      method: 'post',
      path: '/v1/tenants/:tenant/vips/:vip/routes',
      summary: 'Create a route on a VIP',
      tag: 'routes',
      permission: 'tenant:write',
      params: vipParams,
      body: createRouteSchema,
      responses: { 201: json(contentRouteSchema, 'The route created', ETAG) },
      handler: async ({ write, params, body }) =>
        written(await routes.create(write, params.tenant, params.vip, body), 201),
    }),
    route({
      method: 'get',
      path: '/v1/tenants/:tenant/vips/:vip/routes/:route',
      summary: 'Get a route',
      tag: 'routes',
      permission: 'tenant:read',
      params: routeParams,
      responses: { 200: json(contentRouteSchema, 'The route', ETAG) },
      handler: async ({ params }) => {
        const r = await routes.get(params.tenant, params.vip, params.route);
        return { body: r, etag: r.revision };
      },
    }),
    route({
      method: 'patch',
      path: '/v1/tenants/:tenant/vips/:vip/routes/:route',
      summary: 'Change a route',
      tag: 'routes',
      permission: 'tenant:write',
      params: routeParams,
      body: patchRouteSchema,
      responses: { 200: json(contentRouteSchema, 'The route changed', ETAG) },
      handler: async ({ write, params, body }) =>
        written(await routes.patch(write, params.tenant, params.vip, params.route, body)),
    }),
    route({
      method: 'delete',
      path: '/v1/tenants/:tenant/vips/:vip/routes/:route',
      summary: 'Delete a route',
      tag: 'routes',
      permission: 'tenant:write',
      params: routeParams,
      responses: { 200: json(deletedSchema, 'Deleted') },
      handler: async ({ write, params }) =>
        written(await routes.delete(write, params.tenant, params.vip, params.route)),
    }),
  ];
}
