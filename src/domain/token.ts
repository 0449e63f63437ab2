import { z } from 'zod';
import { slug } from './fields.js';

export const ROLES = ['admin', 'operator', 'tenant-admin', 'tenant-viewer', 'registrar', 'agent'] as const;
export type Role = (typeof ROLES)[number];

/**
 * What a caller may do. Tenant-scoped permissions are further limited to the token's tenant;
 * an agent may only touch its own node.
 */
export type Permission =
  | 'tenants:create'
  | 'tenants:delete'
  | 'tenants:approve'
  | 'tenant:read'
  | 'tenant:write'
  | 'tenant:capacity'
  | 'fleet:read'
  | 'fleet:write'
  | 'tokens:manage'
  | 'audit:read'
  | 'node:agent';

export const ROLE_PERMISSIONS: Record<Role, ReadonlySet<Permission>> = {
  admin: new Set<Permission>([
    'tenants:create', 'tenants:delete', 'tenants:approve', 'tenant:read', 'tenant:write', 'tenant:capacity',
    'fleet:read', 'fleet:write', 'tokens:manage', 'audit:read', 'node:agent',
  ]),
  operator: new Set<Permission>([
    'tenants:create', 'tenant:read', 'tenant:write', 'tenant:capacity', 'fleet:read', 'audit:read',
  ]),
  'tenant-admin': new Set<Permission>(['tenant:read', 'tenant:write']),
  'tenant-viewer': new Set<Permission>(['tenant:read']),
  registrar: new Set<Permission>(['tenants:create', 'tenant:read', 'tenant:write']),
  agent: new Set<Permission>(['node:agent']),
};

export const TENANT_SCOPED_ROLES: ReadonlySet<Role> = new Set(['tenant-admin', 'tenant-viewer']);

/** Who is calling: resolved from the bearer token on every request. */
export interface Principal {
  readonly tokenId: string;
  readonly name: string;
  readonly role: Role;
  /** Set for tenant-scoped tokens: they see this tenant and nothing else. */
  readonly tenantId: string | null;
  /** Set for agent tokens: the one node whose config they may read. */
  readonly nodeName: string | null;
}

export interface ApiToken {
  readonly id: string;
  readonly name: string;
  readonly role: Role;
  readonly tenant: string | null;
  readonly node: string | null;
  readonly createdAt: string;
  readonly expiresAt: string | null;
  readonly lastUsedAt: string | null;
}

export const createTokenSchema = z
  .strictObject({
    name: slug,
    role: z.enum(ROLES),
    tenant: slug.nullable().default(null),
    node: slug.nullable().default(null),
    expiresAt: z.iso.datetime({ offset: true }).nullable().default(null),
  })
  .superRefine((t, ctx) => {
    if (TENANT_SCOPED_ROLES.has(t.role) && t.tenant === null) {
      ctx.addIssue({ code: 'custom', path: ['tenant'], message: `a ${t.role} token needs a tenant` });
    }
    if (!TENANT_SCOPED_ROLES.has(t.role) && t.tenant !== null) {
      ctx.addIssue({ code: 'custom', path: ['tenant'], message: `a ${t.role} token is not scoped to a tenant` });
    }
    if (t.role === 'agent' && t.node === null) {
      ctx.addIssue({ code: 'custom', path: ['node'], message: 'an agent token needs a node' });
    }
    if (t.role !== 'agent' && t.node !== null) {
      ctx.addIssue({ code: 'custom', path: ['node'], message: 'only agent tokens name a node' });
    }
    if (t.expiresAt !== null && Date.parse(t.expiresAt) <= Date.now()) {
      ctx.addIssue({ code: 'custom', path: ['expiresAt'], message: 'must be in the future' });
    }
  });
export type CreateToken = z.output<typeof createTokenSchema>;
