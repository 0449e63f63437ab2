import { z } from 'zod';
import { cursorOf, slug } from '../domain/fields.js';
import { ForbiddenError, NotFoundError } from '../domain/errors.js';
import { ROLE_PERMISSIONS, forbiddenMessage } from '../domain/token.js';
import type { AuditService } from '../services/audit-service.js';
import { json, route, type RouteSpec } from './route.js';
import { auditPageSchema } from './responses/audit-responses.js';

const auditQuery = z
  .strictObject({
    tenant: slug.optional(),
    actor: z
      .string()
      .regex(/^[A-Za-z0-9._-]{1,80}$/, 'must be a token name')
      .optional(),
    resourceType: z
      .string()
      .regex(/^[a-z-]{1,40}$/, 'must be a resource type such as vip or member')
      .optional(),
    since: z.iso.datetime({ offset: true }).optional(),
    until: z.iso.datetime({ offset: true }).optional(),
    cursor: cursorOf(/^\d{1,18}$/, 'an event id').optional(),
    limit: z.coerce.number().int().min(1).max(500).default(100),
  })
  .refine((q) => q.since === undefined || q.until === undefined || Date.parse(q.since) < Date.parse(q.until), {
    path: ['until'],
    message: 'must be after since',
  });

/**
 * The audit log: every write with who, when, from where, the request id and the resource before
 * and after. A tenant-scoped token sees its own tenant's events and nothing else.
 */
export function auditRoutes(audit: AuditService): RouteSpec[] {
  return [
    route({
      method: 'get',
      path: '/v1/audit',
      summary: 'List audit events, newest first',
      tag: 'audit',
      permission: null,
      query: auditQuery,
      notFound: true,
      responses: { 200: json(auditPageSchema, 'A page of events, newest first') },
      handler: async ({ principal, query }) => {
        let tenant = query.tenant;
        if (principal.tenantId !== null) {
          if (tenant !== undefined && tenant !== principal.tenantId) throw new NotFoundError('tenant', tenant);
          tenant = principal.tenantId;
        } else if (!ROLE_PERMISSIONS[principal.role].has('audit:read')) {
          throw new ForbiddenError(forbiddenMessage(principal.role, 'read the audit log', 'audit:read'));
        }
        return { body: await audit.list({ ...query, tenant }) };
      },
    }),
  ];
}
