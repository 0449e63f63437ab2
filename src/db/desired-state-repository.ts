import { sql, type Selectable } from 'kysely';
import type { MemberSpec, MemberState } from '../domain/member.js';
import { canonicalIp } from '../domain/ip.js';
import type { Route } from '../domain/route.js';
import type { Tenant } from '../domain/tenant.js';
import type { Vip } from '../domain/vip.js';
import type { Pool } from '../domain/pool.js';
import type { CaBundleMaterial } from '../domain/ca-bundle.js';
import type { Db } from './connect.js';
import { toPool } from './pool-repository.js';
import { toRoute } from './route-repository.js';
import { toTenant } from './tenant-repository.js';
import { toVip } from './vip-repository.js';
import type { SealedCertificate } from './certificate-repository.js';
import type { PoolTable, RouteTable, TenantTable, VipTable } from './schema.js';

/** Everything of one tenant that a proxy serves, as stored (certificate keys still sealed). */
export interface TenantState {
  readonly tenant: Tenant;
  readonly vips: readonly (Vip & { routes: Route[] })[];
  readonly pools: readonly (Pool & { members: MemberSpec[] })[];
  readonly certificates: readonly SealedCertificate[];
  /** Absent in last good states stored before CA bundles existed (0016). */
  readonly caBundles?: readonly CaBundleMaterial[];
  /**
   * The tenant's stored caps per node (the rebalancer's); a node without one enforces the
   * reservation. Optional: last good states stored before allocations existed lack it.
   */
  readonly allocations?: readonly NodeAllocation[];
}

export interface NodeAllocation {
  readonly node: string;
  readonly maxConnections: number;
  readonly requestsPerSecond: number;
  /** The frontends' maxconn; null or absent: stored before ceilings existed (the limit stands in). */
  readonly ceiling?: number | null;
}

export interface DesiredState {
  /** The revision this state reflects: every write up to it, none after. */
  readonly revision: number;
  readonly tenants: readonly TenantState[];
  /**
   * The nodes that serve each tenant (placement), sorted. Kept beside the tenants' states rather
   * than in them: a tenant moving between nodes does not change what it is, so its rendered and
   * validated parts stay valid.
   */
  readonly placements: ReadonlyMap<string, readonly string[]>;
}

/** Per state, the tenants each node serves (states are immutable: a new revision is a new object). */
const servedByNode = new WeakMap<DesiredState, ReadonlyMap<string, readonly TenantState[]>>();

/**
 * The tenants `node` serves: those placed on it, in the state's order. Every node's list is made
 * in one pass the first time a state is asked: a change builds and plans each node from the same
 * state, and 10,000 placement lookups per node and per pass were a tenth of a build.
 */
export function tenantsOn(state: DesiredState, node: string): readonly TenantState[] {
  let byNode = servedByNode.get(state);
  if (byNode === undefined) {
    const lists = new Map<string, TenantState[]>();
    for (const t of state.tenants) {
      for (const n of state.placements.get(t.tenant.id) ?? []) {
        const list = lists.get(n);
        if (list === undefined) lists.set(n, [t]);
        else list.push(t);
      }
    }
    byNode = lists;
    servedByNode.set(state, byNode);
  }
  return byNode.get(node) ?? [];
}

/**
 * Hands `before`'s lists (when made) on to `after`, a state that differs from it only in the
 * `replaced` tenants, each at its index and on the same nodes: each list holding one of them is
 * copied with it in its place, the others are shared. A write to one tenant then costs its nodes'
 * list copies (pointer copies) instead of 10,000 placement lookups. Lists it cannot patch are
 * left to be made afresh.
 */
export function carryTenantsOn(before: DesiredState, after: DesiredState, replaced: readonly TenantState[]): void {
  const lists = servedByNode.get(before);
  if (lists === undefined || after.placements !== before.placements) return;
  const next = new Map(lists);
  for (const t of replaced) {
    for (const n of after.placements.get(t.tenant.id) ?? []) {
      let list = next.get(n);
      if (list === undefined) return;
      if (list === lists.get(n)) next.set(n, (list = list.slice()));
      const at = indexById(list, t.tenant.id);
      if (at < 0) return;
      (list as TenantState[])[at] = t;
    }
  }
  servedByNode.set(after, next);
}

/** The index of the tenant with this id in a list sorted by id, or -1. */
function indexById(list: readonly TenantState[], id: string): number {
  let lo = 0;
  let hi = list.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const at = list[mid]!.tenant.id;
    if (at === id) return mid;
    if (at < id) lo = mid + 1;
    else hi = mid - 1;
  }
  return -1;
}

