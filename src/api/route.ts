import type { Request } from 'express';
import type { z } from 'zod';
import type { Permission, Principal } from '../domain/token.js';
import type { WriteContext } from '../services/mutation.js';

export type Method = 'get' | 'post' | 'put' | 'patch' | 'delete';

/** What a handler gets: parsed and validated input, the caller, and the write context. */
export interface Call<P, Q, B> {
  readonly params: P;
  readonly query: Q;
  readonly body: B;
  readonly principal: Principal;
  readonly write: WriteContext;
  readonly req: Request;
}

export interface Reply {
  readonly body?: unknown;
  readonly status?: number;
  /** Revision of the resource in the answer: sent as `ETag: "<revision>"`. */
  readonly etag?: number;
  readonly headers?: Readonly<Record<string, string>>;
  /** Raw text answer (config files, metrics) instead of JSON. */
  readonly text?: { readonly contentType: string; readonly content: string };
}

/**
 * One REST endpoint, declared as data: the framework (api/mount.ts) authenticates, scopes to the
 * tenant or node named in the path, checks the permission, validates every input with the zod
 * schemas and maps errors. The same list feeds the OpenAPI document and the isolation tests.
 */
export interface RouteSpec<P extends z.ZodType = z.ZodType, Q extends z.ZodType = z.ZodType, B extends z.ZodType = z.ZodType> {
  readonly method: Method;
  /** Express path, e.g. `/v1/tenants/:tenant/vips/:vip`. */
  readonly path: string;
  readonly summary: string;
  readonly tag: string;
  /** null: any valid token. */
  readonly permission: Permission | null;
  readonly params?: P;
  readonly query?: Q;
  readonly body?: B;
  readonly handler: (call: Call<z.output<P>, z.output<Q>, z.output<B>>) => Promise<Reply>;
  /**
   * Writes accept `?dryRun=true` (see mount.ts) when they go through mutate(); `false` marks one
   * that records observed state outside it (an agent's report), which then refuses dry runs;
   * `'own'` marks one that answers `?dryRun=true` itself (its query schema takes `dryRun`).
   */
  readonly dryRun?: false | 'own';
}

/** Identity function that gives handlers typed inputs. */
export function route<P extends z.ZodType, Q extends z.ZodType, B extends z.ZodType>(spec: RouteSpec<P, Q, B>): RouteSpec {
  return spec as unknown as RouteSpec;
}

/** Routes whose path names a tenant: a tenant-scoped token sees only its own. */
export const isTenantScoped = (spec: Pick<RouteSpec, 'path'>): boolean => spec.path.startsWith('/v1/tenants/:tenant');

/** The answer shape for writes: the resource (or null after a delete) and the revision committed. */
export function written<T extends { revision?: number } | null>(w: { value: T; revision: number }, status = 200): Reply {
  if (w.value === null) return { status, body: { revision: w.revision } };
  return { status, body: { ...w.value, revision: w.value.revision ?? w.revision }, etag: w.value.revision ?? w.revision };
}
