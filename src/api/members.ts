import { z } from 'zod';
import { paging, slug } from '../domain/fields.js';
import { createMemberSchema, patchMemberSchema, replaceMembersSchema } from '../domain/member.js';
import type { MemberService } from '../services/member-service.js';
import { ETAG, json, route, written, type RouteSpec } from './route.js';
import { memberPageSchema, memberSchema, memberSetSchema } from './responses/member-responses.js';
import { deletedSchema } from './responses/response-fields.js';

const poolParams = z.strictObject({ tenant: slug, pool: slug });
const memberParams = z.strictObject({ tenant: slug, pool: slug, member: slug });

export function memberRoutes(members: MemberService): RouteSpec[] {
  return [
    route({
      method: 'get',
      path: '/v1/tenants/:tenant/pools/:pool/members',
      summary: 'List the members of a pool',
      tag: 'members',
      permission: 'tenant:read',
      params: poolParams,
      query: z.strictObject({ ...paging }),
      responses: { 200: json(memberPageSchema, 'A page of members') },
      handler: async ({ params, query }) => ({ body: await members.list(params.tenant, params.pool, query) }),
    }),
    route({
      method: 'post',
      path: '/v1/tenants/:tenant/pools/:pool/members',
      summary: 'Add a member to a pool',
      tag: 'members',
      permission: 'tenant:write',
      params: poolParams,
      body: createMemberSchema,
      responses: { 201: json(memberSchema, 'The member added', ETAG) },
      handler: async ({ write, params, body }) =>
        written(await members.create(write, params.tenant, params.pool, body), 201),
    }),
    route({
      method: 'put',
      path: '/v1/tenants/:tenant/pools/:pool/members',
      summary: 'Replace the whole member set of a pool in one revision',
      tag: 'members',
      permission: 'tenant:write',
      params: poolParams,
      body: replaceMembersSchema,
      ifMatch: false,
      responses: { 200: json(memberSetSchema, 'The whole set after the write, and the revision') },
      // The set has no version of its own: the answer carries the revision but no ETag.
      handler: async ({ write, params, body }) => ({
        body: await members.replace(write, params.tenant, params.pool, body),
      }),
    }),
    route({
      method: 'get',
      path: '/v1/tenants/:tenant/pools/:pool/members/:member',
      summary: 'Get a member',
      tag: 'members',
      permission: 'tenant:read',
      params: memberParams,
      responses: { 200: json(memberSchema, 'The member', ETAG) },
      handler: async ({ params }) => {
        const member = await members.get(params.tenant, params.pool, params.member);
        return { body: member, etag: member.revision };
      },
    }),
    route({
      method: 'patch',
      path: '/v1/tenants/:tenant/pools/:pool/members/:member',
      summary: 'Change a member (address, port, weight, state, backup)',
      tag: 'members',
      permission: 'tenant:write',
      params: memberParams,
      body: patchMemberSchema,
      responses: { 200: json(memberSchema, 'The member changed', ETAG) },
      handler: async ({ write, params, body }) =>
        written(await members.patch(write, params.tenant, params.pool, params.member, body)),
    }),
    route({
      method: 'delete',
      path: '/v1/tenants/:tenant/pools/:pool/members/:member',
      summary: 'Remove a member from a pool',
      tag: 'members',
      permission: 'tenant:write',
      params: memberParams,
      responses: { 200: json(deletedSchema, 'Removed') },
      handler: async ({ write, params }) =>
        written(await members.delete(write, params.tenant, params.pool, params.member)),
    }),
  ];
}
