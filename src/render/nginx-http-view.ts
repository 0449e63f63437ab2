import type { VipSnapshot } from '../domain/snapshot.js';
import { PERSISTENCE_TYPES, VIP_PROTOCOLS } from '../domain/vip.js';
import { safe, safeInt, safeOneOf } from './guard.js';
import { nginxAllowRanges, nginxListenIp } from './nginx-address.js';
import type { TenantContext } from './haproxy-tenant-context.js';
import {
  absolutePath,
  certificateFile,
  formatEndpoint,
  formatMillis,
  keyFile,
  NODE_NAMES,
  variableName,
} from './nginx-names.js';
import { routeMapView, type NginxRouteMapView } from './nginx-route-map.js';
import {
  AMBIGUOUS_PATH_STATUS,
  UNKNOWN_HOST_STATUS,
  knownHosts,
  literalDots,
  wildcardHostRegex,
} from './request-rules.js';
import { planUpstreams, upstreamView, type NginxUpstreamView } from './nginx-upstream-view.js';
import { memberTlsView, type NginxMemberTlsView } from './nginx-member-tls.js';

/** One tenant's `http {}` part. */
export interface NginxHttpTenantView {
  readonly routeMaps: readonly NginxRouteMapView[];
  readonly upstreams: readonly NginxUpstreamView[];
  readonly servers: readonly NginxHttpServerView[];
}

export interface NginxZoneView {
  readonly name: string;
  readonly size: string;
}

export interface NginxHttpServerView {
  readonly vip: string;
  /**
   * What the Lua module keys this server's requests by (`$sy_tenant`, `$sy_vip`): the caps it
   * admits them against and the counters it adds them to.
   */
  readonly lua: { readonly tenant: string; readonly vip: string };
  readonly listen: string;
  readonly ssl: boolean;
  readonly serverNames: readonly string[];
  readonly certificate: { readonly crt: string; readonly key: string } | null;
  /**
   * The source allowlist, as a `geo` variable tested in the server rewrite phase: a refused
   * source is answered 403 before `limit_req` and `limit_conn` count it (nginx's `allow`/`deny`
   * run after them), so it cannot spend the tenant's rate, as HAProxy refuses it at connect.
   */
  readonly allowlist: { readonly variable: string; readonly ranges: readonly string[] } | null;
  /** Refuses a path the two proxies could read differently (request-rules.ts), before any limit counts it. */
  readonly pathGuard: { readonly variable: string; readonly status: number };
  /**
   * With hostnames: a `map $host` to 1 for the names the VIP answers for; any other Host is
   * answered `status` (server_name alone does not refuse: the only server on a listener is its default).
   * Exact names are regexes too: a hashed `map` of 253-character names overflows map_hash_bucket_size,
   * and nginx spent 40 s on `-t` trying hash sizes before it said so.
   */
  readonly knownHosts: {
    readonly variable: string;
    readonly status: number;
    readonly regexes: readonly string[];
  } | null;
  readonly timeouts: {
    readonly connect: string;
    readonly read: string;
    readonly send: string;
    readonly clientHeader: string;
    readonly clientBody: string;
    readonly keepalive: string;
  };
  readonly proxy: {
    /** A fixed upstream when the VIP has no routes. */
    readonly upstream: string | null;
    /** TLS to the fixed upstream's members, or null for plain ones. */
    readonly tls: NginxMemberTlsView | null;
    /** The route map's variable when it has routes. */
    readonly variable: string | null;
    /** Some route or the fallback leads nowhere: answer 503 for it. */
    readonly unroutedGuard: boolean;
    /**
     * When some routed pool has TLS members: one named location per upstream the routes reach,
     * each with its own scheme and `proxy_ssl_*` settings (they cannot vary in one location), and
     * `location /` jumps to `@<chosen upstream>`. Null: one `proxy_pass http://$variable`.
     */
    readonly dispatch: readonly { readonly upstream: string; readonly tls: NginxMemberTlsView | null }[] | null;
  };
}

/** Like HAProxy's `timeout http-request` / `http-keep-alive` defaults, never above the client timeout. */
const HEADER_AND_KEEPALIVE_MS = 10_000;
export function httpTenantView(ctx: TenantContext): NginxHttpTenantView | null {
  const vips = ctx.vips.filter(
    (v) => safeOneOf(`${ctx.field}.vips.${v.name}.protocol`, v.protocol, VIP_PROTOCOLS) !== 'tcp',
  );
  const upstreams = planUpstreams(ctx, 'http');
  if (vips.length === 0 && upstreams.plans.length === 0) return null;
  const routeMaps = new Map<string, NginxRouteMapView>();
  for (const vip of vips) {
    if (vip.routes.length > 0) {
      routeMaps.set(
        vip.name,
        routeMapView(ctx.id, `${ctx.field}.vips.${vip.name}`, vip, (pool) => upstreams.target(vip, pool)),
      );
    }
  }
  for (const v of vips) safeOneOf(`${ctx.field}.vips.${v.name}.persistence`, v.persistence, PERSISTENCE_TYPES);
  return {
    routeMaps: [...routeMaps.values()],
    upstreams: upstreams.plans.map((plan) => upstreamView(ctx, plan)),
    servers: vips.map((vip) =>
      serverView(ctx, vip, routeMaps.get(vip.name) ?? null, upstreams.target(vip, vip.defaultPool ?? ''), (pool) =>
        upstreams.target(vip, pool),
      ),
    ),
  };
}

