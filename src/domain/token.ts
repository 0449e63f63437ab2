import { z } from 'zod';
import type { Clock } from '../util/clock.js';
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
    'tenants:create',
    'tenants:delete',
    'tenants:approve',
    'tenant:read',
    'tenant:write',
    'tenant:capacity',
    'fleet:read',
    'fleet:write',
    'tokens:manage',
    'audit:read',
    'node:agent',
  ]),
  operator: new Set<Permission>([
    'tenants:create',
    'tenant:read',
    'tenant:write',
    'tenant:capacity',
    'fleet:read',
    'audit:read',
  ]),
  'tenant-admin': new Set<Permission>(['tenant:read', 'tenant:write']),
  'tenant-viewer': new Set<Permission>(['tenant:read']),
  registrar: new Set<Permission>(['tenants:create', 'tenant:read', 'tenant:write']),
  agent: new Set<Permission>(['node:agent']),
};

/** "an operator token", "a registrar token": how every message names a caller by its role. */
export const roleToken = (role: Role): string => `${/^[aeiou]/.test(role) ? 'an' : 'a'} ${role} token`;

/** The roles that hold `permission`, in the order of ROLES. */
export const rolesWith = (permission: Permission): Role[] =>
  ROLES.filter((role) => ROLE_PERMISSIONS[role].has(permission));

/**
 * The 403 message for a role that lacks `needs`: what it may not do (a verb phrase such as
 * "call GET /v1/nodes"), and which tokens may, so the caller knows what to use instead.
 */
export function forbiddenMessage(role: Role, action: string, needs: Permission): string {
  const holders = rolesWith(needs);
  const list =
    holders.length === 1 ? holders[0]! : `${holders.slice(0, -1).join(', ')} or ${holders[holders.length - 1]!}`;
  return `${roleToken(role)} may not ${action}: that needs the ${needs} permission, which ${list} tokens have`;
}

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

/**
 * The body of POST /v1/tokens. `clock` says when "in the future" is for `expiresAt`: read as each
 * body is parsed, not when the schema is built.
 */
export function createTokenSchema(clock: Clock) {
  return z
    .strictObject({
      name: slug,
      role: z.enum(ROLES),
      tenant: slug.nullable().default(null),
      node: slug.nullable().default(null),
      expiresAt: z.iso.datetime({ offset: true }).nullable().default(null),
    })
    .superRefine((t, ctx) => {
      if (TENANT_SCOPED_ROLES.has(t.role) && t.tenant === null) {
        ctx.addIssue({ code: 'custom', path: ['tenant'], message: `${roleToken(t.role)} needs a tenant` });
      }
      if (!TENANT_SCOPED_ROLES.has(t.role) && t.tenant !== null) {
        ctx.addIssue({ code: 'custom', path: ['tenant'], message: `${roleToken(t.role)} is not scoped to a tenant` });
      }
      if (t.role === 'agent' && t.node === null) {
        ctx.addIssue({ code: 'custom', path: ['node'], message: 'an agent token needs a node' });
      }
      if (t.role !== 'agent' && t.node !== null) {
        ctx.addIssue({ code: 'custom', path: ['node'], message: 'only agent tokens name a node' });
      }
      if (t.expiresAt !== null && Date.parse(t.expiresAt) <= clock.now()) {
        ctx.addIssue({ code: 'custom', path: ['expiresAt'], message: 'must be in the future' });
      }
    });
}
export type CreateToken = z.output<ReturnType<typeof createTokenSchema>>;
