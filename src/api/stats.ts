import { z } from 'zod';
import { slug } from '../domain/fields.js';
import { MIN_STEP_S } from '../domain/stats.js';
import type { StatsService } from '../services/stats-service.js';
import { json, route, type RouteSpec } from './route.js';
import { statsSeriesSchema } from './responses/stats-responses.js';

const HOUR_MS = 3_600_000;

export function statsRoutes(stats: StatsService): RouteSpec[] {
  return [
    route({
      method: 'get',
      path: '/v1/tenants/:tenant/stats',
      summary:
        "A tenant's traffic per VIP over time (request rate, sessions, 2xx/4xx/5xx/429 rates, bytes, latency, cap), summed over nodes",
      tag: 'stats',
      permission: 'tenant:read',
      params: z.strictObject({ tenant: slug }),
      query: z.strictObject({
        /** Default: one hour before `to`. */
        from: z.iso.datetime({ offset: true }).optional(),
        /** Default: now. */
        to: z.iso.datetime({ offset: true }).optional(),
        /** Seconds per point. */
        step: z.coerce
          .number()
          .int('must be a whole number of seconds')
          .min(MIN_STEP_S)
          .max(31 * 86_400)
          .default(60),
      }),
      responses: { 200: json(statsSeriesSchema, 'One series per VIP') },
      handler: async ({ params, query }) => {
        // One reading of the clock: the default window and the choice of raw samples or rollups
        // must agree, or a millisecond between two readings makes the default hour "too old".
        const now = new Date();
        const to = query.to === undefined ? now : new Date(query.to);
        const from = query.from === undefined ? new Date(to.getTime() - HOUR_MS) : new Date(query.from);
        return { body: await stats.series(params.tenant, { from, to, stepS: query.step }, now) };
      },
    }),
  ];
}
