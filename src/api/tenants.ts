import { z } from 'zod';
import { paging, slug } from '../domain/fields.js';
import {
  approvalDecisionSchema,
  createTenantSchema,
  labelSelector,
  patchTenantSchema,
  rejectionSchema,
} from '../domain/tenant.js';
import type { TenantService } from '../services/tenant-service.js';
import type { StatusService } from '../services/status-service.js';
import { ETAG, json, route, written, type RouteSpec } from './route.js';
import { deletedSchema } from './responses/response-fields.js';
import { tenantPageSchema, tenantSchema, tenantStatusSchema } from './responses/tenant-responses.js';

const tenantParams = z.strictObject({ tenant: slug });

export function tenantRoutes(tenants: TenantService, status: StatusService): RouteSpec[] {
  return [
    route({
      method: 'get',
      path: '/v1/tenants',
      summary: 'List tenants',
      tag: 'tenants',
      permission: 'tenant:read',
      query: z.strictObject({ ...paging, label: labelSelector }),
      responses: { 200: json(tenantPageSchema, 'A page of tenants') },
      handler: async ({ principal, query }) => ({
        body: await tenants.list(principal, { limit: query.limit, cursor: query.cursor, labels: query.label }),
      }),
    }),
    route({
      method: 'post',
      path: '/v1/tenants',
      summary: 'Create a tenant',
      tag: 'tenants',
      permission: 'tenants:create',
      body: createTenantSchema,
      responses: { 201: json(tenantSchema, 'The tenant created', ETAG) },
      handler: async ({ write, body }) => written(await tenants.create(write, body), 201),
    }),
    route({
      method: 'get',
      path: '/v1/tenants/:tenant',
      summary: 'Get a tenant',
      tag: 'tenants',
      permission: 'tenant:read',
      params: tenantParams,
      responses: { 200: json(tenantSchema, 'The tenant', ETAG) },
      handler: async ({ params }) => {
        const tenant = await tenants.get(params.tenant);
        return { body: tenant, etag: tenant.revision };
      },
    }),
    route({
      method: 'patch',
      path: '/v1/tenants/:tenant',
      summary: 'Change a tenant',
      tag: 'tenants',
      permission: 'tenant:write',
      params: tenantParams,
      body: patchTenantSchema,
      responses: { 200: json(tenantSchema, 'The tenant changed', ETAG) },
      handler: async ({ write, params, body }) => written(await tenants.patch(write, params.tenant, body)),
    }),
    route({
      method: 'get',
      path: '/v1/tenants/:tenant/status',
      summary: "How far the fleet has converged on the tenant, and its members' health as the proxies report it",
      tag: 'tenants',
      permission: 'tenant:read',
      params: tenantParams,
      responses: { 200: json(tenantStatusSchema, "The tenant's convergence and its members' health") },
      handler: async ({ params }) => ({ body: await status.tenant(params.tenant) }),
    }),
    route({
      method: 'post',
      path: '/v1/tenants/:tenant/approve',
      summary: "Approve a tenant's pending registration or capacity raise",
      tag: 'tenants',
      permission: 'tenants:approve',
      params: tenantParams,
      body: approvalDecisionSchema,
      ifMatch: true,
      responses: { 200: json(tenantSchema, 'The tenant, active or with its raise applied', ETAG) },
      handler: async ({ write, params, body }) => written(await tenants.approve(write, params.tenant, body.reason)),
    }),
    route({
      method: 'post',
      path: '/v1/tenants/:tenant/reject',
      summary: "Reject a tenant's pending registration or capacity raise, with a reason",
      tag: 'tenants',
      permission: 'tenants:approve',
      params: tenantParams,
      body: rejectionSchema,
      ifMatch: true,
      responses: { 200: json(tenantSchema, 'The tenant, rejected or with its raise dropped', ETAG) },
      handler: async ({ write, params, body }) => written(await tenants.reject(write, params.tenant, body.reason)),
    }),
    route({
      method: 'delete',
      path: '/v1/tenants/:tenant',
      summary: 'Delete a tenant (refused while it has VIPs)',
      tag: 'tenants',
      permission: 'tenants:delete',
      params: tenantParams,
      responses: { 200: json(deletedSchema, 'Deleted') },
      handler: async ({ write, params }) => written(await tenants.delete(write, params.tenant)),
    }),
  ];
}