/** A member as the load sends it: an array, not an object, so 10,000 of them are half the JSON. */
type MemberRow = [
  tenant: string,
  pool: string,
  name: string,
  address: string,
  port: number,
  weight: number,
  state: MemberState,
  backup: boolean,
];

/** The one row the desired-state statement answers: every table's rows as JSON arrays. */
interface StateRows {
  revision: string;
  changed: string[] | null;
  global: boolean | null;
  tenants: Selectable<TenantTable>[];
  vips: Selectable<VipTable>[];
  routes: Selectable<RouteTable>[];
  pools: Selectable<PoolTable>[];
  members: MemberRow[];
  certs: CertRow[];
  cas: { tenant_id: string; name: string; pem: string }[];
  allocations: {
    tenant_id: string;
    node: string;
    maxConnections: number;
    requestsPerSecond: number;
    ceiling: number | null;
  }[];
  placements: [string, string][];
}

interface CertRow {
  tenant_id: string;
  name: string;
  chain_pem: string;
  key_ciphertext: string;
  sans: string[];
}

/**
 * Reads the desired state of the given tenants (all active tenants when omitted) in ONE statement:
 * one snapshot, so the rows and the revision agree without a transaction, and one round trip
 * however many tenants there are (the reconciler reads it on every change). Given a transaction
 * (a dry-run write), it reads inside it and so sees that write's uncommitted rows.
 */
export async function loadDesiredState(
  db: Db,
  opts: { tenantIds?: readonly string[]; states?: readonly string[] } = {},
): Promise<DesiredState> {
  const row = await selectState(
    db,
    opts.tenantIds === undefined ? null : [...opts.tenantIds],
    [...(opts.states ?? ['active'])],
    null,
  );
  return toDesiredState(row);
}

/** What changed since a revision: the tenants whose audit events are newer, read in the same snapshot as their rows. */
export interface DesiredStateChanges {
  /** The revision the rows reflect. */
  readonly revision: number;
  /**
   * A change that names no tenant (a node registered, changed or deleted; an address pool) came
   * in: it may touch any tenant's placement, so the caller reads the whole state instead.
   */
  readonly global: boolean;
  /** Every tenant written since: each is in `state` when it is active, else it is gone. */
  readonly changed: readonly string[];
  /** The active tenants among `changed`, with their placements. */
  readonly state: DesiredState;
}

/**
 * The desired state of the active tenants written after revision `since`, in ONE statement (one
 * snapshot, like `loadDesiredState`). Every write stamps its audit events with its revision and
 * tenant, so they say which tenants a range of revisions touched: a one-tenant write costs a
 * one-tenant read however many tenants there are (audit_events_revision_idx).
 */
export async function loadDesiredStateChanges(db: Db, since: number): Promise<DesiredStateChanges> {
  const row = await selectState(db, null, ['active'], since);
  return {
    revision: Number(row.revision),
    global: row.global === true,
    changed: row.changed ?? [],
    state: toDesiredState(row),
  };
}

