import { ValidationError } from '../domain/errors.js';
import { MEMBER_STATES, type MemberState } from '../domain/member.js';
import {
  entryHash,
  type NginxCaps,
  type NginxHealthCheck,
  type NginxPeerAdmin,
  type NginxRuntimeState,
  type NginxUpstream,
} from '../domain/nginx-runtime.js';
import type { NginxPlanOptions } from '../domain/nginx-runtime-plan.js';
import { ALGORITHMS, type HealthCheck } from '../domain/pool.js';
import type { NodeSnapshot, TenantSnapshot } from '../domain/snapshot.js';
import { safe, safeHealthCheck, safeInt, safeOneOf } from './guard.js';
import { byName, tenantContext } from './haproxy-tenant-context.js';
import { memberCookieValue } from './haproxy-names.js';
import { nginxIp } from './nginx-address.js';
import { planUpstreams } from './nginx-upstream-view.js';

/**
 * The runtime half of an NGINX node's config: for every HTTP upstream the rendered nginx.conf
 * declares (one per pool, and one per persistence variant a VIP asks for: `_src`, `_ck_<cookie>`),
 * what the Lua balancer reads per request; and each tenant's caps. The renderer writes it as
 * `runtime-state.jsonl` (loaded at start and after every reload) and the reconciler pushes the
 * same entries over the runtime channel, so a member, weight, state, algorithm, health check or
 * cap change needs no reload. Every value passes the guard, as for the config itself.
 */

const ADMIN: Record<MemberState, NginxPeerAdmin> = { enabled: 'ready', drain: 'drain', disabled: 'maint' };

/**
 * The most peers the Lua module takes in one upstream (MAX_PEERS in
 * templates/nginx/lua/switchyard/state_check.lua). It refuses a whole state file or push holding a
 * larger one, and a node that starts on a refused file has no entry for any upstream: every HTTP
 * VIP of every tenant there answers 503. Refused here instead, so that only this tenant is held
 * at its last good state.
 */
export const NGINX_MAX_PEERS = 4096;

/** Validation does not read configDir: one stands in, so the view is cached per tenant alone. */
const ANY_DIR = '/';

export interface TenantRuntime {
  /** The tenant's HTTP upstreams by name, sorted. */
  readonly upstreams: readonly (readonly [name: string, upstream: NginxUpstream])[];
  readonly caps: NginxCaps;
  /** The tenant's lines of runtime-state.jsonl (each ending in a newline), made once per snapshot. */
  readonly lines: string;
}

/** Snapshots are immutable: an unchanged tenant's entries are not built, hashed or printed again. */
const cache = new WeakMap<TenantSnapshot, TenantRuntime>();

export function tenantNginxRuntime(tenant: TenantSnapshot): TenantRuntime {
  let found = cache.get(tenant);
  if (found === undefined) {
    found = build(tenant);
    cache.set(tenant, found);
  }
  return found;
}

function build(tenant: TenantSnapshot): TenantRuntime {
  const ctx = tenantContext(tenant, ANY_DIR);
  const upstreams = planUpstreams(ctx, 'http').plans.map((plan) => {
    const field = `${ctx.field}.pools.${plan.pool.name}`;
    if (plan.pool.members.length > NGINX_MAX_PEERS) {
      const message = `pool ${plan.pool.name} has ${plan.pool.members.length} members; NGINX nodes balance at most ${NGINX_MAX_PEERS} per pool`;
      throw new ValidationError(`tenant ${ctx.id}: ${message}`, [{ path: `${field}.members`, message }]);
    }
    const algorithm = safeOneOf(`${field}.algorithm`, plan.pool.algorithm, ALGORITHMS);
    const cookie = plan.cookie;
    const upstream: NginxUpstream = {
      tenant: ctx.id,
      pool: safe('slug', `${field}.name`, plan.pool.name),
      algorithm: plan.source ? 'source' : algorithm,
      cookie,
      healthCheck:
        plan.pool.healthCheck === null
          ? null
          : healthCheck(safeHealthCheck(`${field}.healthCheck`, plan.pool.healthCheck)),
      peers: [...plan.pool.members].sort(byName).map((m) => {
        const at = `${field}.members.${safe('slug', `${field}.members`, m.name)}`;
        return {
          name: m.name,
          address: nginxIp(`${at}.address`, m.address),
          port: safeInt(`${at}.port`, m.port, 1, 65535),
          weight: safeInt(`${at}.weight`, m.weight, 0, 256),
          admin: ADMIN[safeOneOf(`${at}.state`, m.state, MEMBER_STATES)],
          backup: m.backup === true,
          cookie: cookie === null ? null : memberCookieValue(ctx.id, plan.pool.name, m.name),
        };
      }),
    };
    return [plan.name, upstream] as const;
  });
  const caps: NginxCaps = { maxConnections: ctx.maxConnections, requestsPerSecond: ctx.requestsPerSecond };
  const lines = [
    ...upstreams.map(([name, u]) => JSON.stringify({ upstream: name, hash: entryHash(u), value: u })),
    JSON.stringify({ caps: ctx.id, hash: entryHash(caps), value: caps }),
  ];
  return { upstreams, caps, lines: flat(`${lines.join('\n')}\n`) };
}

/** Expected statuses as inclusive ranges: `200-399,404` → [[200, 399], [404, 404]]. */
function healthCheck(c: HealthCheck): NginxHealthCheck {
  return {
    type: c.type,
    path: c.path,
    host: c.host,
    expectedStatus: c.expectedStatus.split(',').map((part) => {
      const [low, high = low] = part.split('-').map(Number);
      return [low!, high!] as const;
    }),
    port: c.port,
    intervalMs: c.intervalMs,
    timeoutMs: c.timeoutMs,
    rise: c.rise,
    fall: c.fall,
  };
}

/** The node's whole runtime state (or, with `tenants`, those tenants' part of it). */
export function toNginxRuntime(snapshot: NodeSnapshot, tenants?: ReadonlySet<string>): NginxRuntimeState {
  const upstreams: Record<string, NginxUpstream> = {};
  const caps: Record<string, NginxCaps> = {};
  for (const tenant of snapshot.tenants) {
    if (tenants !== undefined && !tenants.has(tenant.id)) continue;
    const runtime = tenantNginxRuntime(tenant);
    for (const [name, u] of runtime.upstreams) upstreams[name] = u;
    caps[tenant.id] = runtime.caps;
  }
  return { revision: snapshot.revision, upstreams, caps };
}

/** What unsettled tenants may hold on the node (NginxPlanOptions.leftAlone): their upstreams under any state listed, and their caps. */
export function nginxLeftAlone(unsettled: readonly TenantSnapshot[]): NonNullable<NginxPlanOptions['leftAlone']> {
  const upstreams = new Set<string>();
  const caps = new Set<string>();
  for (const t of unsettled) {
    for (const [name] of tenantNginxRuntime(t).upstreams) upstreams.add(name);
    caps.add(t.id);
  }
  return { upstreams, caps };
}

/** One flat string (see `flat` in render/haproxy.ts): a rope kept in a cache is copied by every GC. */
function flat(text: string): string {
  text.charCodeAt(0);
  return text;
}
