import { z } from 'zod';
import { pageOf, timestamp } from './response-fields.js';

/** A content route of a VIP (not a REST route). */
export const contentRouteSchema = z
  .object({
    name: z.string(),
    vip: z.string(),
    priority: z.number().int().describe('Lower numbers are evaluated first'),
    match: z.object({
      host: z.string().optional(),
      pathPrefix: z.string().optional(),
      header: z.object({ name: z.string(), value: z.string() }).optional(),
    }),
    pool: z.string(),
    revision: z.number().int(),
    createdAt: timestamp,
    updatedAt: timestamp,
  })
  .meta({ id: 'Route' });

export const contentRoutePageSchema = pageOf(contentRouteSchema, 'RoutePage');
