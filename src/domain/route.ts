import { z } from 'zod';
import { headerName, headerValue, hostPattern, slug, urlPath } from './fields.js';

export interface RouteMatch {
  readonly host?: string;
  readonly pathPrefix?: string;
  readonly header?: { readonly name: string; readonly value: string };
}

/** Content-based routing on a VIP. Lower priority numbers are evaluated first. */
export interface Route {
  readonly name: string;
  readonly vip: string;
  readonly priority: number;
  readonly match: RouteMatch;
  readonly pool: string;
  readonly revision: number;
  readonly createdAt: string;
  readonly updatedAt: string;
}

const match = z
  .strictObject({
    host: hostPattern.optional(),
    pathPrefix: urlPath.optional(),
    header: z.strictObject({ name: headerName, value: headerValue }).optional(),
  })
  .refine((m) => m.host !== undefined || m.pathPrefix !== undefined || m.header !== undefined, {
    message: 'a route must match on at least one of host, pathPrefix, header',
  });

const priority = z.number().int().min(0).max(10_000);

export const createRouteSchema = z.strictObject({
  name: slug,
  priority: priority.default(100),
  match,
  pool: slug,
});
export type CreateRoute = z.output<typeof createRouteSchema>;

export const patchRouteSchema = z.strictObject({
  priority: priority.optional(),
  match: match.optional(),
  pool: slug.optional(),
});
export type PatchRoute = z.output<typeof patchRouteSchema>;
