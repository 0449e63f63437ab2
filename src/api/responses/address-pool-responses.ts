import { z } from 'zod';
import { pageOf, timestamp } from './response-fields.js';

export const addressPoolSchema = z
  .object({
    name: z.string(),
    cidr: z.string(),
    size: z.number().int().describe('Usable addresses (network and broadcast excluded), capped at 2^53'),
    leased: z.number().int(),
    revision: z.number().int(),
    createdAt: timestamp,
  })
  .meta({ id: 'AddressPool' });

export const addressPoolPageSchema = pageOf(addressPoolSchema, 'AddressPoolPage');
