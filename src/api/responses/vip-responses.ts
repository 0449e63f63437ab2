import { z } from 'zod';
import { PERSISTENCE_TYPES, VIP_PROTOCOLS } from '../../domain/vip.js';
import { pageOf, timestamp } from './response-fields.js';

export const vipSchema = z
  .object({
    name: z.string(),
    address: z.string(),
    addressPool: z
      .string()
      .nullable()
      .describe('The address pool the address was leased from, or null when it was given explicitly'),
    port: z.number().int(),
    protocol: z.enum(VIP_PROTOCOLS),
    hostnames: z.array(z.string()),
    certificate: z.string().nullable(),
    persistence: z.enum(PERSISTENCE_TYPES),
    cookieName: z.string(),
    timeouts: z.object({ clientMs: z.number().int(), serverMs: z.number().int(), connectMs: z.number().int() }),
    allowlist: z.array(z.string()),
    defaultPool: z.string().nullable(),
    revision: z.number().int(),
    createdAt: timestamp,
    updatedAt: timestamp,
  })
  .meta({ id: 'Vip' });

export const vipPageSchema = pageOf(vipSchema, 'VipPage');