function serverView(
  ctx: TenantContext,
  vip: VipSnapshot,
  routeMap: NginxRouteMapView | null,
  defaultUpstream: string | null,
  upstreamFor: (pool: string) => string | null,
): NginxHttpServerView {
  const field = `${ctx.field}.vips.${vip.name}`;
  const t = vip.timeouts;
  const clientMs = safeInt(`${field}.timeouts.clientMs`, t.clientMs, 1, 3_600_000);
  const serverMs = safeInt(`${field}.timeouts.serverMs`, t.serverMs, 1, 3_600_000);
  const hostnames = vip.hostnames.map((h, i) => safe('host', `${field}.hostnames[${i}]`, h));
  const ssl = vip.protocol === 'https';
  return {
    vip: `${ctx.id}/${vip.name}`,
    lua: { tenant: ctx.id, vip: safe('slug', `${field}.name`, vip.name) },
    listen: formatEndpoint(
      nginxListenIp(`${field}.address`, vip.address),
      safeInt(`${field}.port`, vip.port, 1, 65535),
    ),
    ssl,
    serverNames: hostnames.length === 0 ? ['_'] : [...new Set(hostnames)].sort(),
    certificate: ssl ? certificatePaths(ctx, vip.certificate!) : null,
    allowlist:
      vip.allowlist.length === 0
        ? null
        : { variable: variableName(ctx.id, vip.name, 'allow'), ranges: allowlist(field, vip.allowlist) },
    pathGuard: { variable: NODE_NAMES.ambiguousPath, status: AMBIGUOUS_PATH_STATUS },
    knownHosts: knownHostsView(ctx, field, vip),
    timeouts: {
      connect: formatMillis(safeInt(`${field}.timeouts.connectMs`, t.connectMs, 1, 600_000)),
      read: formatMillis(serverMs),
      send: formatMillis(serverMs),
      clientHeader: formatMillis(Math.min(clientMs, HEADER_AND_KEEPALIVE_MS)),
      clientBody: formatMillis(clientMs),
      keepalive: formatMillis(Math.min(clientMs, HEADER_AND_KEEPALIVE_MS)),
    },
    proxy:
      routeMap === null
        ? {
            upstream: defaultUpstream,
            tls: defaultUpstream === null ? null : poolTls(ctx, vip.defaultPool!),
            variable: null,
            unroutedGuard: false,
            dispatch: null,
          }
        : {
            upstream: null,
            tls: null,
            variable: routeMap.variable,
            unroutedGuard: routeMap.fallback === '' || routeMap.routes.some((r) => r.upstream === ''),
            dispatch: dispatchOf(ctx, vip, upstreamFor),
          },
  };
}

function poolTls(ctx: TenantContext, pool: string): NginxMemberTlsView | null {
  return memberTlsView(ctx, ctx.pools.get(pool)!);
}

/** The named locations of a routed VIP whose pools differ in TLS; null when every pool is plain. */
function dispatchOf(
  ctx: TenantContext,
  vip: VipSnapshot,
  upstreamFor: (pool: string) => string | null,
): NginxHttpServerView['proxy']['dispatch'] {
  const pools = [
    ...new Set([vip.defaultPool, ...vip.routes.map((r) => r.pool)].filter((p): p is string => p !== null)),
  ];
  const targets = new Map<string, NginxMemberTlsView | null>();
  for (const pool of pools) {
    const upstream = upstreamFor(pool);
    if (upstream !== null) targets.set(upstream, poolTls(ctx, pool));
  }
  if ([...targets.values()].every((tls) => tls === null)) return null;
  return [...targets].sort(([a], [b]) => (a < b ? -1 : 1)).map(([upstream, tls]) => ({ upstream, tls }));
}

function knownHostsView(ctx: TenantContext, field: string, vip: VipSnapshot): NginxHttpServerView['knownHosts'] {
  const hosts = knownHosts(vip);
  if (hosts === null) return null;
  return {
    variable: variableName(ctx.id, vip.name, 'host'),
    status: UNKNOWN_HOST_STATUS,
    regexes: [
      ...hosts.exact.map((h) => `^${literalDots(safe('host', `${field}.hostnames`, h))}$`),
      ...hosts.wildcards.map((h) => wildcardHostRegex(safe('host', `${field}.hostnames`, h))),
    ],
  };
}

function certificatePaths(ctx: TenantContext, cert: string): { crt: string; key: string } {
  const field = `${ctx.field}.certificates.${cert}`;
  return {
    crt: safe('file', field, absolutePath(ctx.configDir, certificateFile(ctx.id, cert))),
    key: safe('file', field, absolutePath(ctx.configDir, keyFile(ctx.id, cert))),
  };
}

/**
 * Sorted and deduplicated: order does not matter to `allow` or `geo`, and equal input gives
 * equal bytes. `geo` warns when a range repeats its `default`, so "everything" is given as two halves.
 */
export function allowlist(field: string, ranges: readonly string[]): string[] {
  const rules = ranges
    .flatMap((r, i) => nginxAllowRanges(`${field}.allowlist[${i}]`, r))
    .flatMap((r) => WHOLE_FAMILY[r] ?? [r]);
  return [...new Set(rules.map((r) => safe('cidr', `${field}.allowlist`, r)))].sort();
}

const WHOLE_FAMILY: Readonly<Record<string, readonly string[]>> = {
  '0.0.0.0/0': ['0.0.0.0/1', '128.0.0.0/1'],
  '::/0': ['::/1', '8000::/1'],
};
