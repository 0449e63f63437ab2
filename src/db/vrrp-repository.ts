import { sql } from 'kysely';
import type { Db } from './connect.js';

/** A VIP address a node serves, with every VRRP node serving it, oldest placement first. */
export interface VrrpAddress {
  readonly address: string;
  readonly nodes: readonly { readonly name: string; readonly address: string }[];
}

/** A stored VRRP router of a node group. */
export interface StoredVrrpRouter {
  readonly address: string;
  readonly vrid: number;
  readonly authSealed: string;
}

// Any constant works; the same in every replica. "Svrr".
const ROUTERS_LOCK_KEY = 0x5376_7272;

/**
 * The VIP addresses of the active tenants placed on `node`, each with the nodes that have VRRP
 * settings and serve it, in placement order (the tenant's oldest placement first, then by name).
 * An address two tenants share (different ports) lists the nodes of both.
 */
export async function vrrpAddressesOf(db: Db, node: string): Promise<VrrpAddress[]> {
  const { rows } = await sql<{ address: string; node_name: string; vrrp_address: string }>`
    select host(v.address) as address, p.node_name, n.vrrp_address, min(p.placed_at) as placed_at
    from vips v
    join tenants t on t.id = v.tenant_id and t.state = 'active'
    join placements p on p.tenant_id = v.tenant_id
    join nodes n on n.name = p.node_name and n.vrrp_interface is not null and n.vrrp_address is not null
    where v.tenant_id in (select tenant_id from placements where node_name = ${node})
    group by host(v.address), p.node_name, n.vrrp_address
    order by host(v.address), placed_at, p.node_name
  `.execute(db);
  const out = new Map<string, { name: string; address: string }[]>();
  for (const r of rows) {
    const nodes = out.get(r.address) ?? [];
    nodes.push({ name: r.node_name, address: r.vrrp_address });
    out.set(r.address, nodes);
  }
  return [...out].map(([address, nodes]) => ({ address, nodes }));
}

/** Serialises allocations until the transaction ends: two nodes' builds must not take one VRID twice. */
export async function lockRouters(trx: Db): Promise<void> {
  await sql`select pg_advisory_xact_lock(${ROUTERS_LOCK_KEY})`.execute(trx);
}

/** Every router of the group. */
export async function routersOf(db: Db, group: string): Promise<StoredVrrpRouter[]> {
  const rows = await db
    .selectFrom('vrrp_routers')
    .select(['address', 'vrid', 'auth_sealed'])
    .where('node_group', '=', group)
    .execute();
  return rows.map((r) => ({ address: r.address, vrid: Number(r.vrid), authSealed: r.auth_sealed }));
}

export async function insertRouter(trx: Db, group: string, r: StoredVrrpRouter): Promise<void> {
  await trx
    .insertInto('vrrp_routers')
    .values({ node_group: group, address: r.address, vrid: r.vrid, auth_sealed: r.authSealed })
    .execute();
}

/**
 * Frees the routers of addresses no VIP holds any more (any tenant, any state: a suspended
 * tenant's address keeps its VRID for when it returns). Answers how many were freed.
 */
export async function releaseUnusedRouters(trx: Db, group: string): Promise<number> {
  const result = await sql`
    delete from vrrp_routers r
    where r.node_group = ${group} and not exists (select 1 from vips v where host(v.address) = r.address)
  `.execute(trx);
  return Number(result.numAffectedRows ?? 0);
}
