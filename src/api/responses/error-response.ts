import { z } from 'zod';

/** Every error answer (see error-handler.ts): a stable code, a sentence, and details where they help. */
export const errorSchema = z
  .object({
    error: z.object({
      code: z.string().meta({ examples: ['validation_failed'] }),
      message: z.string(),
      details: z
        .unknown()
        .describe(
          '400: every offending field as `{path, message}`; 404: the resource and id; 409, 412: what conflicts; else null',
        ),
    }),
  })
  .meta({ id: 'Error' });
