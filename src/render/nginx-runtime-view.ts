import type { MemberState } from '../domain/member.js';
import type { NginxHealthCheck, NginxPeerAdmin, NginxRuntimeState, NginxUpstream } from '../domain/nginx-runtime.js';
import type { HealthCheck } from '../domain/pool.js';
import type { NodeSnapshot, PoolSnapshot } from '../domain/snapshot.js';
import { upstreamName } from './nginx-names.js';

/*
 * Minimal stand-in written on the nginx-channel branch so the reconciler's NGINX pass compiles and
 * is tested; nginx-render owns this file and its version (persistence variants of a pool's
 * upstream, HTTP-only upstreams, cookie values, exactly the rendered config's names) replaces it.
 */

const ADMIN: Record<MemberState, NginxPeerAdmin> = { enabled: 'ready', drain: 'drain', disabled: 'maint' };

/** The runtime half of an NGINX node's config: one upstream per pool with members, caps per tenant. */
export function toNginxRuntime(snapshot: NodeSnapshot): NginxRuntimeState {
  const upstreams: Record<string, NginxUpstream> = {};
  const caps: Record<string, NginxRuntimeState['caps'][string]> = {};
  for (const tenant of snapshot.tenants) {
    caps[tenant.id] = {
      maxConnections: tenant.allocation.maxConnections,
      requestsPerSecond: tenant.allocation.requestsPerSecond,
    };
    for (const pool of tenant.pools) {
      if (pool.members.length === 0) continue;
      upstreams[upstreamName(tenant.id, pool.name)] = upstream(tenant.id, pool);
    }
  }
  return { revision: snapshot.revision, upstreams, caps };
}

function upstream(tenant: string, pool: PoolSnapshot): NginxUpstream {
  return {
    tenant,
    pool: pool.name,
    algorithm: pool.algorithm,
    cookie: null,
    healthCheck: pool.healthCheck === null ? null : healthCheck(pool.healthCheck),
    peers: [...pool.members]
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
      .map((m) => ({
        name: m.name,
        address: m.address,
        port: m.port,
        weight: m.weight,
        admin: ADMIN[m.state],
        backup: m.backup,
        cookie: null,
      })),
  };
}

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
