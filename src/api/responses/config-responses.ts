import { z } from 'zod';
import { NODE_KINDS } from '../../domain/node.js';
import { timestamp } from './response-fields.js';

/** File name → content. */
const files = z.record(z.string(), z.string());

export const heldTenantSchema = z
  .object({
    tenant: z.string(),
    error: z.string(),
    servingRevision: z
      .number()
      .int()
      .nullable()
      .describe('The revision of the state still served, or null when the tenant is left out entirely'),
    cause: z
      .literal('reload')
      .optional()
      .describe(
        '`reload`: the node could not bind its new listeners; absent: its state did not validate for the node’s kind',
      ),
  })
  .meta({ id: 'HeldTenant' });

export const nodeConfigSchema = z
  .object({
    node: z.string(),
    kind: z.enum(NODE_KINDS),
    revision: z.number().int().describe('The desired-state revision these files reflect'),
    contentHash: z.string().describe('The ETag agents poll with'),
    structuralHash: z.string().describe('Changes only when the new files need a proxy reload'),
    files,
    heldTenants: z
      .array(heldTenantSchema)
      .describe('Tenants served at an older state (or left out) because their current state failed validation'),
    createdAt: timestamp,
  })
  .meta({ id: 'NodeConfig' });

export const tenantRenderSchema = z
  .object({
    tenant: z.string(),
    kind: z.enum(NODE_KINDS),
    files: files.describe('Private keys are withheld'),
    validation: z.discriminatedUnion('ok', [
      z.object({ ok: z.literal(true) }),
      z.object({ ok: z.literal(false), message: z.string() }),
    ]),
    revision: z.number().int(),
  })
  .meta({ id: 'TenantRender' });
