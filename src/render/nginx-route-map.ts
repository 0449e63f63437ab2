import { ValidationError } from '../domain/errors.js';
import type { Route } from '../domain/route.js';
import type { VipSnapshot } from '../domain/snapshot.js';
import { UnsafeValueError, safe, safeInt } from './guard.js';
import { NODE_NAMES, variableName } from './nginx-names.js';
import { literalDots as literal, segmentPrefix, wildcardHostRegex } from './request-rules.js';

/**
 * Content routing for one VIP, in priority order. NGINX picks a `location` by the longest or first
 * matching prefix, not by a priority, and cannot AND a host with a header there; so each distinct
 * condition becomes a `map` to `1`/`0`, and one more `map` over the concatenated bits picks the
 * upstream with regexes tried in order of appearance: the first route (lowest priority number,
 * then name) whose bits are all set wins. The key only ever holds `0` and `1`, so nothing a client
 * sends can make one condition's text look like another's.
 */
export interface NginxRouteMapView {
  /** The variable (without `$`) holding the chosen upstream name, empty when nothing routes. */
  readonly variable: string;
  readonly conditions: readonly NginxConditionView[];
  readonly routes: readonly {
    readonly name: string;
    readonly priority: number;
    readonly bits: string;
    readonly upstream: string;
  }[];
  /** The default pool's upstream, or empty. */
  readonly fallback: string;
}

export interface NginxConditionView {
  readonly variable: string;
  /** The request variable tested (without `$`): `host`, the raw path (NODE_NAMES.requestPath) or `http_<header>`. */
  readonly source: string;
  /** A case-sensitive PCRE (printed after `~`). */
  readonly regex: string;
  /** What it tests, for the comment beside it. */
  readonly label: string;
}

/** What every condition regex may consist of: built from guarded values, checked once more. */
const CONDITION_REGEX = /^\^(?:\[\^\.\]\+)?[A-Za-z0-9_~%/:@,=[\].+*-]*(?:\$|\(\/\|\$\))?$/;

export function routeMapView(
  tenant: string,
  field: string,
  vip: VipSnapshot,
  upstreamFor: (pool: string) => string | null,
): NginxRouteMapView {
  const conditions: NginxConditionView[] = [];
  const indexOf = (c: Omit<NginxConditionView, 'variable'>): number => {
    let i = conditions.findIndex((x) => x.source === c.source && x.regex === c.regex);
    if (i < 0) {
      i = conditions.length;
      conditions.push({ ...c, variable: variableName(tenant, vip.name, `c${i}`) });
    }
    return i;
  };
  const sorted = sortRoutes(vip.routes);
  const used = sorted.map((r) => routeConditions(`${field}.routes.${r.name}`, r).map(indexOf));
  return {
    variable: variableName(tenant, vip.name, 'up'),
    conditions,
    routes: sorted.map((r, i) => ({
      name: r.name,
      priority: r.priority,
      bits: conditions.map((_, j) => (used[i]!.includes(j) ? '1' : '.')).join(''),
      upstream: upstreamFor(r.pool) ?? '',
    })),
    fallback: vip.defaultPool === null ? '' : (upstreamFor(vip.defaultPool) ?? ''),
  };
}

/** Lower priority first, then name: the order HAProxy's `use_backend` rules are tried in. */
function sortRoutes(routes: readonly Route[]): Route[] {
  return [...routes].sort((a, b) => a.priority - b.priority || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

function routeConditions(at: string, route: Route): Omit<NginxConditionView, 'variable'>[] {
  safe('slug', `${at}.name`, route.name);
  safeInt(`${at}.priority`, route.priority, 0, 10_000);
  const out: Omit<NginxConditionView, 'variable'>[] = [];
  const { host, pathPrefix, header } = route.match;
  if (host !== undefined) out.push(hostCondition(safe('host', `${at}.match.host`, host)));
  if (pathPrefix !== undefined) {
    const path = safe('path', `${at}.match.pathPrefix`, pathPrefix);
    // The raw path, as HAProxy's `path` (not $uri, which nginx decodes and merges), by whole segments.
    const { exact, under } = segmentPrefix(path);
    const regex = exact === null ? `^${literal(under)}` : `^${literal(exact)}(/|$)`;
    out.push({ source: NODE_NAMES.requestPath, regex: checked(at, regex), label: `path prefix ${path}` });
  }
  if (header !== undefined) {
    const name = safe('headerName', `${at}.match.header.name`, header.name);
    const value = safe('headerValue', `${at}.match.header.value`, header.value);
    const source = `http_${name.toLowerCase().replace(/-/g, '_')}`;
    out.push({ source, regex: checked(at, `^${literal(value)}$`), label: `header ${name} is ${value}` });
  }
  if (out.length === 0) {
    const message = 'a route must match on at least one of host, pathPrefix, header';
    throw new ValidationError(`${at}: ${message}`, [{ path: at, message }]);
  }
  return out;
}

/**
 * `$host` is already lower-case and without a port. `*.example.com` matches exactly one
 * non-empty leading label, like the HAProxy renderer (nginx's own `*.` would match several).
 */
function hostCondition(host: string): Omit<NginxConditionView, 'variable'> {
  const regex = host.startsWith('*.') ? wildcardHostRegex(host) : `^${literal(host)}$`;
  return { source: 'host', regex: checked('host', regex), label: `host ${host}` };
}

function checked(field: string, regex: string): string {
  if (!CONDITION_REGEX.test(regex)) throw new UnsafeValueError(field, regex, 'a route regex built from guarded values');
  return regex;
}
