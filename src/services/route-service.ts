import { ConflictError, NotFoundError, ValidationError } from '../domain/errors.js';
import type { CreateRoute, PatchRoute, Route } from '../domain/route.js';
import type { Db } from '../db/connect.js';
import * as repo from '../db/route-repository.js';
import { findVip, poolExists } from '../db/vip-repository.js';
import { checkIfMatch, mutate, type Tx, type WriteContext, type Written } from './mutation.js';

/** Content-based routing on an http/https VIP: host, path prefix or header → pool, by priority. */
export class RouteService {
  constructor(private readonly db: Db) {}

  async list(tenantId: string, vip: string): Promise<{ items: Route[]; nextCursor: null }> {
    await requireVip(this.db, tenantId, vip);
    return { items: await repo.listRoutes(this.db, tenantId, vip), nextCursor: null };
  }

  async get(tenantId: string, vip: string, name: string): Promise<Route> {
    await requireVip(this.db, tenantId, vip);
    const route = await repo.findRoute(this.db, tenantId, vip, name);
    if (!route) throw new NotFoundError('route', name);
    return route;
  }

  async create(ctx: WriteContext, tenantId: string, vip: string, input: CreateRoute): Promise<Written<Route>> {
    return mutate(this.db, ctx, async (tx) => {
      await requireHttpVip(tx.db, tenantId, vip);
      if (await repo.findRoute(tx.db, tenantId, vip, input.name))
        throw new ConflictError(`route '${input.name}' already exists on vip '${vip}'`);
      await requirePool(tx.db, tenantId, input.pool);
      const route = await repo.insertRoute(tx.db, tenantId, vip, input, tx.revision);
      audit(tx, tenantId, 'create', null, route);
      return route;
    });
  }

  async patch(
    ctx: WriteContext,
    tenantId: string,
    vip: string,
    name: string,
    patch: PatchRoute,
  ): Promise<Written<Route>> {
    return mutate(this.db, ctx, async (tx) => {
      await requireVip(tx.db, tenantId, vip);
      const before = await repo.findRoute(tx.db, tenantId, vip, name);
      if (!before) throw new NotFoundError('route', name);
      checkIfMatch(tx, `route '${name}'`, before.revision);
      const next = {
        name,
        priority: patch.priority ?? before.priority,
        match: patch.match ?? before.match,
        pool: patch.pool ?? before.pool,
      };
      if (next.pool !== before.pool) await requirePool(tx.db, tenantId, next.pool);
      if (
        JSON.stringify([next.priority, next.match, next.pool]) ===
        JSON.stringify([before.priority, before.match, before.pool])
      )
        return before;
      const after = await repo.updateRoute(tx.db, tenantId, vip, next, tx.revision);
      audit(tx, tenantId, 'update', before, after);
      return after;
    });
  }

  async delete(ctx: WriteContext, tenantId: string, vip: string, name: string): Promise<Written<null>> {
    return mutate(this.db, ctx, async (tx) => {
      await requireVip(tx.db, tenantId, vip);
      const before = await repo.findRoute(tx.db, tenantId, vip, name);
      if (!before) throw new NotFoundError('route', name);
      checkIfMatch(tx, `route '${name}'`, before.revision);
      await repo.deleteRoute(tx.db, tenantId, vip, name);
      audit(tx, tenantId, 'delete', before, null);
      return null;
    });
  }
}

function audit(
  tx: Tx,
  tenantId: string,
  action: 'create' | 'update' | 'delete',
  before: Route | null,
  after: Route | null,
): void {
  const r = (after ?? before)!;
  tx.audit({
    action,
    resourceType: 'route',
    resourceId: `${tenantId}/vips/${r.vip}/routes/${r.name}`,
    tenantId,
    before,
    after,
  });
}

async function requireVip(db: Db, tenantId: string, vip: string) {
  const found = await findVip(db, tenantId, vip);
  if (!found) throw new NotFoundError('vip', vip);
  return found;
}

async function requireHttpVip(db: Db, tenantId: string, vip: string): Promise<void> {
  const found = await requireVip(db, tenantId, vip);
  if (found.protocol === 'tcp') {
    throw new ValidationError(`params.vip: vip '${vip}' is tcp; content routes need an http or https VIP`, [
      { path: 'params.vip', message: 'content routes need an http or https VIP' },
    ]);
  }
}

async function requirePool(db: Db, tenantId: string, pool: string): Promise<void> {
  if (!(await poolExists(db, tenantId, pool))) {
    throw new ValidationError(`body.pool: pool '${pool}' does not exist in this tenant`, [
      { path: 'body.pool', message: `pool '${pool}' does not exist in this tenant` },
    ]);
  }
}
