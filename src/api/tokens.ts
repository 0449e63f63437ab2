import { z } from 'zod';
import { paging } from '../domain/fields.js';
import { createTokenSchema } from '../domain/token.js';
import type { TokenService } from '../services/token-service.js';
import { systemClock, type Clock } from '../util/clock.js';
import { json, route, written, type RouteSpec } from './route.js';
import { fetchSize, toPage } from '../services/page.js';
import { deletedSchema } from './responses/response-fields.js';
import { apiTokenPageSchema, apiTokenSchema, createdApiTokenSchema } from './responses/token-responses.js';

const tokenParams = z.strictObject({ token: z.string().max(64) });

export function tokenRoutes(tokens: TokenService, clock: Clock = systemClock): RouteSpec[] {
  return [
    route({
      method: 'get',
      path: '/v1/tokens',
      summary: 'List API tokens (never their secrets)',
      tag: 'tokens',
      permission: 'tokens:manage',
      query: z.strictObject(paging),
      responses: { 200: json(apiTokenPageSchema, 'A page of tokens') },
      handler: async ({ query }) => {
        const items = await tokens.list({ limit: fetchSize(query.limit), after: query.cursor });
        return { body: toPage(items, query.limit, (x) => x.name) };
      },
    }),
    route({
      method: 'post',
      path: '/v1/tokens',
      summary: 'Create an API token; the secret is shown once',
      tag: 'tokens',
      permission: 'tokens:manage',
      body: createTokenSchema(clock),
      notFound: true,
      responses: { 201: json(createdApiTokenSchema, 'The token created, with its secret') },
      handler: async ({ write, body }) => {
        const w = await tokens.create(write, body);
        return { status: 201, body: { ...w.value, revision: w.revision } };
      },
    }),
    route({
      method: 'get',
      path: '/v1/tokens/:token',
      summary: 'Get an API token',
      tag: 'tokens',
      permission: 'tokens:manage',
      params: tokenParams,
      responses: { 200: json(apiTokenSchema, 'The token') },
      handler: async ({ params }) => ({ body: await tokens.get(params.token) }),
    }),
    route({
      method: 'delete',
      path: '/v1/tokens/:token',
      summary: 'Revoke an API token',
      tag: 'tokens',
      permission: 'tokens:manage',
      params: tokenParams,
      ifMatch: false,
      responses: { 200: json(deletedSchema, 'Revoked') },
      handler: async ({ write, params }) => written(await tokens.delete(write, params.token)),
    }),
  ];
}
