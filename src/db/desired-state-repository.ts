import type { Member } from '../domain/member.js';
import type { Route } from '../domain/route.js';
import type { Tenant } from '../domain/tenant.js';
import type { Vip } from '../domain/vip.js';
import type { Pool } from '../domain/pool.js';
import type { Executor } from './executor.js';
import { toMember } from './member-repository.js';
import { toPool } from './pool-repository.js';
import { toRoute } from './route-repository.js';
import { toTenant } from './tenant-repository.js';
import { toVip } from './vip-repository.js';
import type { SealedCertificate } from './certificate-repository.js';

/** Everything of one tenant that a proxy serves, as stored (certificate keys still sealed). */
export interface TenantState {
  readonly tenant: Tenant;
  readonly vips: readonly (Vip & { routes: Route[] })[];
  readonly pools: readonly (Pool & { members: Member[] })[];
  readonly certificates: readonly SealedCertificate[];
}

export interface DesiredState {
  /** The revision this state reflects: every write up to it, none after. */
  readonly revision: number;
  readonly tenants: readonly TenantState[];
}

/**
 * Reads the desired state of the given tenants (all active tenants when omitted) in one
 * REPEATABLE READ transaction, so the rows and the revision agree. A handful of set-based queries,
 * whatever the number of tenants. Given a transaction (a dry-run write), reads inside it instead:
 * it sees that write's uncommitted rows and the revision it would commit as.
 */
export async function loadDesiredState(db: Executor, opts: { tenantIds?: readonly string[]; states?: readonly string[] } = {}): Promise<DesiredState> {
  if (db.isTransaction) return readDesiredState(db, opts);
  return db
    .transaction()
    .setIsolationLevel('repeatable read')
    .execute((trx) => readDesiredState(trx, opts));
}

async function readDesiredState(trx: Executor, opts: { tenantIds?: readonly string[]; states?: readonly string[] }): Promise<DesiredState> {
  const counter = await trx.selectFrom('revision_counter').select('revision').where('id', '=', 1).executeTakeFirstOrThrow();
  let tq = trx.selectFrom('tenants').selectAll().orderBy('id');
  if (opts.tenantIds) tq = opts.tenantIds.length > 0 ? tq.where('id', 'in', [...opts.tenantIds]) : tq.where('id', '=', '');
  tq = tq.where('state', 'in', [...(opts.states ?? ['active'])]);
  const tenants = (await tq.execute()).map(toTenant);
  const ids = tenants.map((t) => t.id);
  if (ids.length === 0) return { revision: Number(counter.revision), tenants: [] };
  const [vips, routes, pools, members, certs] = await Promise.all([
    trx.selectFrom('vips').selectAll().where('tenant_id', 'in', ids).orderBy('tenant_id').orderBy('name').execute(),
    trx.selectFrom('routes').selectAll().where('tenant_id', 'in', ids).orderBy('priority').orderBy('name').execute(),
    trx.selectFrom('pools').selectAll().where('tenant_id', 'in', ids).orderBy('tenant_id').orderBy('name').execute(),
    trx.selectFrom('members').selectAll().where('tenant_id', 'in', ids).orderBy('name').execute(),
    trx
      .selectFrom('certificates')
      .select(['tenant_id', 'name', 'chain_pem', 'key_ciphertext', 'sans'])
      .where('tenant_id', 'in', ids)
      .orderBy('name')
      .execute(),
  ]);
  const byTenant = <R extends { tenant_id: string }>(rows: R[]) => {
    const m = new Map<string, R[]>();
    for (const r of rows) (m.get(r.tenant_id) ?? m.set(r.tenant_id, []).get(r.tenant_id)!).push(r);
    return m;
  };
  const vipRows = byTenant(vips);
  const routeRows = byTenant(routes);
  const poolRows = byTenant(pools);
  const memberRows = byTenant(members);
  const certRows = byTenant(certs);
  return {
    revision: Number(counter.revision),
    tenants: tenants.map((tenant) => {
      const tRoutes = (routeRows.get(tenant.id) ?? []).map(toRoute);
      const tMembers = (memberRows.get(tenant.id) ?? []).map(toMember);
      return {
        tenant,
        vips: (vipRows.get(tenant.id) ?? []).map(toVip).map((v) => ({ ...v, routes: tRoutes.filter((r) => r.vip === v.name) })),
        pools: (poolRows.get(tenant.id) ?? []).map(toPool).map((p) => ({ ...p, members: tMembers.filter((m) => m.pool === p.name) })),
        certificates: (certRows.get(tenant.id) ?? []).map((c) => ({
          name: c.name,
          chainPem: c.chain_pem,
          keyCiphertext: c.key_ciphertext,
          sans: c.sans,
        })),
      };
    }),
  };
}
