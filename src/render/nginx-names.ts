/**
 * Stable names and file locations of everything the NGINX renderer produces.
 *
 * Upstreams and shared-memory zones may hold `-`, so they join slugs with `_` (which a slug never
 * holds): `t_<tenant>_<pool>` cannot collide. NGINX variables allow only `[a-z0-9_]`, so they go
 * through `variableName`, an injective encoding, and start with `sy_` (no built-in variable does).
 */

/** Files relative to the node's configDir (shared with the agent, hence in domain). */
export { NGINX_FILES } from '../domain/config-files.js';

/** Temporary-file directories nginx creates itself (it makes only the last path component). */
export const NGINX_TEMP_DIRS = {
  clientBody: 'temp-client-body',
  proxy: 'temp-proxy',
  fastcgi: 'temp-fastcgi',
  uwsgi: 'temp-uwsgi',
  scgi: 'temp-scgi',
} as const;

export const certificateFile = (tenant: string, cert: string): string => `certs/${tenant}/${cert}.crt`;
/** A pool's TLS material: the CA bundle it trusts, and the client certificate and key it shows. */
export const memberCaFile = (tenant: string, bundle: string): string => `member-tls/${tenant}/ca/${bundle}.pem`;
export const memberClientCertFile = (tenant: string, cert: string): string => `member-tls/${tenant}/client/${cert}.crt`;
export const memberClientKeyFile = (tenant: string, cert: string): string => `member-tls/${tenant}/client/${cert}.key`;
export const keyFile = (tenant: string, cert: string): string => `certs/${tenant}/${cert}.key`;

export const upstreamName = (tenant: string, pool: string): string => `t_${tenant}_${pool}`;

/**
 * The upstream a VIP reaches a pool through when its persistence changes the balancing method:
 * `<base>_src` (client address hash) or `<base>_ck_<cookie>` (cookie hash). Upstream names are
 * compared case-insensitively by nginx, as are cookie names, so the cookie is lower-cased.
 */
export const persistentUpstreamName = (base: string, persistence: { cookie: string } | 'source'): string =>
  persistence === 'source' ? `${base}_src` : `${base}_ck_${persistence.cookie.toLowerCase()}`;

/**
 * Node-wide objects; `sy_` is a prefix no tenant object produces. TCP VIPs' connection caps share
 * one zone, keyed by the VIP's own address and port (unique on a node): nginx keeps its
 * shared-memory zones in a list, and one zone per tenant made `nginx -t` take tens of seconds
 * at 10,000 tenants. HTTP caps are the Lua module's (sy_live).
 */
export const NODE_NAMES = {
  tlsSessionCache: 'sy_tls',
  connectionUpgrade: 'sy_connection_upgrade',
  forwardedHost: 'sy_forwarded_host',
  /** The path as sent, without the query: what routes compare (see request-rules.ts). */
  requestPath: 'sy_request_path',
  /** 1 when the path is one the two proxies could read differently: refused. */
  ambiguousPath: 'sy_ambiguous_path',
  streamConnectionZone: 'sy_tcp_conn',
} as const;

const REGULAR_PART = /^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$/;

/**
 * `sy_` + parts joined by `__`. A regular part (a slug without `--` or a trailing `-`) is printed
 * with `-` as `_`, so it holds no `__` and neither starts nor ends with `_`; any other part is `_`
 * plus its hex bytes. Decoding is therefore unambiguous, and two different part lists can never
 * share a variable: `a-b`/`c` and `a`/`b-c` give `sy_a_b__c` and `sy_a__b_c`.
 */
export function variableName(...parts: string[]): string {
  return `sy_${parts.map(encodePart).join('__')}`;
}

function encodePart(part: string): string {
  return REGULAR_PART.test(part) ? part.replace(/-/g, '_') : `_${Buffer.from(part, 'utf8').toString('hex')}`;
}

export function absolutePath(configDir: string, relative: string): string {
  return configDir.endsWith('/') ? `${configDir}${relative}` : `${configDir}/${relative}`;
}

export function formatEndpoint(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

/** NGINX time with millisecond precision: whole seconds as `30s`, anything else in `ms`. */
export function formatMillis(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

/** For directives that take whole seconds only (`fail_timeout`): rounded up, at least `1s`. */
export function formatSeconds(ms: number): string {
  return `${Math.max(1, Math.ceil(ms / 1000))}s`;
}
