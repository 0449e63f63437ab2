import { z } from 'zod';
import { paging, slug } from '../domain/fields.js';
import { approvalDecisionSchema, createTenantSchema, labelSelector, patchTenantSchema, rejectionSchema } from '../domain/tenant.js';
import type { TenantService } from '../services/tenant-service.js';
import type { StatusService } from '../services/status-service.js';
import { route, written, type RouteSpec } from './route.js';

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
      handler: async ({ write, body }) => written(await tenants.create(write, body), 201),
    }),
    route({
      method: 'get',
      path: '/v1/tenants/:tenant',
      summary: 'Get a tenant',
      tag: 'tenants',
      permission: 'tenant:read',
      params: tenantParams,
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
      handler: async ({ write, params, body }) => written(await tenants.patch(write, params.tenant, body)),
    }),
    route({
      method: 'get',
      path: '/v1/tenants/:tenant/status',
      summary: "How far the fleet has converged on the tenant, and its members' health as the proxies report it",
      tag: 'tenants',
      permission: 'tenant:read',
      params: tenantParams,
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
      handler: async ({ write, params, body }) => written(await tenants.reject(write, params.tenant, body.reason)),
    }),
    route({
      method: 'delete',
      path: '/v1/tenants/:tenant',
      summary: 'Delete a tenant (refused while it has VIPs)',
      tag: 'tenants',
      permission: 'tenants:delete',
      params: tenantParams,
      handler: async ({ write, params }) => written(await tenants.delete(write, params.tenant)),
    }),
  ];
}
