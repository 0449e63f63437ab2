import { z } from 'zod';
import { ROLES } from '../../domain/token.js';
import { pageOf, timestamp } from './response-fields.js';

const tokenFields = {
  id: z.string(),
  name: z.string(),
  role: z.enum(ROLES),
  tenant: z.string().nullable().describe('The one tenant a tenant-scoped token sees'),
  node: z.string().nullable().describe('The one node an agent token reads'),
  createdAt: timestamp,
  expiresAt: timestamp.nullable(),
  lastUsedAt: timestamp.nullable(),
};

/** A token as reads show it: never its secret. */
export const apiTokenSchema = z.object(tokenFields).meta({ id: 'ApiToken' });

export const apiTokenPageSchema = pageOf(apiTokenSchema, 'ApiTokenPage');

export const createdApiTokenSchema = z
  .object({
    ...tokenFields,
    secret: z
      .string()
      .nullable()
      .describe('The bearer secret, shown in this answer only (null in an Idempotency-Key replay)'),
    revision: z.number().int(),
  })
  .meta({ id: 'CreatedApiToken' });
