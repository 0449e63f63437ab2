import { z } from 'zod';
import type { HeldState, NginxStats, PushReply } from '../../domain/nginx-runtime.js';

/**
 * The runtime channel's replies, checked before anything reads them: a node runs a Lua module
 * shipped with its config, so a node on an older or newer module, or something else listening on
 * its runtime address, must fail with the field that differs, never pass on a wrong shape.
 */

/**
 * lua-cjson encodes an empty Lua table as `{}` whatever it stands for: an empty list arrives as an
 * object with no keys. Read that (and only that) as the empty list.
 */
const list = <T extends z.ZodType>(item: T) =>
  z.preprocess(
    (v) => (v !== null && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length === 0 ? [] : v),
    z.array(item),
  );
/** And an empty record may arrive as `[]` from a module that marks its tables as arrays. */
const record = <T extends z.ZodType>(value: T) =>
  z.preprocess((v) => (Array.isArray(v) && v.length === 0 ? {} : v), z.record(z.string(), value));

const count = z.number().nonnegative();
const revision = z.number().int().nonnegative();
const hash = z.string().regex(/^[0-9a-f]{16}$/, 'must be 16 hex characters (entryHash)');
const held = z.object({ revision, hash });

export const heldStateSchema: z.ZodType<HeldState> = z.object({
  upstreams: record(held),
  caps: record(held),
  fileRevision: revision,
});

export const pushReplySchema: z.ZodType<PushReply> = z.object({
  applied: z.number().int().nonnegative(),
  stale: list(z.string()),
  failed: list(z.object({ key: z.string(), error: z.string() })),
});

const counters = {
  requests: count,
  responses2xx: count,
  responses3xx: count,
  responses4xx: count,
  responses5xx: count,
  denied: count,
  refused: count,
  bytesIn: count,
  bytesOut: count,
  latencyMsSum: count,
};

export const nginxStatsSchema: z.ZodType<NginxStats> = z.object({
  now: count,
  vips: record(z.object({ ...counters, tenant: z.string(), vip: z.string(), active: count })),
  upstreams: record(z.object({ ...counters, tenant: z.string(), pool: z.string(), active: count })),
  peers: record(
    z.object({
      ...counters,
      upstream: z.string(),
      peer: z.string(),
      active: count,
      health: z.enum(['up', 'down', 'unchecked']),
      lastCheck: z.string().nullable(),
    }),
  ),
  tenants: record(z.object({ active: count, requestsPerSecond: count })),
});

/** What the channel answers with a 4xx or 5xx: `{"error":{"field":...,"message":...}}`. */
export const errorReplySchema = z.object({
  error: z.object({ field: z.string().nullish(), message: z.string() }),
});

/** The first problem of a reply that failed its schema, as `path: message`. */
export function firstIssue(error: z.ZodError): string {
  const issue = error.issues[0];
  if (issue === undefined) return 'invalid';
  const path = issue.path.map(String).join('.');
  return path === '' ? issue.message : `${path}: ${issue.message}`;
}
