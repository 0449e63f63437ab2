import { createHash } from 'node:crypto';
import type { Transaction } from 'kysely';
import { ConflictError, PreconditionFailedError, UnauthorizedError } from '../domain/errors.js';
import type { Principal } from '../domain/token.js';
import type { Database } from '../db/schema.js';
import type { Db } from '../db/connect.js';
import { insertAuditEventsAndNotify, type NewAuditEvent } from '../db/audit-repository.js';
import * as idempotencyKeys from '../db/idempotency-repository.js';
import { takeNextRevision } from '../db/revision-repository.js';

/** Who is writing and from where: recorded with every audit event. */
export interface Actor {
  readonly principal: Principal;
  readonly requestId: string;
  readonly sourceIp: string | null;
}

export interface IdempotencyRequest {
  readonly key: string;
  readonly method: string;
  readonly path: string;
  /** Hash of the request body: a key reused with another body is refused. */
  readonly fingerprint: string;
}

export interface WriteContext {
  readonly actor: Actor;
  readonly idempotency?: IdempotencyRequest | undefined;
  /** `If-Match` as a revision number, when the client sent one. */
  readonly ifMatch?: number | undefined;
  /** `?dryRun=true`: run the write, capture what it would commit, roll it back (see DryRunOutcome). */
  readonly dryRun?: DryRun | undefined;
}

export interface DryRun {
  /** Called inside the write's transaction after `work` changed something, to read the state it would commit. */
  capture(trx: Transaction<Database>): Promise<unknown>;
}

/**
 * Thrown by `mutate` for a dry run, after the rollback: the revision the write would have
 * committed (the current one when it changes nothing), and what `capture` read (null then).
 * It is not an error: the API layer turns it into the dry run's answer.
 */
export class DryRunOutcome {
  constructor(
    readonly revision: number,
    readonly changed: boolean,
    readonly captured: unknown,
  ) {}
}

export interface AuditEntry {
  readonly action:
    | 'create'
    | 'update'
    | 'delete'
    | 'approve'
    | 'reject'
    | 'rebalance'
    | 'place'
    | 'exclude'
    | 'include';
  readonly resourceType: string;
  /** Path-like id, e.g. `a/vips/web`. */
  readonly resourceId: string;
  readonly tenantId: string | null;
  readonly before: unknown;
  readonly after: unknown;
}

/** One write transaction: the executor, the revision this write will commit as, and its audit log. */
export interface Tx {
  readonly db: Transaction<Database>;
  /** The revision every row changed in this transaction is stamped with. */
  readonly revision: number;
  readonly ctx: WriteContext;
  /** Record a change; a transaction that records none commits no revision. */
  audit(entry: AuditEntry): void;
}

export interface Written<T> {
  readonly value: T;
  /** The revision after this write (unchanged when the write was a no-op). */
  readonly revision: number;
  /** True when an Idempotency-Key replay returned the first answer. */
  readonly replayed: boolean;
}

type CommitListener = (revision: number) => void;
const commitListeners = new WeakMap<Db, CommitListener[]>();

/**
 * Calls `listener` after every write committed through this database handle, before the writer
 * answers its client (the change feed uses it so caches never serve a replica's own stale data).
 */
export function onCommit(db: Db, listener: CommitListener): void {
  commitListeners.set(db, [...(commitListeners.get(db) ?? []), listener]);
}

/**
 * Runs one write as one transaction: takes the revision lock (so revisions are committed in
 * order and every reader sees a gap-free history), runs `work`, writes the audit events, stores
 * the idempotent answer and notifies listeners. A write that records no change is rolled back and
 * answers with the current revision. With an Idempotency-Key seen before, returns the first
 * answer without running `work`.
 */
