import { z } from 'zod';
import { MEMBER_STATES } from '../../domain/member.js';
import { pageOf, timestamp } from './response-fields.js';

export const memberSchema = z
  .object({
    name: z.string(),
    pool: z.string(),
    address: z.string(),
    port: z.number().int(),
    weight: z.number().int().describe('0-256; 0 receives no new traffic'),
    state: z.enum(MEMBER_STATES),
    backup: z.boolean(),
    revision: z.number().int(),
    createdAt: timestamp,
    updatedAt: timestamp,
  })
  .meta({ id: 'Member' });

export const memberPageSchema = pageOf(memberSchema, 'MemberPage');

export const memberSetSchema = z
  .object({
    items: z.array(memberSchema),
    revision: z.number().int().describe('The revision committed (the current one when the set was already so)'),
  })
  .meta({ id: 'MemberSet' });
