import { z } from 'zod';
import { pageOf, timestamp } from './response-fields.js';

export const auditEventSchema = z
  .object({
    id: z.number().int(),
    at: timestamp,
    revision: z.number().int(),
    actor: z.string().describe('The token name'),
    tokenId: z.string().nullable(),
    requestId: z.string(),
    sourceIp: z.string().nullable(),
    tenant: z.string().nullable(),
    action: z.string(),
    resourceType: z.string(),
    resourceId: z.string(),
    before: z.unknown().describe('The resource before the write (null when created)'),
    after: z.unknown().describe('The resource after the write (null when deleted)'),
  })
  .meta({ id: 'AuditEvent' });

export const auditPageSchema = pageOf(auditEventSchema, 'AuditPage');
