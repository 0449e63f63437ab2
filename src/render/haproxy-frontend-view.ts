import { ValidationError } from '../domain/errors.js';
import type { Route } from '../domain/route.js';
import type { VipSnapshot } from '../domain/snapshot.js';
import { VIP_PROTOCOLS } from '../domain/vip.js';
import { safe, safeInt, safeOneOf } from './guard.js';
import { backendFor, vipMode, type BackendPlan, type ProxyMode } from './haproxy-backend-view.js';
import {
  HAPROXY_FILES,
  UNROUTED_BACKENDS,
  absolutePath,
  crtListFile,
  formatDuration,
  formatEndpoint,
  frontendName,
  capTableName,
  connectionCapKey,
  rateCapKey,
} from './haproxy-names.js';
import type { TenantContext } from './haproxy-tenant-context.js';
import {
  AMBIGUOUS_PATH_STATUS,
  UNKNOWN_HOST_STATUS,
  knownHosts,
  segmentPrefix,
  wildcardHostRegex,
} from './request-rules.js';

export interface HaproxyFrontendView {
  readonly name: string;
  /** `address:port`, IPv6 in brackets. */
  readonly bind: string;
  readonly ssl: { readonly crtList: string; readonly alpn: string } | null;
  readonly mode: ProxyMode;
  readonly http: boolean;
  /** The static ceiling: the tenant's connection limit. The moving cap is `caps.connections`. */
  readonly maxconn: number;
  readonly timeoutClient: string;
  /** Source ranges, a few per `acl` line; empty: every source is accepted. */
  readonly allowlist: readonly (readonly string[])[];
  readonly forwarded: { readonly proto: string; readonly port: number } | null;
  /**
   * HTTP: refuse a path the two proxies could read differently (see request-rules.ts). The regex is
   * read from a pattern file, which HAProxy compiles once for every frontend that names it (inline,
   * 10,000 frontends took 45 MB more and twice the CPU to load).
   */
  readonly pathGuard: { readonly status: number; readonly patternFile: string } | null;
  /** HTTP with hostnames: the `sy_known_host` criteria; another Host is refused with `status`. */
  readonly knownHosts: { readonly status: number; readonly criteria: readonly string[] } | null;
  readonly caps: HaproxyCapsView;
  readonly acls: readonly { readonly name: string; readonly criterion: string }[];
  readonly routes: readonly { readonly name: string; readonly backend: string; readonly condition: string }[];
  readonly defaultBackend: string;
}

/**
 * The tenant's caps on this node, enforced by every one of its frontends against its own stick
 * table and read from the caps map (so `set map` moves them at runtime, with no reload):
 * - connections: the table tracks the tenant's current connections (`conn_cur`); a new one
 *   beyond the cap is closed at once (`tcp-request session reject`: counted as a denied session,
 *   `dses`, apart from the allowlist's refusals, which are denied connections, `dcon`);
 * - requests (HTTP VIPs): only requests let through count (`gpc0`, incremented after the deny
 *   rule) over the table's 1-s window, so a tenant offered more than its cap is served its cap
 *   and only the excess is answered 429 (counted as `dreq`).
 * A fallback applies only if the map entry was deleted.
 */
export interface HaproxyCapsView {
  readonly table: string;
  /** The tenant's one entry in its table. */
  readonly tableKey: string;
  readonly mapFile: string;
  readonly connections: { readonly key: string; readonly fallback: number };
  readonly requests: { readonly key: string; readonly fallback: number } | null;
}

const ALLOWLIST_PER_LINE = 8;
const HOSTS_PER_LINE = 8;
/**
 * The Host a client sent, lower-cased and without its port. NGINX's `$host` also drops a trailing
 * dot: names are listed with and without one (a `regsub` per frontend cost 1.8 s of `haproxy -c`
 * and 40 MB at 10,000 frontends; a second string costs nothing).
 */
const BARE_HOST = 'req.hdr(host),lower,field(1,:)';
const withTrailingDot = (names: readonly string[]): string[] => names.flatMap((n) => [n, `${n}.`]);
/** HAProxy 2.6 serves HTTP/2 and HTTP/1.1 on TLS listeners alike. */
const ALPN = 'h2,http/1.1';

export function frontendView(ctx: TenantContext, vip: VipSnapshot, plans: readonly BackendPlan[]): HaproxyFrontendView {
  const field = `${ctx.field}.vips.${vip.name}`;
  const protocol = safeOneOf(`${field}.protocol`, vip.protocol, VIP_PROTOCOLS);
  const mode = vipMode(vip);
  const port = safeInt(`${field}.port`, vip.port, 1, 65535);
  const routes = mode === 'http' ? sortRoutes(vip.routes).map((r) => routeView(`${field}.routes`, r, plans)) : [];
  return {
    name: frontendName(ctx.id, vip.name),
    bind: formatEndpoint(safe('ip', `${field}.address`, vip.address), port),
    ssl:
      protocol === 'https'
        ? {
            crtList: safe('file', `${field}.certificate`, absolutePath(ctx.configDir, crtListFile(ctx.id, vip.name))),
            alpn: ALPN,
          }
        : null,
    mode,
    http: mode === 'http',
    maxconn: ctx.connectionLimit,
    timeoutClient: formatDuration(safeInt(`${field}.timeouts.clientMs`, vip.timeouts.clientMs, 1, 3_600_000)),
    allowlist: chunk(allowlist(field, vip.allowlist), ALLOWLIST_PER_LINE),
    forwarded: mode === 'http' ? { proto: protocol, port } : null,
    pathGuard:
      mode === 'http'
        ? { status: AMBIGUOUS_PATH_STATUS, patternFile: absolutePath(ctx.configDir, HAPROXY_FILES.ambiguousPath) }
        : null,
    knownHosts: mode === 'http' ? knownHostsView(field, vip) : null,
    caps: capsView(ctx, mode === 'http'),
    acls: routes.flatMap((r) => r.acls),
    routes: routes.map(({ name, backend, condition }) => ({ name, backend, condition })),
    defaultBackend: vip.defaultPool === null ? UNROUTED_BACKENDS[mode] : backendFor(plans, vip.defaultPool, mode),
  };
}

