import { MEMBER_STATES, type MemberSpec } from '../domain/member.js';
import { ALGORITHMS, type HealthCheck } from '../domain/pool.js';
import type { PoolSnapshot, VipSnapshot } from '../domain/snapshot.js';
import { PERSISTENCE_TYPES } from '../domain/vip.js';
import { safe, safeInt, safeOneOf, safeHealthCheck } from './guard.js';
import { guardMemberTls } from './member-tls.js';
import { nginxIp } from './nginx-address.js';
import { byName, type TenantContext } from './haproxy-tenant-context.js';
import { formatEndpoint, formatSeconds, persistentUpstreamName, upstreamName } from './nginx-names.js';

export type NginxContext = 'http' | 'stream';

export interface NginxServerView {
  readonly member: string;
  readonly endpoint: string;
  readonly weight: number;
  readonly maxFails: number;
  /** Null when the pool has no health check: `max_fails=0` never marks a member failed. */
  readonly failTimeout: string | null;
  readonly backup: boolean;
  readonly down: boolean;
  /** Why a member is rendered other than as asked: a fixed phrase, never input. */
  readonly note: string | null;
}

export interface NginxUpstreamView {
  readonly name: string;
  readonly pool: string;
  /**
   * HTTP: the Lua balancer picks each request's member from the runtime state (see
   * nginx-runtime-view.ts), so the block holds no member and changes only when the upstream does.
   * TCP (the stream module has no Lua): nginx balances over the server lines below.
   */
  readonly balancer: boolean;
  readonly leastConn: boolean;
  /** Variable (without `$`) hashed with `hash ... consistent`, or null. */
  readonly hashKey: string | null;
  /** Idle connections kept open per worker (http only). */
  readonly keepalive: number | null;
  readonly servers: readonly NginxServerView[];
}

/** How one VIP balances over one pool: its persistence changes the method, so it is part of the key. */
interface UpstreamPlan {
  readonly name: string;
  readonly pool: PoolSnapshot;
  readonly context: NginxContext;
  readonly hashKey: string | null;
  readonly leastConn: boolean;
  /** HTTP: the cookie a VIP persists sessions with, or null. */
  readonly cookie: string | null;
  /** Balanced by the client's address (the pool's algorithm or the VIP's persistence). */
  readonly source: boolean;
}

/** The upstreams of one tenant in one context, and how each VIP reaches each pool. */
export interface UpstreamPlans {
  readonly plans: readonly UpstreamPlan[];
  /** The upstream a VIP uses for a pool, or null when a TCP pool has no member to send to. */
  target(vip: VipSnapshot, pool: string): string | null;
}

/** Idle connections to members kept per worker and upstream, as HAProxy reuses server connections. */
const HTTP_KEEPALIVE = 32;
/**
 * `hash ... consistent` builds 160 ring points per unit of weight, per upstream, when nginx
 * starts: weights are reduced by their common divisor and, past this total, scaled down to it
 * (each at least 1), so uneven weights over many members cost kilobytes, not megabytes, and
 * `nginx -t` stays fast. Ratios hold exactly up to the budget and to about 1% of the total
 * beyond it, finer than the ring itself balances.
 */
const HASH_WEIGHT_BUDGET = 100;

/**
 * Plans the tenant's upstreams in one context. HTTP also gets an upstream for every pool no VIP
 * uses, so its members are validated and visible before traffic arrives. An HTTP upstream exists
 * whether its pool has members or not (its block names none, and the balancer answers 503 while
 * the entry has no peer): nginx.conf then never depends on members, which NGINX's structure leaves
 * out, so a pool's first member needs no reload to be served. A TCP pool without members gets no
 * upstream (nginx refuses an empty one) and its VIPs close instead.
 */
