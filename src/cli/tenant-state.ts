import type { CaBundle } from '../domain/ca-bundle.js';
import type { Certificate } from '../domain/certificate.js';
import type { Member } from '../domain/member.js';
import type { Pool } from '../domain/pool.js';
import type { Route } from '../domain/route.js';
import type { Tenant } from '../domain/tenant.js';
import type { Vip } from '../domain/vip.js';
import { ApiError, type ApiClient } from './api-client.js';

export interface CurrentPool extends Pool {
  readonly members: readonly Member[];
}

export interface CurrentVip extends Vip {
  readonly routes: readonly Route[];
}

/** A tenant and everything it owns, as the API answers it; `tenant` is null when it does not exist. */
export interface TenantState {
  readonly tenant: Tenant | null;
  readonly certificates: readonly Certificate[];
  readonly caBundles: readonly CaBundle[];
  readonly pools: readonly CurrentPool[];
  readonly vips: readonly CurrentVip[];
}

export const ABSENT_TENANT: TenantState = { tenant: null, certificates: [], caBundles: [], pools: [], vips: [] };

/** Reads a tenant's whole state through the API (a 404 for the tenant means it does not exist yet). */
export async function fetchTenantState(client: ApiClient, id: string): Promise<TenantState> {
  const base = `/v1/tenants/${encodeURIComponent(id)}`;
  let tenant: Tenant;
  try {
    tenant = (await client.get<Tenant>(base)).body;
  } catch (err) {
    if (err instanceof ApiError && err.failure === 'not-found') return ABSENT_TENANT;
    throw err;
  }
  const [certificates, caBundles, pools, vips] = await Promise.all([
    client.list<Certificate>(`${base}/certificates`),
    client.list<CaBundle>(`${base}/ca-bundles`),
    client.list<Pool>(`${base}/pools`),
    client.list<Vip>(`${base}/vips`),
  ]);
  return {
    tenant,
    certificates,
    caBundles,
    pools: await Promise.all(
      pools.map(async (p) => ({
        ...p,
        members: await client.list<Member>(`${base}/pools/${encodeURIComponent(p.name)}/members`),
      })),
    ),
    vips: await Promise.all(
      vips.map(async (v) => ({
        ...v,
        routes: await client.list<Route>(`${base}/vips/${encodeURIComponent(v.name)}/routes`),
      })),
    ),
  };
}
