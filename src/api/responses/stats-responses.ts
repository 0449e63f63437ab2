import { z } from 'zod';
import { timestamp } from './response-fields.js';

const point = z.object({
  at: timestamp,
  requestRate: z.number(),
  sessions: z.number(),
  rate2xx: z.number(),
  rate4xx: z.number(),
  rate5xx: z.number(),
  rate429: z.number().describe('Requests answered 429 by the rate limiter, per second'),
  bytesInRate: z.number().describe('Bytes per second received from clients'),
  bytesOutRate: z.number().describe('Bytes per second sent to clients'),
  latencyMs: z
    .number()
    .nullable()
    .describe(
      "Mean time to answer a request (ms), weighted by each node's request rate; null when no node reported one (HAProxy reports none per VIP)",
    ),
  sessionLimit: z
    .number()
    .nullable()
    .describe('The frontend caps (maxconn) summed over nodes; null when no node reported one'),
});

export const statsSeriesSchema = z
  .object({
    tenant: z.string(),
    from: timestamp,
    to: timestamp,
    step: z.number().int().describe('Seconds per point'),
    source: z
      .enum(['raw', 'rollup'])
      .describe('Raw samples, or one-minute rollups for a window older than raw retention'),
    vips: z
      .array(z.object({ vip: z.string(), points: z.array(point) }))
      .describe('One series per VIP frontend, points only where samples exist, summed over nodes'),
  })
  .meta({ id: 'StatsSeries' });