export function planUpstreams(ctx: TenantContext, context: NginxContext): UpstreamPlans {
  const plans = new Map<string, UpstreamPlan>();
  const targets = new Map<string, string | null>();
  const vips = ctx.vips.filter((v) => (v.protocol === 'tcp') === (context === 'stream'));
  for (const vip of vips) {
    const pools = [vip.defaultPool, ...vip.routes.map((r) => r.pool)].filter((p): p is string => p !== null);
    for (const poolName of pools) {
      const plan = planFor(ctx, vip, ctx.pools.get(poolName)!, context);
      targets.set(`${vip.name}/${poolName}`, plan === null ? null : plan.name);
      if (plan !== null) plans.set(plan.name, plan);
    }
  }
  if (context === 'http') {
    const used = new Set([...ctx.vips].flatMap((v) => [v.defaultPool, ...v.routes.map((r) => r.pool)]));
    for (const pool of ctx.pools.values()) {
      if (!used.has(pool.name)) plans.set(upstreamName(ctx.id, pool.name), basePlan(ctx, pool, context));
    }
  }
  return {
    plans: [...plans.values()].sort(byName),
    target: (vip, pool) => targets.get(`${vip.name}/${pool}`) ?? null,
  };
}

function planFor(ctx: TenantContext, vip: VipSnapshot, pool: PoolSnapshot, context: NginxContext): UpstreamPlan | null {
  if (pool.members.length === 0 && context === 'stream') return null;
  const base = basePlan(ctx, pool, context);
  const field = `${ctx.field}.vips.${vip.name}`;
  const persistence = safeOneOf(`${field}.persistence`, vip.persistence, PERSISTENCE_TYPES);
  if (persistence === 'cookie' && context === 'http') {
    const cookie = safe('cookie', `${field}.cookieName`, vip.cookieName);
    // The Lua balancer keeps the pool's own algorithm for clients without the cookie, as HAProxy does.
    return { ...base, name: persistentUpstreamName(base.name, { cookie }), cookie };
  }
  if (persistence === 'source' && base.hashKey === null) {
    return {
      ...base,
      name: persistentUpstreamName(base.name, 'source'),
      hashKey: 'remote_addr',
      leastConn: false,
      source: true,
    };
  }
  return base;
}

/** The pool's own algorithm; `source` is a consistent hash of the client address, like HAProxy's. */
function basePlan(ctx: TenantContext, pool: PoolSnapshot, context: NginxContext): UpstreamPlan {
  const algorithm = safeOneOf(`${ctx.field}.pools.${pool.name}.algorithm`, pool.algorithm, ALGORITHMS);
  return {
    name: upstreamName(ctx.id, pool.name),
    pool,
    context,
    hashKey: algorithm === 'source' ? 'remote_addr' : null,
    leastConn: algorithm === 'leastconn',
    cookie: null,
    source: algorithm === 'source',
  };
}

/**
 * Upstreams get no shared `zone`: with one per tenant, nginx's list of zones made startup slow at
 * scale, and one for the node would tie every tenant's text to the node's total size. Each worker
 * therefore counts a member's failures on its own, nginx's default.
 */
export function upstreamView(ctx: TenantContext, plan: UpstreamPlan): NginxUpstreamView {
  const field = `${ctx.field}.pools.${plan.pool.name}`;
  if (plan.context === 'http')
    return {
      name: plan.name,
      pool: plan.pool.name,
      balancer: true,
      leastConn: false,
      hashKey: null,
      keepalive: sniFromHost(field, plan.pool) ? null : HTTP_KEEPALIVE,
      servers: [],
    };
  const check = plan.pool.healthCheck === null ? null : safeHealthCheck(`${field}.healthCheck`, plan.pool.healthCheck);
  const members = [...plan.pool.members].sort(byName).map((m) => guardMember(`${field}.members`, m));
  return {
    name: plan.name,
    pool: plan.pool.name,
    balancer: false,
    leastConn: plan.leastConn,
    hashKey: plan.hashKey,
    keepalive: null,
    servers: serverViews(members, check, plan.hashKey !== null),
  };
}

