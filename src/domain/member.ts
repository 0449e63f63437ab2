import { z } from 'zod';
import { ipAddress, port, slug } from './fields.js';

export const MEMBER_STATES = ['enabled', 'drain', 'disabled'] as const;
export type MemberState = (typeof MEMBER_STATES)[number];

export interface Member {
  readonly name: string;
  readonly pool: string;
  readonly address: string;
  readonly port: number;
  /** 0-256, HAProxy's range; 0 receives no new traffic. */
  readonly weight: number;
  readonly state: MemberState;
  readonly backup: boolean;
  readonly revision: number;
  readonly createdAt: string;
  readonly updatedAt: string;
}

/**
 * What a proxy serves of a member: its settings without bookkeeping. The desired state carries
 * members in this shape; at 10,000 members a tenant's state is half the size, and so half the
 * work to load, hash and compare on every change.
 */
export type MemberSpec = Omit<Member, 'revision' | 'createdAt' | 'updatedAt'>;

const weight = z.number().int().min(0).max(256);

export const createMemberSchema = z.strictObject({
  name: slug,
  address: ipAddress,
  port,
  weight: weight.default(100),
  state: z.enum(MEMBER_STATES).default('enabled'),
  backup: z.boolean().default(false),
});
export type CreateMember = z.output<typeof createMemberSchema>;

export const patchMemberSchema = z.strictObject({
  address: ipAddress.optional(),
  port: port.optional(),
  weight: weight.optional(),
  state: z.enum(MEMBER_STATES).optional(),
  backup: z.boolean().optional(),
});
export type PatchMember = z.output<typeof patchMemberSchema>;

/** The whole member set of a pool, replaced in one call and one revision. */
export const replaceMembersSchema = z
  .strictObject({ members: z.array(createMemberSchema).max(1000) })
  .superRefine((body, ctx) => {
    const names = new Set<string>();
    const endpoints = new Set<string>();
    body.members.forEach((m, i) => {
      if (names.has(m.name))
        ctx.addIssue({ code: 'custom', path: ['members', i, 'name'], message: `duplicate member name ${m.name}` });
      const endpoint = `${m.address}|${m.port}`;
      if (endpoints.has(endpoint)) {
        ctx.addIssue({
          code: 'custom',
          path: ['members', i, 'address'],
          message: `duplicate member endpoint ${m.address}:${m.port}`,
        });
      }
      names.add(m.name);
      endpoints.add(endpoint);
    });
  });
export type ReplaceMembers = z.output<typeof replaceMembersSchema>;
