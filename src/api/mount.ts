import type { NextFunction, Request, Response, Router } from 'express';
import { z } from 'zod';
import { ForbiddenError, NotFoundError, UnauthorizedError, ValidationError } from '../domain/errors.js';
import { ETAG_RE } from '../domain/fields.js';
import { ROLE_PERMISSIONS, forbiddenMessage, type Principal } from '../domain/token.js';
import { DryRunOutcome, fingerprint, type DryRun, type WriteContext } from '../services/mutation.js';
import { validate } from '../services/validate.js';
import type { dryRunOutcomeSchema, fleetPlanSchema } from './responses/plan-responses.js';
import { isTenantScoped, type Answered, type Reply, type RouteSpec } from './route.js';

export interface Authenticator {
  authenticate(secret: string): Promise<Principal | null>;
}

export interface MountDeps {
  readonly auth: Authenticator;
  /** Whether a tenant exists; tenant-scoped routes answer 404 for a missing tenant before anything else. */
  readonly tenantExists: (id: string) => Promise<boolean>;
  /** Plans `?dryRun=true` writes; without it they are refused. */
  readonly dryRun?: DryRunPlanner;
  /** Counts route handlers running, including those whose client has gone (see HandlersRunning). */
  readonly handlers?: HandlersRunning;
}

/**
 * Route handlers still running. A client that hangs up does not stop its handler (a write queued
 * behind the revision lock still commits), so a shutdown waits for this count to reach zero, not
 * only for open responses, before it closes the database under them.
 */
export class HandlersRunning {
  private running = 0;

  get count(): number {
    return this.running;
  }

  begin(): void {
    this.running += 1;
  }

  end(): void {
    this.running -= 1;
  }
}

/** Reads a dry-run write's state inside its transaction, then, after the rollback, plans it. */
export interface DryRunPlanner extends DryRun {
  /** `captured` is what `capture` returned, or null when the write changed nothing. */
  plan(captured: unknown): Promise<Answered<typeof fleetPlanSchema>>;
}

const IDEMPOTENCY_KEY_RE = /^[A-Za-z0-9_.:-]{1,128}$/;
const emptyObject = z.object({}).strict();

/** Attaches each route to the router, wrapped in authentication, scoping, permission and validation. */
export function mountRoutes(router: Router, specs: readonly RouteSpec[], deps: MountDeps): void {
  for (const spec of specs) {
    router[spec.method](spec.path, async (req: Request, res: Response, next: NextFunction) => {
      deps.handlers?.begin();
      try {
        const reply = await dispatch(spec, req, deps);
        send(res, reply);
      } catch (err) {
        next(err);
      } finally {
        deps.handlers?.end();
      }
    });
  }
}

async function dispatch(spec: RouteSpec, req: Request, deps: MountDeps): Promise<Reply> {
  const principal = await authenticate(req, deps.auth);
  const raw = req.params as Record<string, string>;
  // Scope before anything else, and answer exactly as for a tenant that does not exist: no existence leak.
  if (isTenantScoped(spec)) {
    const tenant = raw.tenant ?? '';
    if (principal.tenantId !== null && principal.tenantId !== tenant) throw new NotFoundError('tenant', tenant);
    if (principal.role === 'agent') throw new NotFoundError('tenant', tenant);
  }
  if (principal.role === 'agent' && raw.node !== undefined && principal.nodeName !== raw.node) {
    throw new NotFoundError('node', raw.node);
  }
  if (spec.permission !== null && !ROLE_PERMISSIONS[principal.role].has(spec.permission)) {
    throw new ForbiddenError(forbiddenMessage(principal.role, `call ${describe(spec)}`, spec.permission));
  }
  const params = validate(spec.params ?? emptyObject.passthrough(), 'params', raw);
  if (isTenantScoped(spec) && spec.path !== '/v1/tenants/:tenant' && !(await deps.tenantExists(raw.tenant!))) {
    throw new NotFoundError('tenant', raw.tenant!);
  }
  const { dryRun, rest } = takeDryRun(spec, req.query as Record<string, unknown>, deps);
  const query = validate(spec.query ?? emptyObject, 'query', rest);
  const hasBody = spec.method === 'post' || spec.method === 'put' || spec.method === 'patch';
  const body = spec.body
    ? validate(spec.body, 'body', req.body)
    : hasBody && req.body !== undefined && !isEmpty(req.body)
      ? rejectBody()
      : undefined;
  const write = { ...writeContext(spec, req, principal), dryRun };
  const run = () => spec.handler({ params, query, body, principal, write, req });
  return dryRun === undefined ? run() : dryRunReply(spec, run, dryRun);
}

/**
 * `dryRun` is a parameter of every write, handled here rather than in each route's (strict) query
 * schema: it is taken out of the query before the route sees it. Reads keep it, and refuse it.
 */
