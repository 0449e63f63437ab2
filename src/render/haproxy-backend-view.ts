import { ALGORITHMS, type HealthCheck } from '../domain/pool.js';
import { MEMBER_STATES, type MemberSpec } from '../domain/member.js';
import type { ServerCheck } from '../domain/runtime-state.js';
import type { PoolSnapshot, VipSnapshot } from '../domain/snapshot.js';
import { DEFAULT_TIMEOUTS, PERSISTENCE_TYPES } from '../domain/vip.js';
import { safe, safeInt, safeOneOf, safeHealthCheck } from './guard.js';
import { backendName, formatDuration, formatEndpoint, memberCookieValue } from './haproxy-names.js';
import { byName, type TenantContext } from './haproxy-tenant-context.js';

export type ProxyMode = 'http' | 'tcp';

export interface HaproxyBackendView {
  readonly name: string;
  readonly mode: ProxyMode;
  readonly balance: string;
  /** `hash-type consistent` keeps a hash-balanced backend dynamic, so `add server` still works. */
  readonly hashType: string | null;
  readonly timeouts: { readonly connect: string; readonly server: string; readonly check: string | null };
  readonly cookie: string | null;
  readonly stickOnSource: { readonly size: string; readonly expire: string } | null;
  readonly httpCheck: { readonly send: string; readonly expect: string } | null;
  /** Each server's options, space-separated: `weight 100 cookie 3f9a… check inter 2s ...`. */
  readonly servers: readonly { readonly name: string; readonly endpoint: string; readonly options: string }[];
}

/** A backend to render: one pool in one mode, and the VIPs that send traffic to it. */
export interface BackendPlan {
  readonly name: string;
  readonly mode: ProxyMode;
  readonly pool: PoolSnapshot;
  readonly vips: readonly VipSnapshot[];
}

const SOURCE_STICK = { size: '100k', expire: formatDuration(30 * 60_000) };

export const vipMode = (vip: VipSnapshot): ProxyMode => (vip.protocol === 'tcp' ? 'tcp' : 'http');

/**
 * One backend per pool, in the mode of the VIPs that use it. A pool used by no VIP still gets a
 * (TCP-mode) backend, so its members are health-checked and visible before traffic arrives.
 */
export function planBackends(ctx: TenantContext): BackendPlan[] {
  const users = new Map<string, { http: VipSnapshot[]; tcp: VipSnapshot[] }>();
  for (const name of ctx.pools.keys()) users.set(name, { http: [], tcp: [] });
  for (const vip of ctx.vips) {
    const pools = new Set([vip.defaultPool, ...vip.routes.map((r) => r.pool)].filter((p): p is string => p !== null));
    for (const pool of pools) users.get(pool)![vipMode(vip)].push(vip);
  }
  const plans: BackendPlan[] = [];
  for (const pool of [...ctx.pools.values()].sort(byName)) {
    const { http, tcp } = users.get(pool.name)!;
    if (http.length > 0) plans.push({ name: backendName(ctx.id, pool.name), mode: 'http', pool, vips: http });
    if (tcp.length > 0 || http.length === 0) {
      plans.push({ name: backendName(ctx.id, pool.name, http.length > 0), mode: 'tcp', pool, vips: tcp });
    }
  }
  return plans;
}

/** The backend a VIP reaches a pool through. */
export function backendFor(plans: readonly BackendPlan[], pool: string, mode: ProxyMode): string {
  return plans.find((p) => p.pool.name === pool && p.mode === mode)!.name;
}

export function backendView(ctx: TenantContext, plan: BackendPlan): HaproxyBackendView {
  const field = `${ctx.field}.pools.${plan.pool.name}`;
  const algorithm = safeOneOf(`${field}.algorithm`, plan.pool.algorithm, ALGORITHMS);
  const check = plan.pool.healthCheck === null ? null : safeHealthCheck(`${field}.healthCheck`, plan.pool.healthCheck);
  const persistence = persistenceOf(ctx, plan);
  return {
    name: plan.name,
    mode: plan.mode,
    balance: algorithm,
    hashType: algorithm === 'source' ? 'consistent' : null,
    timeouts: { ...backendTimeouts(ctx, plan.vips), check: check === null ? null : formatDuration(check.timeoutMs) },
    cookie: persistence.cookie,
    stickOnSource: persistence.source ? SOURCE_STICK : null,
    httpCheck: check === null || check.type === 'tcp' ? null : httpCheck(check),
    servers: [...plan.pool.members]
      .sort(byName)
      .map((m) => serverView(`${field}.members`, m, check, persistence.cookie === null ? null : memberCookieValue(ctx.id, plan.pool.name, m.name))),
  };
}