async function selectState(db: Db, ids: string[] | null, states: string[], since: number | null): Promise<StateRows> {
  // The tenant filter every sub-select shares; the ids travel as one array parameter, whatever their number.
  const touched = sql`select distinct tenant_id from audit_events where revision > ${since}::bigint and tenant_id is not null`;
  // Changes since a revision: the few tenants touched are listed first (one small array), and every
  // sub-select looks them up by key. Written as `id in (touched)`, the planner (whose estimate for
  // the newest revisions can be far off) scanned the tenants table once per sub-select: 18 ms
  // instead of 3 at 10,000 tenants, on every write.
  const chosen =
    since === null
      ? sql`select id from tenants where state = any(${states}::text[]) and (${ids}::text[] is null or id = any(${ids}::text[]))`
      : sql`select id from tenants where state = any(${states}::text[]) and id = any(array(${touched}))`;
  const of = (column: string) =>
    since === null
      ? sql`${sql.ref(column)} in (${chosen})`
      : sql`${sql.ref(column)} = any((select ids from chosen)::text[])`;
  const prelude = since === null ? sql`` : sql`with chosen as materialized (select array(${chosen}) as ids)`;
  const changes =
    since === null
      ? sql`null::text[] as changed, null::boolean as global`
      : sql`array(${touched}) as changed,
            exists (select 1 from audit_events where revision > ${since}::bigint and tenant_id is null) as global`;
  const { rows } = await sql<StateRows>`
    ${prelude}
    select
      (select revision from revision_counter where id = 1) as revision,
      ${changes},
      coalesce((select json_agg(t order by t.id) from tenants t where ${of('t.id')}), '[]') as tenants,
      coalesce((select json_agg(v order by v.tenant_id, v.name) from vips v where ${of('v.tenant_id')}), '[]') as vips,
      coalesce((select json_agg(r order by r.priority, r.name) from routes r where ${of('r.tenant_id')}), '[]') as routes,
      coalesce((select json_agg(p order by p.tenant_id, p.name) from pools p where ${of('p.tenant_id')}), '[]') as pools,
      coalesce((select json_agg(json_build_array(m.tenant_id, m.pool_name, m.name, host(m.address), m.port, m.weight, m.state, m.backup) order by m.name)
                from members m where ${of('m.tenant_id')}), '[]') as members,
      coalesce((select json_agg(json_build_object('tenant_id', c.tenant_id, 'name', c.name, 'chain_pem', c.chain_pem,
                  'key_ciphertext', c.key_ciphertext, 'sans', c.sans) order by c.name)
                from certificates c where ${of('c.tenant_id')}), '[]') as certs,
      coalesce((select json_agg(json_build_object('tenant_id', b.tenant_id, 'name', b.name, 'pem', b.pem) order by b.name)
                from ca_bundles b where ${of('b.tenant_id')}), '[]') as cas,
      coalesce((select json_agg(json_build_object('tenant_id', a.tenant_id, 'node', a.node_name, 'maxConnections', a.max_connections,
                  'requestsPerSecond', a.requests_per_second, 'ceiling', a.connection_ceiling) order by a.node_name)
                from allocations a where ${of('a.tenant_id')}), '[]') as allocations,
      coalesce((select json_agg(json_build_array(p.tenant_id, p.node_name) order by p.tenant_id, p.node_name)
                from placements p where ${of('p.tenant_id')}), '[]') as placements
  `.execute(db);
  return rows[0]!;
}

function toDesiredState(row: StateRows): DesiredState {
  const placements = new Map<string, string[]>();
  for (const [tenant, node] of row.placements) {
    const nodes = placements.get(tenant);
    if (nodes) nodes.push(node);
    else placements.set(tenant, [node]);
  }
  return { revision: Number(row.revision), tenants: assemble(row.tenants.map(toTenant), row), placements };
}

function assemble(tenants: Tenant[], rows: StateRows): TenantState[] {
  const vips = byKey(rows.vips.map((r) => [r.tenant_id, toVip(r)] as const));
  const routes = byKey(rows.routes.map((r) => [`${r.tenant_id}/${r.vip_name}`, toRoute(r)] as const));
  const pools = byKey(rows.pools.map((r) => [r.tenant_id, toPool(r)] as const));
  const members = byKey(
    rows.members.map(([tenant, pool, name, address, port, weight, state, backup]) => {
      // PostgreSQL prints some IPv6 forms (IPv4-mapped) differently from our canonical text; serve ours.
      const member: MemberSpec = { name, pool, address: canonicalIp(address) ?? address, port, weight, state, backup };
      return [`${tenant}/${pool}`, member] as const;
    }),
  );
  const allocations = byKey(
    rows.allocations.map(
      (a) =>
        [
          a.tenant_id,
          {
            node: a.node,
            maxConnections: a.maxConnections,
            requestsPerSecond: a.requestsPerSecond,
            ceiling: a.ceiling,
          },
        ] as const,
    ),
  );
  const certs = byKey(
    rows.certs.map(
      (c) =>
        [c.tenant_id, { name: c.name, chainPem: c.chain_pem, keyCiphertext: c.key_ciphertext, sans: c.sans }] as const,
    ),
  );
  const cas = byKey(rows.cas.map((b) => [b.tenant_id, { name: b.name, pem: b.pem }] as const));
  return tenants.map((tenant) => ({
    tenant,
    vips: (vips.get(tenant.id) ?? []).map((v) => ({ ...v, routes: routes.get(`${tenant.id}/${v.name}`) ?? [] })),
    pools: (pools.get(tenant.id) ?? []).map((p) => ({ ...p, members: members.get(`${tenant.id}/${p.name}`) ?? [] })),
    certificates: certs.get(tenant.id) ?? [],
    caBundles: cas.get(tenant.id) ?? [],
    allocations: allocations.get(tenant.id) ?? [],
  }));
}

/** Groups values by key, keeping their order. */
function byKey<V>(entries: readonly (readonly [string, V])[]): Map<string, V[]> {
  const out = new Map<string, V[]>();
  for (const [key, value] of entries) {
    const list = out.get(key);
    if (list) list.push(value);
    else out.set(key, [value]);
  }
  return out;
}