function takeDryRun(
  spec: RouteSpec,
  query: Record<string, unknown>,
  deps: MountDeps,
): { dryRun: DryRunPlanner | undefined; rest: Record<string, unknown> } {
  const { dryRun: flag, ...rest } = query;
  if (spec.method === 'get' || flag === undefined || spec.dryRun === 'own')
    return { dryRun: undefined, rest: { ...query } };
  if (flag !== 'true' && flag !== 'false') {
    throw new ValidationError('query.dryRun: must be true or false', [
      { path: 'query.dryRun', message: 'must be true or false' },
    ]);
  }
  if (flag === 'false') return { dryRun: undefined, rest };
  if (spec.dryRun === false || deps.dryRun === undefined) {
    const message = `${describe(spec)} cannot be dry-run`;
    throw new ValidationError(`query.dryRun: ${message}`, [{ path: 'query.dryRun', message }]);
  }
  return { dryRun: deps.dryRun, rest };
}

/** Runs a dry-run write: mutate() rolls it back and throws its outcome, which becomes the answer. */
async function dryRunReply(spec: RouteSpec, run: () => Promise<Reply>, planner: DryRunPlanner): Promise<Reply> {
  try {
    await run();
  } catch (err) {
    if (!(err instanceof DryRunOutcome)) throw err;
    const body: Answered<typeof dryRunOutcomeSchema> = {
      dryRun: true,
      revision: err.revision,
      changed: err.changed,
      plan: await planner.plan(err.captured),
    };
    return { body };
  }
  // The handler wrote without mutate(): the route must be marked `dryRun: false`.
  throw new Error(`${spec.method.toUpperCase()} ${spec.path} finished a dry run without going through mutate()`);
}

async function authenticate(req: Request, auth: Authenticator): Promise<Principal> {
  const header = req.headers.authorization;
  if (!header) throw new UnauthorizedError('missing Authorization: Bearer <token> header');
  // The scheme is case-insensitive and may be followed by more than one space (RFC 7235 §2.1).
  const match = /^bearer +([A-Za-z0-9_.~+/=-]{16,512})$/i.exec(header);
  if (!match) throw new UnauthorizedError('the Authorization header must be "Bearer <token>"');
  const principal = await auth.authenticate(match[1]!);
  if (!principal) throw new UnauthorizedError('the token is not valid (unknown, deleted or expired)');
  return principal;
}

function writeContext(spec: RouteSpec, req: Request, principal: Principal): WriteContext {
  const ifMatchHeader = req.headers['if-match'];
  let ifMatch: number | undefined;
  if (ifMatchHeader !== undefined && ifMatchHeader !== '*') {
    const m = ETAG_RE.exec(String(ifMatchHeader).trim());
    if (!m) {
      throw new ValidationError('headers.if-match: must be an ETag as returned by a GET, e.g. "42"', [
        { path: 'headers.if-match', message: 'must be an ETag such as "42"' },
      ]);
    }
    ifMatch = Number(m[1]);
  }
  const keyHeader = req.headers['idempotency-key'];
  let idempotency: WriteContext['idempotency'];
  if (keyHeader !== undefined && spec.method === 'post') {
    const key = String(keyHeader);
    if (!IDEMPOTENCY_KEY_RE.test(key)) {
      throw new ValidationError('headers.idempotency-key: must be 1-128 characters of letters, digits and _ . : -', [
        { path: 'headers.idempotency-key', message: 'must be 1-128 characters of letters, digits and _ . : -' },
      ]);
    }
    idempotency = { key, method: req.method, path: req.path, fingerprint: fingerprint(req.body) };
  }
  return {
    actor: { principal, requestId: String(req.id), sourceIp: req.ip ?? null },
    ifMatch,
    idempotency,
  };
}

function send(res: Response, reply: Reply): void {
  if (reply.etag !== undefined) res.setHeader('ETag', `"${reply.etag}"`);
  for (const [k, v] of Object.entries(reply.headers ?? {})) res.setHeader(k, v);
  res.status(reply.status ?? 200);
  if (reply.text) {
    res.type(reply.text.contentType).send(reply.text.content);
  } else if (reply.body === undefined) {
    res.end();
  } else {
    res.json(reply.body);
  }
}

/** `GET /v1/tenants/{tenant}`: how messages name a route (its summary is a title, not a verb phrase). */
function describe(spec: RouteSpec): string {
  return `${spec.method.toUpperCase()} ${spec.path.replace(/:(\w+)/g, '{$1}')}`;
}

function isEmpty(body: unknown): boolean {
  return typeof body === 'object' && body !== null && Object.keys(body).length === 0;
}

function rejectBody(): never {
  throw new ValidationError('body: this endpoint takes no body', [
    { path: 'body', message: 'this endpoint takes no body' },
  ]);
}
