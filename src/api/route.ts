import type { Request } from 'express';
import type { z } from 'zod';
import type { Permission, Principal } from '../domain/token.js';
import type { WriteContext } from '../services/mutation.js';
import type { Tag } from './tags.js';

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

/** Any answer, as mount.ts sends it. Handlers return the narrower ReplyFor their route's `responses`. */
export interface Reply {
  readonly body?: unknown;
  readonly status?: number;
  /** Revision of the resource in the answer: sent as `ETag: "<revision>"`. */
  readonly etag?: number;
  readonly headers?: Readonly<Record<string, string>>;
  /** Raw text answer (config files, metrics) instead of JSON. */
  readonly text?: { readonly contentType: string; readonly content: string };
}

/** The success statuses a route may answer with. */
export type SuccessStatus = 200 | 201 | 202 | 204 | 304;

/** Response headers worth documenting: name → what it holds. */
export type HeaderDocs = Readonly<Record<string, string>>;

/** A JSON answer: the zod schema the body satisfies, which the OpenAPI document describes. */
export interface JsonAnswer<S extends z.ZodType = z.ZodType> {
  readonly kind: 'json';
  readonly schema: S;
  readonly description: string;
  readonly headers?: HeaderDocs;
}

/** A text answer (Prometheus metrics, the dashboard's page): its exact content type. */
export interface TextAnswer {
  readonly kind: 'text';
  readonly contentType: string;
  readonly description: string;
  readonly headers?: HeaderDocs;
}

/** An answer without a body (304). */
export interface EmptyAnswer {
  readonly kind: 'empty';
  readonly description: string;
  readonly headers?: HeaderDocs;
}

export type Answer = JsonAnswer | TextAnswer | EmptyAnswer;

/** What answers carrying one resource send besides it: its revision, for `If-Match`. */
export const ETAG: HeaderDocs = { ETag: 'The revision of the resource, quoted (`"42"`): send it back as If-Match' };

export const json = <S extends z.ZodType>(schema: S, description: string, headers?: HeaderDocs): JsonAnswer<S> => ({
  kind: 'json',
  schema,
  description,
  ...(headers && { headers }),
});

export const text = (contentType: string, description: string, headers?: HeaderDocs): TextAnswer => ({
  kind: 'text',
  contentType,
  description,
  ...(headers && { headers }),
});

export const empty = (description: string, headers?: HeaderDocs): EmptyAnswer => ({
  kind: 'empty',
  description,
  ...(headers && { headers }),
});

/** A route's success answers by status. Errors are the framework's and documented by openapi.ts. */
export type Responses = { readonly [S in SuccessStatus]?: Answer };

/** What a handler may return for one declared answer: 200 is the default status, any other is named. */
type ReplyTo<S extends SuccessStatus, A> = (S extends 200 ? { readonly status?: 200 } : { readonly status: S }) &
  Pick<Reply, 'etag' | 'headers'> &
  (A extends JsonAnswer<infer Z>
    ? { readonly body: Answered<Z> }
    : A extends TextAnswer
      ? { readonly text: NonNullable<Reply['text']> }
      : { readonly body?: never });

/** What a handler may answer for a response schema: its output type, read-only as the services' types are. */
export type Answered<S extends z.ZodType> = DeepReadonly<z.output<S>>;

type DeepReadonly<T> = T extends (infer E)[]
  ? readonly DeepReadonly<E>[]
  : T extends object
    ? { readonly [K in keyof T]: DeepReadonly<T[K]> }
    : T;

/** The replies a handler may return: one of its route's declared answers, body checked against its schema. */
export type ReplyFor<R extends Responses> = { [S in keyof R & SuccessStatus]: ReplyTo<S, R[S]> }[keyof R &
  SuccessStatus];

/**
 * One REST endpoint, declared as data: the framework (api/mount.ts) authenticates, scopes to the
 * tenant or node named in the path, checks the permission, validates every input with the zod
 * schemas and maps errors. The same list feeds the OpenAPI document and the isolation tests.
 */
export interface RouteSpec<
  P extends z.ZodType = z.ZodType,
  Q extends z.ZodType = z.ZodType,
  B extends z.ZodType = z.ZodType,
  R extends Responses = Responses,
> {
  readonly method: Method;
  /** Express path, e.g. `/v1/tenants/:tenant/vips/:vip`. */
  readonly path: string;
  readonly summary: string;
  readonly tag: Tag;
  /** null: any valid token. */
  readonly permission: Permission | null;
  readonly params?: P;
  readonly query?: Q;
  readonly body?: B;
  /**
   * What the route answers on success, by status; the handler's replies are checked against it at
   * compile time. A dry run's answer (200) is added by the framework and the document.
   */
  readonly responses: R;
  readonly handler: (call: Call<z.output<P>, z.output<Q>, z.output<B>>) => Promise<ReplyFor<R>>;
  /**
   * Writes accept `?dryRun=true` (see mount.ts) when they go through mutate(); `false` marks one
   * that records observed state outside it (an agent's report), which then refuses dry runs;
   * `'own'` marks one that answers `?dryRun=true` itself (its query schema takes `dryRun`).
   */
  readonly dryRun?: false | 'own';
  /** Whether the write checks `If-Match` (412 when stale). Default: patch, put and delete do. */
  readonly ifMatch?: boolean;
  /** 404 where the path names nothing (a query or body does): the document lists it for paths with parameters. */
  readonly notFound?: boolean;
  /** Request headers the handler reads itself (name → what it does), for the document. */
  readonly headers?: HeaderDocs;
}

/** Identity function that gives handlers typed inputs and checks their replies against `responses`. */
export function route<P extends z.ZodType, Q extends z.ZodType, B extends z.ZodType, R extends Responses>(
  spec: RouteSpec<P, Q, B, R>,
): RouteSpec {
  return spec as unknown as RouteSpec;
}

/** Routes whose path names a tenant: a tenant-scoped token sees only its own. */
export const isTenantScoped = (spec: Pick<RouteSpec, 'path'>): boolean => spec.path.startsWith('/v1/tenants/:tenant');

/** Whether a route checks `If-Match`. */
export const checksIfMatch = (spec: Pick<RouteSpec, 'method' | 'ifMatch'>): boolean =>
  spec.ifMatch ?? (spec.method === 'patch' || spec.method === 'put' || spec.method === 'delete');

/** The body of a write's answer: the resource with the revision committed, or only the revision after a delete. */
export type WrittenBody<T> = T extends null ? { revision: number } : T & { revision: number };

/** The answer shape for writes: the resource (or null after a delete) and the revision committed; 201 for a creation. */
export function written<T extends { revision?: number } | null>(w: {
  value: T;
  revision: number;
}): WrittenReply<T, 200>;
export function written<T extends { revision?: number } | null>(
  w: { value: T; revision: number },
  status: 201,
): WrittenReply<T, 201>;
export function written<T extends { revision?: number } | null>(
  w: { value: T; revision: number },
  status: 200 | 201 = 200,
): WrittenReply<T, 200 | 201> {
  if (w.value === null) return { status, body: { revision: w.revision } as WrittenBody<T> };
  const revision = w.value.revision ?? w.revision;
  return { status, body: { ...w.value, revision } as WrittenBody<T>, etag: revision };
}

interface WrittenReply<T, S extends 200 | 201> {
  readonly status: S;
  readonly body: WrittenBody<T>;
  readonly etag?: number;
}
