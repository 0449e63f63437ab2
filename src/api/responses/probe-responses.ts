import { z } from 'zod';

export const healthySchema = z.object({ status: z.literal('ok') }).meta({ id: 'Health' });

export const readySchema = z.object({ status: z.literal('ready') }).meta({ id: 'Readiness' });
