import { ConflictError, NotFoundError, ValidationError } from '../domain/errors.js';
import { poolTlsIssues, type MemberTls } from '../domain/member-tls.js';
import type { CreatePool, HealthCheck, PatchPool } from '../domain/pool.js';
import { caBundleExists } from '../db/ca-bundle-repository.js';
import type { Db } from '../db/connect.js';
import { certificateExists } from '../db/vip-repository.js';
import { PG_FOREIGN_KEY_VIOLATION, PG_UNIQUE_VIOLATION, pgErrorCode } from '../db/pg-error-codes.js';
import * as members from '../db/member-repository.js';
import * as repo from '../db/pool-repository.js';
import type { PoolReferences, PoolResource } from '../db/pool-repository.js';
import { checkIfMatch, mutate, type Tx, type WriteContext, type Written } from './mutation.js';
import { fetchSize, toPage } from './page.js';

export interface PoolPage {
  readonly items: PoolResource[];
  readonly nextCursor: string | null;
}

/** Audit resource ids: path-like, as the API addresses them without the `/v1/tenants/` prefix. */
export const poolResourceId = (tenantId: string, pool: string): string => `${tenantId}/pools/${pool}`;
export const memberResourceId = (tenantId: string, pool: string, member: string): string =>
  `${poolResourceId(tenantId, pool)}/members/${member}`;

export class PoolService {
  constructor(private readonly db: Db) {}

  async get(tenantId: string, name: string): Promise<PoolResource> {
    const pool = await repo.findPool(this.db, tenantId, name);
    if (!pool) throw new NotFoundError('pool', name);
    return pool;
  }

  async list(tenantId: string, q: { limit: number; cursor?: string | undefined }): Promise<PoolPage> {
    const items = await repo.listPools(this.db, tenantId, { limit: fetchSize(q.limit), after: q.cursor });
    return toPage(items, q.limit, (x) => x.name);
  }

  async create(ctx: WriteContext, tenantId: string, input: CreatePool): Promise<Written<PoolResource>> {
    return mutate(this.db, ctx, async (tx) => {
      if (await repo.poolExists(tx.db, tenantId, input.name)) throw duplicatePool(tenantId, input.name);
      await checkTlsReferences(tx.db, tenantId, input.tls);
      const pool = await insertOrConflict(tx, tenantId, input);
      const after: PoolResource = { ...pool, memberCount: 0 };
      tx.audit({
        action: 'create',
        resourceType: 'pool',
        resourceId: poolResourceId(tenantId, pool.name),
        tenantId,
        before: null,
        after,
      });
      return after;
    });
  }

  /** A patch that changes nothing commits no revision and answers the pool as it is. */
  async patch(ctx: WriteContext, tenantId: string, name: string, patch: PatchPool): Promise<Written<PoolResource>> {
    return mutate(this.db, ctx, async (tx) => {
      const before = await repo.findPool(tx.db, tenantId, name);
      if (!before) throw new NotFoundError('pool', name);
      checkIfMatch(tx, `pool '${name}'`, before.revision);
      const next = {
        name,
        algorithm: patch.algorithm ?? before.algorithm,
        healthCheck: patch.healthCheck === undefined ? before.healthCheck : patch.healthCheck,
        tls: patch.tls === undefined ? before.tls : patch.tls,
      };
      checkMergedTls(next, patch);
      if (
        next.algorithm === before.algorithm &&
        sameHealthCheck(next.healthCheck, before.healthCheck) &&
        sameTls(next.tls, before.tls)
      )
        return before;
      await checkTlsReferences(tx.db, tenantId, next.tls);
      if (next.tls !== null) await checkNoTcpVips(tx.db, tenantId, name);
      const pool = await repo.updatePool(tx.db, tenantId, next, tx.revision);
      const after: PoolResource = { ...pool, memberCount: before.memberCount };
      tx.audit({
        action: 'update',
        resourceType: 'pool',
        resourceId: poolResourceId(tenantId, name),
        tenantId,
        before,
        after,
      });
      return after;
    });
  }

  /**
   * Refused (409) while a VIP or route sends traffic to the pool: deleting it would break live
   * traffic. Its members are deleted with it, each audited.
   */
  async delete(ctx: WriteContext, tenantId: string, name: string): Promise<Written<null>> {
    return mutate(this.db, ctx, async (tx) => {
      const before = await repo.findPool(tx.db, tenantId, name);
      if (!before) throw new NotFoundError('pool', name);
      checkIfMatch(tx, `pool '${name}'`, before.revision);
      const refs = await repo.findPoolReferences(tx.db, tenantId, name);
      if (refs.vips.length + refs.routes.length > 0) throw poolInUse(name, refs);
      const gone = await members.listMembers(tx.db, tenantId, name);
      await deleteOrConflict(tx, tenantId, name);
      for (const m of gone) {
        const resourceId = memberResourceId(tenantId, name, m.name);
        tx.audit({ action: 'delete', resourceType: 'member', resourceId, tenantId, before: m, after: null });
      }
      tx.audit({
        action: 'delete',
        resourceType: 'pool',
        resourceId: poolResourceId(tenantId, name),
        tenantId,
        before,
        after: null,
      });
      return null;
    });
  }
}

