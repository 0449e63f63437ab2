import { z } from 'zod';
import { ALPN_PROTOCOLS, TLS_VERIFY_MODES } from '../../domain/member-tls.js';
import { ALGORITHMS, CHECK_TYPES } from '../../domain/pool.js';
import { pageOf, timestamp } from './response-fields.js';

const healthCheck = z.object({
  type: z.enum(CHECK_TYPES),
  path: z.string().describe('http/https only'),
  expectedStatus: z.string().describe('http/https only: a status list such as `200` or `200-399,404`'),
  host: z.string().nullable().describe('http/https only: the Host header sent with the check, or null for none'),
  port: z.number().int().nullable().describe("A port other than the member's, or null"),
  intervalMs: z.number().int(),
  timeoutMs: z.number().int(),
  rise: z.number().int(),
  fall: z.number().int(),
});

const memberTls = z.object({
  verify: z.enum(TLS_VERIFY_MODES),
  caBundle: z
    .string()
    .nullable()
    .describe("The tenant's CA bundle that signs the members' certificates; null: the system store"),
  sni: z
    .discriminatedUnion('from', [
      z.object({ from: z.literal('fixed'), name: z.string() }),
      z.object({ from: z.literal('host') }),
    ])
    .nullable(),
  clientCertificate: z
    .string()
    .nullable()
    .describe("One of the tenant's certificates, shown to members that ask for one (mTLS)"),
  alpn: z.array(z.enum(ALPN_PROTOCOLS)),
});

export const poolSchema = z
  .object({
    name: z.string(),
    algorithm: z.enum(ALGORITHMS),
    healthCheck: healthCheck.nullable().describe('null: no active health check; members are assumed up'),
    tls: memberTls.nullable().describe('null: members speak plain HTTP or TCP'),
    memberCount: z.number().int(),
    revision: z.number().int(),
    createdAt: timestamp,
    updatedAt: timestamp,
  })
  .meta({ id: 'Pool' });

export const poolPageSchema = pageOf(poolSchema, 'PoolPage');