/**
 * Persistence belongs to a VIP but lives in the backend: a backend persists the way its VIPs ask,
 * and when they ask differently it does both (a cookie, when present, wins over the source table).
 * The cookie name is the one of the first such VIP by name.
 */
function persistenceOf(ctx: TenantContext, plan: BackendPlan): { cookie: string | null; source: boolean } {
  let cookie: string | null = null;
  let source = false;
  for (const vip of plan.vips) {
    const field = `${ctx.field}.vips.${vip.name}`;
    const persistence = safeOneOf(`${field}.persistence`, vip.persistence, PERSISTENCE_TYPES);
    if (persistence === 'cookie' && plan.mode === 'http') cookie ??= safe('cookie', `${field}.cookieName`, vip.cookieName);
    if (persistence === 'source') source = true;
  }
  return { cookie, source };
}

/** Server-side timeouts are the most generous of the VIPs using the backend. */
function backendTimeouts(ctx: TenantContext, vips: readonly VipSnapshot[]): { connect: string; server: string } {
  let connect = vips.length === 0 ? DEFAULT_TIMEOUTS.connectMs : 0;
  let server = vips.length === 0 ? DEFAULT_TIMEOUTS.serverMs : 0;
  for (const vip of vips) {
    const field = `${ctx.field}.vips.${vip.name}.timeouts`;
    connect = Math.max(connect, safeInt(`${field}.connectMs`, vip.timeouts.connectMs, 1, 600_000));
    server = Math.max(server, safeInt(`${field}.serverMs`, vip.timeouts.serverMs, 1, 3_600_000));
  }
  return { connect: formatDuration(connect), server: formatDuration(server) };
}


/** HTTP/1.1 needs a Host header; without one the check speaks HTTP/1.0. */
function httpCheck(check: HealthCheck): { send: string; expect: string } {
  const send = check.host === null
    ? `meth GET uri ${check.path}`
    : `meth GET uri ${check.path} ver HTTP/1.1 hdr host ${check.host}`;
  return { send, expect: `status ${check.expectedStatus}` };
}

/**
 * Member state is rendered so that a fresh start without a server-state file is already right:
 * disabled → `disabled` (maintenance); drain → `weight 0`, which takes no new load-balanced
 * sessions while cookie- and table-persisted clients still reach the member — HAProxy's own
 * drain semantics — and which the Runtime API mirrors with `set server ... state drain`.
 * Check settings are repeated on every server line, because servers added at runtime with
 * `add server` ignore `default-server` and must be formatted the same way.
 */
function serverView(field: string, member: MemberSpec, check: HealthCheck | null, cookie: string | null): HaproxyBackendView['servers'][number] {
  const at = `${field}.${safe('slug', `${field}.name`, member.name)}`;
  const state = safeOneOf(`${at}.state`, member.state, MEMBER_STATES);
  const weight = safeInt(`${at}.weight`, member.weight, 0, 256);
  const options = [`weight ${serverWeight({ state, weight })}`];
  if (cookie !== null) options.push(`cookie ${cookie}`);
  if (check !== null) options.push(...checkOptions(check));
  if (member.backup === true) options.push('backup');
  if (state === 'disabled') options.push('disabled');
  return {
    name: member.name,
    endpoint: formatEndpoint(safe('ip', `${at}.address`, member.address), safeInt(`${at}.port`, member.port, 1, 65535)),
    options: options.join(' '),
  };
}

/** The weight a member's server line carries: a draining member takes no new load-balanced sessions. */
export function serverWeight(member: Pick<MemberSpec, 'state' | 'weight'>): number {
  return member.state === 'drain' ? 0 : member.weight;
}

/**
 * A pool's check as each server runs it: printed on server lines here, and given to `add server`
 * by the runtime planner, which must match (added servers ignore `default-server`).
 */
export function serverCheck(check: HealthCheck): ServerCheck {
  return {
    intervalMs: check.intervalMs,
    rise: check.rise,
    fall: check.fall,
    ...(check.port !== null && { port: check.port }),
    ...(check.type === 'https' && { ssl: true }),
    ...(check.type === 'https' && check.host !== null && { sni: check.host }),
  };
}

function checkOptions(check: HealthCheck): string[] {
  const c = serverCheck(check);
  const options = ['check', `inter ${formatDuration(c.intervalMs)}`, `rise ${c.rise}`, `fall ${c.fall}`];
  if (c.port !== undefined) options.push(`port ${c.port}`);
  if (c.ssl === true) options.push('check-ssl', 'verify none');
  if (c.sni !== undefined) options.push(`check-sni ${c.sni}`);
  return options;
}
