import { z } from 'zod';
import { pageOf, timestamp } from './response-fields.js';

export const caBundleSchema = z
  .object({
    name: z.string(),
    certificates: z.array(z.object({ subject: z.string(), notAfter: timestamp, fingerprintSha256: z.string() })),
    notAfter: timestamp.describe(
      'The earliest expiry among them: when verification starts failing for chains through it',
    ),
    revision: z.number().int(),
    createdAt: timestamp,
    updatedAt: timestamp,
  })
  .meta({ id: 'CaBundle' });

export const caBundlePageSchema = pageOf(caBundleSchema, 'CaBundlePage');
