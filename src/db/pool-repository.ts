import type { ExpressionBuilder, Selectable } from 'kysely';
import type { MemberTls } from '../domain/member-tls.js';
import type { Algorithm, CheckType, CreatePool, HealthCheck, Pool } from '../domain/pool.js';
import type { Db } from './connect.js';
import { iso } from './column-values.js';
import type { Database, PoolTable } from './schema.js';

/** A pool as the API shows it: its own fields and how many members it has (the members are a sub-resource). */
export interface PoolResource extends Pool {
  readonly memberCount: number;
}

/** The VIPs and routes that send traffic to a pool; a pool is not deleted from under them. */
export interface PoolReferences {
  readonly vips: string[];
  /** As `<vip>/<route>`. */
  readonly routes: string[];
}

export function toPool(row: Selectable<PoolTable>): Pool {
  return {
    name: row.name,
    algorithm: row.algorithm as Algorithm,
    healthCheck: toHealthCheck(row.health_check),
    tls: toMemberTls(row.tls),
    revision: Number(row.revision),
    createdAt: iso(row.created_at),
    updatedAt: iso(row.updated_at),
  };
}

/** jsonb reorders keys; rebuild the check in the schema's field order so the JSON answer is stable. */
function toHealthCheck(value: unknown): HealthCheck | null {
  if (value === null || value === undefined) return null;
  const c = value as HealthCheck;
  return {
    type: c.type as CheckType,
    path: c.path,
    expectedStatus: c.expectedStatus,
    host: c.host,
    port: c.port,
    intervalMs: c.intervalMs,
    timeoutMs: c.timeoutMs,
    rise: c.rise,
    fall: c.fall,
  };
}

/** As toHealthCheck: the schema's field order. Rows from before 0016 have no value (plain members). */
function toMemberTls(value: unknown): MemberTls | null {
  if (value === null || value === undefined) return null;
  const t = value as MemberTls;
  return {
    verify: t.verify,
    caBundle: t.caBundle,
    sni: t.sni === null ? null : t.sni.from === 'fixed' ? { from: 'fixed', name: t.sni.name } : { from: 'host' },
    clientCertificate: t.clientCertificate,
    alpn: t.alpn,
  };
}

function memberCount(eb: ExpressionBuilder<Database, 'pools'>) {
  return eb
    .selectFrom('members')
    .select((m) => m.fn.countAll<string>().as('n'))
    .whereRef('members.tenant_id', '=', 'pools.tenant_id')
    .whereRef('members.pool_name', '=', 'pools.name')
    .as('member_count');
}

function toPoolResource(row: Selectable<PoolTable> & { member_count: string | null }): PoolResource {
  return { ...toPool(row), memberCount: Number(row.member_count ?? 0) };
}

export async function findPool(db: Db, tenantId: string, name: string): Promise<PoolResource | undefined> {
  const row = await db
    .selectFrom('pools')
    .selectAll('pools')
    .select(memberCount)
    .where('tenant_id', '=', tenantId)
    .where('name', '=', name)
    .executeTakeFirst();
  return row && toPoolResource(row);
}

export async function poolExists(db: Db, tenantId: string, name: string): Promise<boolean> {
  const row = await db
    .selectFrom('pools')
    .select('name')
    .where('tenant_id', '=', tenantId)
    .where('name', '=', name)
    .executeTakeFirst();
  return row !== undefined;
}

/** One page of a tenant's pools, by name; `after` is the last name of the previous page. */
export async function listPools(
  db: Db,
  tenantId: string,
  q: { limit: number; after?: string | undefined },
): Promise<PoolResource[]> {
  let query = db
    .selectFrom('pools')
    .selectAll('pools')
    .select(memberCount)
    .where('tenant_id', '=', tenantId)
    .orderBy('name')
    .limit(q.limit);
  if (q.after !== undefined) query = query.where('name', '>', q.after);
  return (await query.execute()).map(toPoolResource);
}

export async function insertPool(db: Db, tenantId: string, p: CreatePool, revision: number): Promise<Pool> {
  const row = await db
    .insertInto('pools')
    .values({
      tenant_id: tenantId,
      name: p.name,
      algorithm: p.algorithm,
      health_check: p.healthCheck === null ? null : JSON.stringify(p.healthCheck),
      tls: p.tls === null ? null : JSON.stringify(p.tls),
      revision,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
  return toPool(row);
}

/** Writes the pool's own fields (the service has merged the patch). */
export async function updatePool(
  db: Db,
  tenantId: string,
  p: Pick<Pool, 'name' | 'algorithm' | 'healthCheck' | 'tls'>,
  revision: number,
): Promise<Pool> {
  const row = await db
    .updateTable('pools')
    .set({
      algorithm: p.algorithm,
      health_check: p.healthCheck === null ? null : JSON.stringify(p.healthCheck),
      tls: p.tls === null ? null : JSON.stringify(p.tls),
      revision,
      updated_at: new Date(),
    })
    .where('tenant_id', '=', tenantId)
    .where('name', '=', p.name)
    .returningAll()
    .executeTakeFirstOrThrow();
  return toPool(row);
}

/** Deletes the pool; its members go with it (ON DELETE CASCADE). */
export async function deletePool(db: Db, tenantId: string, name: string): Promise<void> {
  await db.deleteFrom('pools').where('tenant_id', '=', tenantId).where('name', '=', name).execute();
}

export async function findPoolReferences(db: Db, tenantId: string, name: string): Promise<PoolReferences> {
  const vips = await db
    .selectFrom('vips')
    .select('name')
    .where('tenant_id', '=', tenantId)
    .where('default_pool', '=', name)
    .orderBy('name')
    .execute();
  const routes = await db
    .selectFrom('routes')
    .select(['vip_name', 'name'])
    .where('tenant_id', '=', tenantId)
    .where('pool_name', '=', name)
    .orderBy('vip_name')
    .orderBy('name')
    .execute();
  return { vips: vips.map((v) => v.name), routes: routes.map((r) => `${r.vip_name}/${r.name}`) };
}

/** Names of the tenant's pools whose TLS settings name this CA bundle or certificate, sorted. */
export async function poolsUsingTlsMaterial(
  db: Db,
  tenantId: string,
  ref: { caBundle: string } | { clientCertificate: string },
): Promise<string[]> {
  let query = db.selectFrom('pools').select('name').where('tenant_id', '=', tenantId);
  query =
    'caBundle' in ref
      ? query.where('tls_ca_bundle', '=', ref.caBundle)
      : query.where('tls_client_certificate', '=', ref.clientCertificate);
  return (await query.orderBy('name').execute()).map((r) => r.name);
}

/** Names of the tenant's tcp VIPs sending traffic to this pool, sorted (tcp VIPs have no routes). */
export async function tcpVipsUsingPool(db: Db, tenantId: string, pool: string): Promise<string[]> {
  const rows = await db
    .selectFrom('vips')
    .select('name')
    .where('tenant_id', '=', tenantId)
    .where('default_pool', '=', pool)
    .where('protocol', '=', 'tcp')
    .orderBy('name')
    .execute();
  return rows.map((r) => r.name);
}
