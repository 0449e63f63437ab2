import { z } from 'zod';
import { ForbiddenError, NotFoundError } from '../domain/errors.js';
import { paging, slug } from '../domain/fields.js';
import { createNodeSchema, nodeReportSchema, patchNodeSchema } from '../domain/node.js';
import { ROLE_PERMISSIONS, forbiddenMessage, type Principal } from '../domain/token.js';
import type { NodeService } from '../services/node-service.js';
import { ETAG, json, route, written, type RouteSpec } from './route.js';
import { proxyNodePageSchema, proxyNodeSchema, registeredNodeSchema } from './responses/node-responses.js';
import { deletedSchema } from './responses/response-fields.js';

const nodeParams = z.strictObject({ node: slug });

export function nodeRoutes(nodes: NodeService): RouteSpec[] {
  return [
    route({
      method: 'get',
      path: '/v1/nodes',
      summary: 'List proxy nodes',
      tag: 'nodes',
      permission: 'fleet:read',
      query: z.strictObject(paging),
      responses: { 200: json(proxyNodePageSchema, 'A page of nodes') },
      handler: async ({ query }) => ({ body: await nodes.list(query) }),
    }),
    route({
      method: 'post',
      path: '/v1/nodes',
      summary: 'Register a proxy node; its agent token is shown once',
      tag: 'nodes',
      permission: 'fleet:write',
      body: createNodeSchema,
      responses: { 201: json(registeredNodeSchema, 'The node registered, with its agent token', ETAG) },
      handler: async ({ write, body }) => written(await nodes.create(write, body), 201),
    }),
    route({
      method: 'get',
      path: '/v1/nodes/:node',
      summary: 'Get a proxy node',
      tag: 'nodes',
      // Checked in the handler: fleet readers, or the node's own agent.
      permission: null,
      params: nodeParams,
      responses: { 200: json(proxyNodeSchema, 'The node', ETAG) },
      handler: async ({ principal, params }) => {
        requireNodeRead(principal, params.node);
        const node = await nodes.get(params.node);
        return { body: node, etag: node.revision };
      },
    }),
    route({
      method: 'post',
      path: '/v1/nodes/:node/status',
      summary: "Report the node's state (its agent): heartbeat, applied config, or a failed apply",
      tag: 'nodes',
      permission: 'node:agent',
      params: nodeParams,
      body: nodeReportSchema,
      dryRun: false,
      responses: { 200: json(proxyNodeSchema, 'The node, with the report recorded') },
      handler: async ({ params, body }) => ({ body: await nodes.report(params.node, body) }),
    }),
    route({
      method: 'patch',
      path: '/v1/nodes/:node',
      summary: 'Change a proxy node',
      tag: 'nodes',
      permission: 'fleet:write',
      params: nodeParams,
      body: patchNodeSchema,
      responses: { 200: json(proxyNodeSchema, 'The node changed', ETAG) },
      handler: async ({ write, params, body }) => written(await nodes.patch(write, params.node, body)),
    }),
    route({
      method: 'delete',
      path: '/v1/nodes/:node',
      summary: 'Delete a proxy node and its agent token',
      tag: 'nodes',
      permission: 'fleet:write',
      params: nodeParams,
      responses: { 200: json(deletedSchema, 'Deleted, with its agent token') },
      handler: async ({ write, params }) => written(await nodes.delete(write, params.node)),
    }),
  ];
}

/**
 * An agent may read its own node (it learns its settings from it); mount.ts has already answered
 * 404 for any other node, and the check is repeated here so this route never depends on it alone.
 */
function requireNodeRead(principal: Principal, node: string): void {
  if (principal.role === 'agent') {
    if (principal.nodeName !== node) throw new NotFoundError('node', node);
    return;
  }
  if (!ROLE_PERMISSIONS[principal.role].has('fleet:read')) {
    throw new ForbiddenError(forbiddenMessage(principal.role, 'get a proxy node', 'fleet:read'));
  }
}
