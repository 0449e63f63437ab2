import { createHash } from 'node:crypto';
import type { ProxyOwner } from '../domain/stats.js';

/**
 * Stable names and file locations of everything the HAProxy renderer produces. Slugs never hold
 * `_`, so joining them with `_` cannot make two objects share a name; internal objects start with
 * `sy_`, a prefix no tenant object can produce. The runtime planner formats its commands
 * (`set server be_t_p/m weight`, `set map`, `set maxconn frontend`) from the same functions.
 */

/** Files relative to the node's configDir (shared with the agent, hence in domain). */
export { HAPROXY_FILES } from '../domain/config-files.js';

export const certificateFile = (tenant: string, cert: string): string => `certs/${tenant}/${cert}.pem`;
/** A pool's TLS material: the CA bundle it trusts, and the client certificate (chain then key) it shows. */
export const memberCaFile = (tenant: string, bundle: string): string => `member-tls/${tenant}/ca/${bundle}.pem`;
export const memberClientCertFile = (tenant: string, cert: string): string => `member-tls/${tenant}/client/${cert}.pem`;
export const crtListFile = (tenant: string, vip: string): string => `crt-lists/${tenant}/${vip}.crt-list`;

/**
 * The persistence cookie's value for a member: opaque (a client never learns member names, as with
 * NGINX's hashed cookie) and stable across renders and reloads, so sessions keep their member.
 * 64 bits of SHA-256 over tenant, pool and member: unkeyed, so it hides names, not a guess of
 * all three.
 */
export const memberCookieValue = (tenant: string, pool: string, member: string): string =>
  createHash('sha256').update(`switchyard-cookie/${tenant}/${pool}/${member}`).digest('hex').slice(0, 16);

export const frontendName = (tenant: string, vip: string): string => `fe_${tenant}_${vip}`;
/** The tenant's stick table: its current connections and its admitted-request rate on this node. */
export const capTableName = (tenant: string): string => `st_${tenant}`;

/**
 * Keys of the tenant's caps in the caps map: the request-rate cap under the tenant id, the
 * connection cap under `<tenant>.conn` (a slug holds no `.`, so the keys cannot collide).
 */
export const rateCapKey = (tenant: string): string => tenant;
export const connectionCapKey = (tenant: string): string => `${tenant}.conn`;

/** The tenant whose connection cap a caps-map key holds, or null for any other key. */
export function connectionCapOwner(key: string): string | null {
  return key.endsWith('.conn') && key.length > 5 ? key.slice(0, -5) : null;
}

/**
 * `be_<tenant>_<pool>`; a pool that both HTTP and TCP VIPs use gets a second, TCP-mode backend
 * `be_<tenant>_<pool>_tcp` (an HTTP frontend cannot use a TCP backend, and a TCP frontend would
 * upgrade to HTTP on an HTTP one).
 */
export const backendName = (tenant: string, pool: string, tcpTwin = false): string =>
  tcpTwin ? `be_${tenant}_${pool}_tcp` : `be_${tenant}_${pool}`;

/**
 * The inverse of frontendName and backendName: whose a proxy in `show stat` is. Slugs hold no
 * `_`, so the split is unambiguous; internal (`sy_*`) and unknown proxies give null.
 */
export function proxyOwner(proxy: string): ProxyOwner | null {
  const parts = proxy.split('_');
  if (parts[0] === 'fe' && parts.length === 3 && parts[1] && parts[2])
    return { kind: 'frontend', tenant: parts[1], vip: parts[2] };
  if (parts[0] === 'be' && (parts.length === 3 || (parts.length === 4 && parts[3] === 'tcp')) && parts[1] && parts[2]) {
    return { kind: 'backend', tenant: parts[1], pool: parts[2] };
  }
  return null;
}

/** Where a VIP without a default pool sends what no route matched: a clean 503 or a closed connection. */
export const UNROUTED_BACKENDS = { http: 'sy_unrouted_http', tcp: 'sy_unrouted_tcp' } as const;

/** The mTLS listeners in front of the node's unix sockets (internal: `sy_`, never a tenant's name). */
export const RUNTIME_LISTENERS = { runtimeApi: 'sy_runtime_api', masterCli: 'sy_master_cli' } as const;

export function absolutePath(configDir: string, relative: string): string {
  return configDir.endsWith('/') ? `${configDir}${relative}` : `${configDir}/${relative}`;
}

export function formatEndpoint(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

const UNITS = [
  ['h', 3_600_000],
  ['m', 60_000],
  ['s', 1000],
] as const;

/** HAProxy time in the largest unit that divides it exactly: `30s`, `1h`, `2500ms`. */
export function formatDuration(ms: number): string {
  for (const [unit, size] of UNITS) if (ms % size === 0) return `${ms / size}${unit}`;
  return `${ms}ms`;
}
