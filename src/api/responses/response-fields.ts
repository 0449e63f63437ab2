import { z } from 'zod';

/**
 * Pieces the response schemas share. Response schemas describe what the server sends: plain
 * types, enums and nullability, no transforms (the document is generated from their output side).
 */

/** An ISO 8601 time in UTC, as every answer writes times. */
export const timestamp = z.string().meta({ format: 'date-time' });

/** The revision of a write that leaves no resource to show (a delete). */
export const deletedSchema = z
  .object({
    revision: z.number().int().describe('The revision committed (the current one when the write changed nothing)'),
  })
  .meta({ id: 'Deleted' });

/** One page of a keyset-paged list: `nextCursor` is the last key on the page, or null at the end. */
export const pageOf = <T extends z.ZodType>(item: T, id: string) =>
  z
    .object({
      items: z.array(item),
      nextCursor: z.string().nullable().describe('Pass as `?cursor=` for the next page; null on the last page'),
    })
    .meta({ id });

export const resources = z
  .object({ vcpu: z.number().describe('vCPUs, up to 3 decimals'), memoryMb: z.number().int() })
  .meta({ id: 'Resources' });

/** Enforceable capacity: concurrent connections and requests per second. */
export const resourceVector = z
  .object({ connections: z.number(), requestsPerSecond: z.number() })
  .meta({ id: 'ResourceVector' });