export async function mutate<T>(db: Db, ctx: WriteContext, work: (tx: Tx) => Promise<T>): Promise<Written<T>> {
  try {
    const written = await db.transaction().execute(async (trx): Promise<Written<T>> => {
      // A dry run replays nothing and stores no answer: it never happened.
      const idem = ctx.dryRun ? undefined : ctx.idempotency;
      if (idem) {
        const replay = await claimIdempotencyKey(trx, ctx.actor.principal, idem);
        if (replay) return { value: replay.value as T, revision: replay.revision, replayed: true };
      }
      // One round trip takes the lock and the next revision; a write that turns out to change
      // nothing is rolled back below, so the counter never moves for it.
      const revision = await takeNextRevision(trx);
      const entries: AuditEntry[] = [];
      const tx: Tx = { db: trx, revision, ctx, audit: (e) => void entries.push(e) };
      const value = await work(tx);
      if (ctx.dryRun) {
        const changed = entries.length > 0;
        throw new DryRunOutcome(
          changed ? revision : revision - 1,
          changed,
          changed ? await ctx.dryRun.capture(trx) : null,
        );
      }
      if (entries.length === 0) throw new NothingChanged(value, revision - 1);
      // The audit rows and the wake-up call for reconcilers travel in one statement.
      await insertAuditEventsAndNotify(
        trx,
        entries.map((e) => auditEvent(ctx, e, revision)),
        String(revision),
      );
      if (idem)
        await idempotencyKeys.storeResponse(trx, ctx.actor.principal.tokenId, idem.key, {
          value: withoutSecrets(value),
          revision,
        });
      return { value, revision, replayed: false };
    });
    if (!written.replayed) for (const listener of commitListeners.get(db) ?? []) listener(written.revision);
    return written;
  } catch (err) {
    if (err instanceof NothingChanged) return { value: err.value as T, revision: err.revision, replayed: false };
    throw err;
  }
}

/** Thrown inside a write that recorded no change, to roll it back and answer with the current revision. */
class NothingChanged {
  constructor(
    readonly value: unknown,
    readonly revision: number,
  ) {}
}

function auditEvent(ctx: WriteContext, e: AuditEntry, revision: number): NewAuditEvent {
  return {
    revision,
    actor: ctx.actor.principal.name,
    tokenId: ctx.actor.principal.tokenId || null,
    requestId: ctx.actor.requestId,
    sourceIp: ctx.actor.sourceIp,
    tenant: e.tenantId,
    action: e.action,
    resourceType: e.resourceType,
    resourceId: e.resourceId,
    before: e.before,
    after: e.after,
  };
}

/** Keys are kept this long; an older key may be reused for a new request. */
export const IDEMPOTENCY_TTL_MS = 24 * 3600 * 1000;

async function claimIdempotencyKey(
  trx: Transaction<Database>,
  principal: Principal,
  idem: IdempotencyRequest,
): Promise<{ value: unknown; revision: number } | null> {
  if (!principal.tokenId) throw new UnauthorizedError('Idempotency-Key needs an authenticated token');
  await idempotencyKeys.deleteExpiredKey(trx, principal.tokenId, idem.key, new Date(Date.now() - IDEMPOTENCY_TTL_MS));
  // A concurrent request with the same key blocks here until the first one commits or rolls back.
  const claim = {
    tokenId: principal.tokenId,
    key: idem.key,
    method: idem.method,
    path: idem.path,
    requestHash: idem.fingerprint,
  };
  if (await idempotencyKeys.insertKey(trx, claim)) return null;
  const stored = await idempotencyKeys.findKey(trx, principal.tokenId, idem.key);
  if (stored.method !== idem.method || stored.path !== idem.path || stored.requestHash !== idem.fingerprint) {
    throw new ConflictError(
      `Idempotency-Key '${idem.key}' was already used for a different request (${stored.method} ${stored.path}); use a new key`,
    );
  }
  const response = stored.response as unknown as { value: unknown; revision: number } | null;
  if (!response) throw new ConflictError(`a request with Idempotency-Key '${idem.key}' is still in progress`);
  return response;
}

export function fingerprint(body: unknown): string {
  return createHash('sha256')
    .update(JSON.stringify(body ?? null))
    .digest('hex');
}

/** Refuses a write whose If-Match names another version of the resource. */
export function checkIfMatch(tx: Tx, resource: string, currentRevision: number): void {
  const expected = tx.ctx.ifMatch;
  if (expected !== undefined && expected !== currentRevision) {
    throw new PreconditionFailedError(resource, `"${expected}"`, `"${currentRevision}"`);
  }
}

/** Secrets are shown once: an idempotent replay answers without them, so none is ever stored. */
function withoutSecrets(value: unknown): unknown {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] = k === 'secret' || k === 'agentToken' ? null : withoutSecrets(v);
  }
  return out;
}