/**
 * NGINX keys idle upstream connections by peer only, not by `proxy_ssl_name`: with the SNI taken
 * from each request's Host, a kept connection verified for one host would carry a request for
 * another (measured: a Host the member's certificate does not name was answered 200). Such pools
 * get a new, verified connection per request. HAProxy keys its idle connections by SNI too.
 */
function sniFromHost(field: string, pool: PoolSnapshot): boolean {
  return guardMemberTls(field, pool)?.sni?.from === 'host';
}

interface GuardedMember {
  readonly name: string;
  readonly endpoint: string;
  readonly weight: number;
  readonly state: MemberSpec['state'];
  readonly backup: boolean;
}

function guardMember(field: string, member: MemberSpec): GuardedMember {
  const at = `${field}.${safe('slug', `${field}.name`, member.name)}`;
  return {
    name: member.name,
    endpoint: formatEndpoint(nginxIp(`${at}.address`, member.address), safeInt(`${at}.port`, member.port, 1, 65535)),
    weight: safeInt(`${at}.weight`, member.weight, 0, 256),
    state: safeOneOf(`${at}.state`, member.state, MEMBER_STATES),
    backup: member.backup === true,
  };
}

/**
 * NGINX open source has no drain and no weight 0: such members, and disabled ones, are `down`
 * (no new requests; requests in flight finish on the old workers after the reload). Hash
 * balancing cannot hold `backup` servers, so backups are `down` there; and nginx refuses an
 * upstream of backups only. In both cases, when no primary could serve, the backups serve as
 * ordinary members, which is what HAProxy does with them then. A `down` server still owns ring
 * points in a consistent hash, so it gets the smallest weight there.
 */
function serverViews(members: readonly GuardedMember[], check: HealthCheck | null, hashed: boolean): NginxServerView[] {
  const usable = (m: GuardedMember) => m.state === 'enabled' && m.weight > 0;
  const promote = hashed ? !members.some((m) => usable(m) && !m.backup) : members.every((m) => m.backup);
  const notes = members.map((m) => serverNote(m, hashed, promote));
  const serving = members.filter((m, i) => usable(m) && (notes[i] === null || notes[i] === BACKUP_PROMOTED));
  const scaled = hashed ? hashWeights(serving.map((m) => m.weight)) : [];
  const hashedWeights = new Map(serving.map((m, i) => [m, scaled[i]!]));
  return members.map((m, i) => {
    const note = notes[i]!;
    return {
      member: m.name,
      endpoint: m.endpoint,
      weight: hashed ? (hashedWeights.get(m) ?? 1) : Math.max(1, m.weight),
      maxFails: check === null ? 0 : check.fall,
      failTimeout: check === null ? null : formatSeconds(check.intervalMs * check.fall),
      backup: m.backup && !hashed && !promote,
      down: note !== null && note !== BACKUP_PROMOTED,
      note,
    };
  });
}

const BACKUP_PROMOTED = 'backup serving as an ordinary member: no primary can serve';

function serverNote(m: GuardedMember, hashed: boolean, promote: boolean): string | null {
  if (m.state === 'disabled') return 'disabled';
  if (m.state === 'drain') return 'draining: nginx has no drain, so no new requests';
  if (m.weight === 0) return 'weight 0: nginx weights start at 1, so no new requests';
  if (m.backup && promote) return BACKUP_PROMOTED;
  if (m.backup && hashed) return 'backup: hash balancing cannot hold backup servers';
  return null;
}

function hashWeights(weights: readonly number[]): number[] {
  if (weights.length === 0) return [];
  const divisor = weights.reduce(gcd);
  const reduced = weights.map((w) => w / divisor);
  const total = reduced.reduce((a, b) => a + b, 0);
  if (total <= HASH_WEIGHT_BUDGET) return reduced;
  return reduced.map((w) => Math.max(1, Math.round((w * HASH_WEIGHT_BUDGET) / total)));
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}
