import { z } from 'zod';
import { hostname, millis, port, slug, urlPath } from './fields.js';
import { memberTlsSchema, poolTlsIssues, type MemberTls } from './member-tls.js';

export const ALGORITHMS = ['roundrobin', 'leastconn', 'source'] as const;
export type Algorithm = (typeof ALGORITHMS)[number];
export const CHECK_TYPES = ['http', 'https', 'tcp'] as const;
export type CheckType = (typeof CHECK_TYPES)[number];

export interface HealthCheck {
  readonly type: CheckType;
  /** http/https only. */
  readonly path: string;
  /** http/https only: a status list such as `200` or `200-399,404`. */
  readonly expectedStatus: string;
  /** http/https only: the Host header sent with the check, or null for none. */
  readonly host: string | null;
  /** A port other than the member's, or null. */
  readonly port: number | null;
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly rise: number;
  readonly fall: number;
}

export interface Pool {
  readonly name: string;
  readonly algorithm: Algorithm;
  /** null: no active health check; members are assumed up. */
  readonly healthCheck: HealthCheck | null;
  /** null: members speak plain HTTP or TCP. */
  readonly tls: MemberTls | null;
  readonly revision: number;
  readonly createdAt: string;
  readonly updatedAt: string;
}

const STATUS_LIST_RE = /^[1-5]\d\d(?:-[1-5]\d\d)?(?:,[1-5]\d\d(?:-[1-5]\d\d)?){0,15}$/;

const expectedStatus = z
  .union([z.number().int().min(100).max(599), z.string()])
  .transform((v) => String(v))
  .refine((s) => STATUS_LIST_RE.test(s), 'must be an HTTP status (200) or a list of statuses and ranges (200-399,404)')
  .refine(
    (s) =>
      s.split(',').every((part) => {
        const [a, b] = part.split('-').map(Number);
        return b === undefined || a! <= b;
      }),
    'status ranges must go from low to high',
  );

export const healthCheckSchema = z
  .strictObject({
    type: z.enum(CHECK_TYPES),
    path: urlPath.default('/'),
    expectedStatus: expectedStatus.default('200'),
    host: hostname.nullable().default(null),
    port: port.nullable().default(null),
    intervalMs: millis(100, 3_600_000).default(2000),
    timeoutMs: millis(10, 600_000).default(1000),
    rise: z.number().int().min(1).max(100).default(2),
    fall: z.number().int().min(1).max(100).default(3),
  })
  .superRefine((c, ctx) => {
    if (c.timeoutMs > c.intervalMs) {
      ctx.addIssue({ code: 'custom', path: ['timeoutMs'], message: 'must not exceed intervalMs' });
    }
  });

export const createPoolSchema = z
  .strictObject({
    name: slug,
    algorithm: z.enum(ALGORITHMS).default('roundrobin'),
    healthCheck: healthCheckSchema.nullable().default(null),
    tls: memberTlsSchema.nullable().default(null),
  })
  .superRefine((p, ctx) => {
    for (const issue of poolTlsIssues(p)) ctx.addIssue({ code: 'custom', ...issue });
  });
export type CreatePool = z.output<typeof createPoolSchema>;

export const patchPoolSchema = z.strictObject({
  algorithm: z.enum(ALGORITHMS).optional(),
  healthCheck: healthCheckSchema.nullable().optional(),
  tls: memberTlsSchema.nullable().optional(),
});
export type PatchPool = z.output<typeof patchPoolSchema>;