/** The explicit check gives the clear message; the keys are the backstop for a row written outside this path. */
async function insertOrConflict(tx: Tx, tenantId: string, input: CreatePool) {
  try {
    return await repo.insertPool(tx.db, tenantId, input, tx.revision);
  } catch (err) {
    if (pgErrorCode(err) === PG_UNIQUE_VIOLATION) throw duplicatePool(tenantId, input.name);
    // The tenant was deleted between the route's existence check and this insert.
    if (pgErrorCode(err) === PG_FOREIGN_KEY_VIOLATION) throw new NotFoundError('tenant', tenantId);
    throw err;
  }
}

/** The foreign keys (ON DELETE RESTRICT) are the backstop should a reference appear after the check. */
async function deleteOrConflict(tx: Tx, tenantId: string, name: string): Promise<void> {
  try {
    await repo.deletePool(tx.db, tenantId, name);
  } catch (err) {
    if (pgErrorCode(err) === PG_FOREIGN_KEY_VIOLATION) {
      throw new ConflictError(`pool '${name}' is still used by a VIP or route; point them at another pool first`);
    }
    throw err;
  }
}

function duplicatePool(tenantId: string, name: string): ConflictError {
  return new ConflictError(`pool '${name}' already exists in tenant '${tenantId}'`);
}

function poolInUse(name: string, refs: PoolReferences): ConflictError {
  const users = [...refs.vips.map((v) => `VIP '${v}'`), ...refs.routes.map((r) => `route '${r}'`)];
  return new ConflictError(
    `pool '${name}' is used by ${users.join(', ')}; point them at another pool or delete them first`,
    refs,
  );
}

function sameHealthCheck(a: HealthCheck | null, b: HealthCheck | null): boolean {
  if (a === null || b === null) return a === b;
  return (
    (Object.keys(a) as (keyof HealthCheck)[]).every((k) => a[k] === b[k]) &&
    Object.keys(a).length === Object.keys(b).length
  );
}

/** The merged pool must hold together: the field named is the one this patch changed. */
function checkMergedTls(next: { tls: MemberTls | null; healthCheck: HealthCheck | null }, patch: PatchPool): void {
  const [issue] = poolTlsIssues(next);
  if (issue === undefined) return;
  const path = patch.healthCheck !== undefined ? `body.${issue.path.join('.')}` : 'body.tls';
  throw new ValidationError(`${path}: ${issue.message}`, [{ path, message: issue.message }]);
}

/** A pool's TLS settings may only name the tenant's own CA bundle and certificate. */
async function checkTlsReferences(db: Db, tenantId: string, tls: MemberTls | null): Promise<void> {
  if (tls === null) return;
  if (tls.caBundle !== null && !(await caBundleExists(db, tenantId, tls.caBundle))) {
    throw fieldError(
      'body.tls.caBundle',
      `CA bundle '${tls.caBundle}' does not exist in this tenant; upload it to /ca-bundles first`,
    );
  }
  if (tls.clientCertificate !== null && !(await certificateExists(db, tenantId, tls.clientCertificate))) {
    throw fieldError(
      'body.tls.clientCertificate',
      `certificate '${tls.clientCertificate}' does not exist in this tenant; upload it to /certificates first`,
    );
  }
}

/**
 * TCP VIPs pass bytes through: a member behind one that speaks TLS terminates the client's own
 * TLS (passthrough). Re-encrypting there would wrap the client's bytes in a second TLS layer, so
 * a pool with TLS members serves http and https VIPs only.
 */
async function checkNoTcpVips(db: Db, tenantId: string, pool: string): Promise<void> {
  const vips = await repo.tcpVipsUsingPool(db, tenantId, pool);
  if (vips.length > 0) {
    throw fieldError(
      'body.tls',
      `tcp VIP(s) ${vips.map((v) => `'${v}'`).join(', ')} pass bytes through to this pool: TLS members serve http and https VIPs only`,
    );
  }
}

function fieldError(path: string, message: string): ValidationError {
  return new ValidationError(`${path}: ${message}`, [{ path, message }]);
}

function sameTls(a: MemberTls | null, b: MemberTls | null): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