function capsView(ctx: TenantContext, http: boolean): HaproxyCapsView {
  return {
    table: capTableName(ctx.id),
    tableKey: ctx.id,
    mapFile: absolutePath(ctx.configDir, HAPROXY_FILES.capsMap),
    connections: { key: connectionCapKey(ctx.id), fallback: ctx.maxConnections },
    requests: http ? { key: rateCapKey(ctx.id), fallback: ctx.requestsPerSecond } : null,
  };
}

function allowlist(field: string, ranges: readonly string[]): string[] {
  const guarded = ranges.map((r, i) => safe('cidr', `${field}.allowlist[${i}]`, r));
  return [...new Set(guarded)].sort();
}

/** Lower priority first, then name: the order `use_backend` rules are tried in. */
function sortRoutes(routes: readonly Route[]): Route[] {
  return [...routes].sort((a, b) => a.priority - b.priority || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

interface RouteView {
  readonly name: string;
  readonly backend: string;
  readonly condition: string;
  readonly acls: { readonly name: string; readonly criterion: string }[];
}

function routeView(field: string, route: Route, plans: readonly BackendPlan[]): RouteView {
  const at = `${field}.${route.name}`;
  safeInt(`${at}.priority`, route.priority, 0, 10_000);
  const prefix = `r_${route.name}`;
  const acls: { name: string; criterion: string }[] = [];
  const { host, pathPrefix, header } = route.match;
  if (host !== undefined) acls.push(...hostAcls(prefix, safe('host', `${at}.match.host`, host)));
  if (pathPrefix !== undefined) {
    // Two lines under one ACL name are ORed: the prefix itself, or anything below it.
    const { exact, under } = segmentPrefix(safe('path', `${at}.match.pathPrefix`, pathPrefix));
    if (exact !== null) acls.push({ name: `${prefix}_path`, criterion: `path -m str -- ${exact}` });
    acls.push({ name: `${prefix}_path`, criterion: `path -m beg -- ${under}` });
  }
  if (header !== undefined) {
    const name = safe('headerName', `${at}.match.header.name`, header.name);
    acls.push({
      name: `${prefix}_header`,
      criterion: `req.hdr(${name}) -m str -- ${safe('headerValue', `${at}.match.header.value`, header.value)}`,
    });
  }
  if (acls.length === 0) {
    const message = 'a route must match on at least one of host, pathPrefix, header';
    throw new ValidationError(`${at}: ${message}`, [{ path: at, message }]);
  }
  return {
    name: route.name,
    backend: backendFor(plans, route.pool, 'http'),
    condition: [...new Set(acls.map((a) => a.name))].join(' '),
    acls,
  };
}

/**
 * Every pattern follows `--`, so a value starting with `-` (a header value may) is never read as
 * an ACL option. Host patterns compare the Host header lower-cased and without its port. `*.example.com` matches
 * exactly one non-empty leading label: everything after the first dot must equal `example.com`.
 */
function hostAcls(prefix: string, host: string): { name: string; criterion: string }[] {
  if (!host.startsWith('*.'))
    return [{ name: `${prefix}_host`, criterion: `${BARE_HOST} -m str -- ${withTrailingDot([host]).join(' ')}` }];
  return [
    {
      name: `${prefix}_host`,
      criterion: `${BARE_HOST},field(2,.,0) -m str -- ${withTrailingDot([host.slice(2)]).join(' ')}`,
    },
    { name: `${prefix}_label`, criterion: `${BARE_HOST},field(1,.) -m len gt 0` },
  ];
}

/** The VIP's names as `sy_known_host` criteria, a few per line; null when it answers any Host. */
function knownHostsView(field: string, vip: VipSnapshot): HaproxyFrontendView['knownHosts'] {
  const hosts = knownHosts(vip);
  if (hosts === null) return null;
  const exact = withTrailingDot(hosts.exact.map((h) => safe('host', `${field}.hostnames`, h)));
  const wildcards = hosts.wildcards.map((h) =>
    wildcardHostRegex(safe('host', `${field}.hostnames`, h), { trailingDot: true }),
  );
  return {
    status: UNKNOWN_HOST_STATUS,
    criteria: [
      ...chunk(exact, HOSTS_PER_LINE).map((names) => `${BARE_HOST} -m str -- ${names.join(' ')}`),
      ...chunk(wildcards, HOSTS_PER_LINE).map((regexes) => `${BARE_HOST} -m reg -- ${regexes.join(' ')}`),
    ],
  };
}

function chunk<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
