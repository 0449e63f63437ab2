import { z } from 'zod';
import { pageOf, timestamp } from './response-fields.js';

/** A certificate's metadata: the private key is write-only. */
export const certificateSchema = z
  .object({
    name: z.string(),
    sans: z.array(z.string()),
    subject: z.string(),
    issuer: z.string(),
    notBefore: timestamp,
    notAfter: timestamp,
    fingerprintSha256: z.string(),
    revision: z.number().int(),
    createdAt: timestamp,
    updatedAt: timestamp,
  })
  .meta({ id: 'Certificate' });

export const certificatePageSchema = pageOf(certificateSchema, 'CertificatePage');
