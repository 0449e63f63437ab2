import { ALGORITHMS, type HealthCheck } from '../domain/pool.js';
import { MEMBER_STATES, type MemberSpec } from '../domain/member.js';
import { SNI_FROM_HOST, type ServerCheck, type ServerTls } from '../domain/runtime-state.js';
import type { PoolSnapshot, VipSnapshot } from '../domain/snapshot.js';
import { DEFAULT_TIMEOUTS, PERSISTENCE_TYPES } from '../domain/vip.js';
import { safe, safeInt, safeOneOf, safeHealthCheck } from './guard.js';
import {
  absolutePath,
  backendName,
  formatDuration,
  formatEndpoint,
  memberCaFile,
  memberClientCertFile,
  memberCookieValue,
} from './haproxy-names.js';
import { guardMemberTls, type GuardedMemberTls } from './member-tls.js';
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
  const tls = guardMemberTls(field, plan.pool);
  const server = { check, tls, serverTls: serverTls(ctx, plan.pool, plan.mode) };
  return {
    name: plan.name,
    mode: plan.mode,
    balance: algorithm,
    hashType: algorithm === 'source' ? 'consistent' : null,
    timeouts: { ...backendTimeouts(ctx, plan.vips), check: check === null ? null : formatDuration(check.timeoutMs) },
    cookie: persistence.cookie,
    stickOnSource: persistence.source ? SOURCE_STICK : null,
    httpCheck: check === null || check.type === 'tcp' ? null : httpCheck(check),
    servers: [...plan.pool.members].sort(byName).map((m) =>
      serverView(`${field}.members`, m, {
        ...server,
        cookie: persistence.cookie === null ? null : memberCookieValue(ctx.id, plan.pool.name, m.name),
      }),
    ),
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
    if (persistence === 'cookie' && plan.mode === 'http')
      cookie ??= safe('cookie', `${field}.cookieName`, vip.cookieName);
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
  const send =
    check.host === null
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
interface ServerSettings {
  readonly check: HealthCheck | null;
  readonly tls: GuardedMemberTls | null;
  readonly serverTls: ServerTls | null;
  /** The member's persistence cookie value (opaque), or null without cookie persistence. */
  readonly cookie: string | null;
}

function serverView(
  field: string,
  member: MemberSpec,
  settings: ServerSettings,
): HaproxyBackendView['servers'][number] {
  const at = `${field}.${safe('slug', `${field}.name`, member.name)}`;
  const state = safeOneOf(`${at}.state`, member.state, MEMBER_STATES);
  const weight = safeInt(`${at}.weight`, member.weight, 0, 256);
  const options = [`weight ${serverWeight({ state, weight })}`];
  if (settings.cookie !== null) options.push(`cookie ${settings.cookie}`);
  if (settings.serverTls !== null) options.push(...tlsOptions(settings.serverTls));
  if (settings.check !== null) options.push(...checkOptions(serverCheck(settings.check, settings.tls)));
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
 * by the runtime planner, which must match (added servers ignore `default-server`). Checks of TLS
 * members are verified as traffic is (the server's `verify`, `ca-file`): https and tcp checks
 * speak TLS even on another port, with the check's host (or the fixed SNI) as SNI and verified
 * name, and HTTP/1.1 where traffic may negotiate h2; an http check of TLS members stays plain
 * (a plain health port). `tls` is the guarded pool TLS, null for plain members.
 */
export function serverCheck(check: HealthCheck, tls: GuardedMemberTls | null): ServerCheck {
  const base = {
    intervalMs: check.intervalMs,
    rise: check.rise,
    fall: check.fall,
    ...(check.port !== null && { port: check.port }),
  };
  if (tls === null) {
    // Only a state stored before TLS members existed holds an https check of plain members.
    return check.type === 'https'
      ? { ...base, ssl: true, verifyNone: true, ...(check.host !== null && { sni: check.host }) }
      : base;
  }
  if (check.type === 'http') return { ...base, plain: true };
  const fixed = tls.sni?.from === 'fixed' ? tls.sni.name : null;
  const sni = check.type === 'https' ? (check.host ?? fixed) : fixed;
  return { ...base, ssl: true, ...(sni !== null && { sni }), ...(tls.alpn.length > 0 && { alpn: 'http/1.1' }) };
}

function checkOptions(c: ServerCheck): string[] {
  const options = ['check', `inter ${formatDuration(c.intervalMs)}`, `rise ${c.rise}`, `fall ${c.fall}`];
  if (c.port !== undefined) options.push(`port ${c.port}`);
  if (c.ssl === true) options.push('check-ssl');
  if (c.plain === true) options.push('no-check-ssl');
  if (c.verifyNone === true) options.push('verify none');
  if (c.sni !== undefined) options.push(`check-sni ${c.sni}`);
  if (c.alpn !== undefined) options.push(`check-alpn ${c.alpn}`);
  return options;
}

/**
 * TLS to a pool's members as every server of a backend speaks it (given to `add server` too).
 * `verify: required` without a bundle trusts the system store (`@system-ca`, HAProxy 2.6+). The
 * SNI is also the name HAProxy checks the member's certificate against. A TCP-mode backend (a pool
 * no VIP uses yet) has no request, so an SNI from the Host is left out there.
 */
export function serverTls(ctx: TenantContext, pool: PoolSnapshot, mode: ProxyMode): ServerTls | null {
  const field = `${ctx.field}.pools.${pool.name}`;
  const tls = guardMemberTls(field, pool);
  if (tls === null) return null;
  const file = (relative: string) => safe('file', `${field}.tls`, absolutePath(ctx.configDir, relative));
  const sni =
    tls.sni === null
      ? null
      : tls.sni.from === 'fixed'
        ? `str(${tls.sni.name})`
        : mode === 'http'
          ? SNI_FROM_HOST
          : null;
  return {
    verify: tls.verify,
    ...(tls.verify === 'required' && {
      caFile: tls.caBundle === null ? '@system-ca' : file(memberCaFile(ctx.id, tls.caBundle)),
    }),
    ...(sni !== null && { sni }),
    ...(tls.alpn.length > 0 && { alpn: tls.alpn.join(',') }),
    ...(tls.clientCertificate !== null && { crt: file(memberClientCertFile(ctx.id, tls.clientCertificate)) }),
  };
}

function tlsOptions(t: ServerTls): string[] {
  const options = ['ssl', `verify ${t.verify}`];
  if (t.caFile !== undefined) options.push(`ca-file ${t.caFile}`);
  if (t.sni !== undefined) options.push(`sni ${t.sni}`);
  if (t.alpn !== undefined) options.push(`alpn ${t.alpn}`);
  if (t.crt !== undefined) options.push(`crt ${t.crt}`);
  return options;
}
