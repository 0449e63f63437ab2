import { z } from 'zod';
import { slug } from '../domain/fields.js';
import { NODE_KINDS } from '../domain/node.js';
import type { ConfigService } from '../services/config/config-service.js';
import { empty, json, route, type RouteSpec } from './route.js';
import { nodeConfigSchema, tenantRenderSchema } from './responses/config-responses.js';

const CONFIG_HEADERS = {
  ETag: 'The content hash of the files, quoted: send it back as If-None-Match',
  'X-Switchyard-Revision': 'The desired-state revision the files reflect',
};

/** Rendered configuration: what a node runs (agents and admins only: it holds private keys) and tenant previews. */
export function configRoutes(configs: ConfigService): RouteSpec[] {
  return [
    route({
      method: 'get',
      path: '/v1/nodes/:node/config',
      summary: "Get the node's rendered configuration files",
      tag: 'configs',
      permission: 'node:agent',
      params: z.strictObject({ node: slug }),
      query: z.strictObject({
        /** Long poll: with If-None-Match, wait up to this many seconds for a different config. */
        wait: z.coerce.number().int().min(0).max(120).default(0),
      }),
      headers: {
        'If-None-Match':
          'The ETag of the files the agent has: 304 while they are current (with `wait`, after the wait)',
      },
      responses: {
        200: json(nodeConfigSchema, "The node's files", CONFIG_HEADERS),
        304: empty('The files named by If-None-Match are current', CONFIG_HEADERS),
      },
      handler: async ({ params, query, req }) => {
        const known = /^"([0-9a-f]{64})"$/.exec(String(req.headers['if-none-match'] ?? ''))?.[1];
        const aborted = new AbortController();
        // Per response, not per socket: keep-alive connections must not collect a listener per poll.
        req.res?.once('close', () => aborted.abort());
        const config =
          known !== undefined && query.wait > 0
            ? ((await configs.waitForChange(params.node, known, query.wait * 1000, aborted.signal)) ??
              (await configs.latestBuilt(params.node)))
            : await configs.forNode(params.node);
        const etag = `"${config.contentHash}"`;
        const headers = { ETag: etag, 'X-Switchyard-Revision': String(config.revision), 'Cache-Control': 'no-store' };
        if (req.headers['if-none-match'] === etag) return { status: 304, headers };
        return { headers, body: config };
      },
    }),
    route({
      method: 'get',
      path: '/v1/tenants/:tenant/render',
      summary: "Preview a tenant's part of a node's configuration, validated by the real binary",
      tag: 'configs',
      permission: 'tenant:read',
      params: z.strictObject({ tenant: slug }),
      query: z.strictObject({ kind: z.enum(NODE_KINDS).default('haproxy') }),
      responses: {
        200: json(tenantRenderSchema, "The tenant's files (private keys withheld) and the validator's verdict"),
      },
      handler: async ({ params, query }) => ({
        body: { tenant: params.tenant, kind: query.kind, ...(await configs.preview(params.tenant, query.kind)) },
      }),
    }),
  ];
}
