import { X509Certificate } from 'node:crypto';
import type { MemberState } from '../domain/member.js';
import type { DesiredBackend, DesiredRuntime, ServerAdmin } from '../domain/runtime-state.js';
import type { NodeSnapshot } from '../domain/snapshot.js';
import { cookiePersistentPools } from '../domain/structural.js';
import { byName, tenantContext } from './haproxy-tenant-context.js';
import { planBackends, serverCheck, serverWeight } from './haproxy-backend-view.js';
import { HAPROXY_FILES, absolutePath } from './haproxy-names.js';
import { nodeSettings, toHaproxyTenantView } from './haproxy-view.js';

const ADMIN: Record<MemberState, ServerAdmin> = { enabled: 'ready', drain: 'drain', disabled: 'maint' };

/**
 * What a HAProxy process running `renderHaproxy(snapshot)` holds in the parts the Runtime API can
 * change, built by the same view functions as the files, so runtime commands name exactly the
 * frontends, backends, servers, map and certificate files the config has.
 */
export function toHaproxyRuntime(snapshot: NodeSnapshot): DesiredRuntime {
  const { configDir } = nodeSettings(snapshot.node);
  const tenants = [...snapshot.tenants].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const frontends: DesiredRuntime['frontends'][number][] = [];
  const backends: DesiredBackend[] = [];
  const entries: [string, string][] = [];
  const certificates: DesiredRuntime['certificates'][number][] = [];
  let referenced = false;
  for (const tenant of tenants) {
    const view = toHaproxyTenantView(tenant, configDir);
    for (const fe of view.frontends) {
      frontends.push({ name: fe.name, maxconn: fe.maxconn });
      referenced ||= fe.rateLimit !== null;
    }
    entries.push([view.rateLimit.key, String(view.rateLimit.value)]);
    for (const cert of view.certificates) {
      certificates.push({ file: absolutePath(configDir, cert.file), pem: cert.chain + cert.key, fingerprint: leafSha1(cert.chain) });
    }
    const ctx = tenantContext(tenant, configDir);
    const cookiePools = cookiePersistentPools(tenant);
    for (const plan of planBackends(ctx)) {
      const check = plan.pool.healthCheck;
      backends.push({
        name: plan.name,
        tenant: ctx.id,
        pool: plan.pool.name,
        dynamicMembers: !cookiePools.has(plan.pool.name),
        check: check === null ? null : serverCheck(check),
        servers: [...plan.pool.members].sort(byName).map((m) => ({
          name: m.name,
          address: m.address,
          port: m.port,
          weight: serverWeight(m),
          admin: ADMIN[m.state],
          backup: m.backup,
        })),
      });
    }
  }
  return {
    frontends,
    backends,
    rateLimitMap: { file: absolutePath(configDir, HAPROXY_FILES.rateLimitMap), entries, referenced },
    certificates,
  };
}

/** `show ssl cert` prints the leaf's SHA-1 as upper-case hex without separators. */
function leafSha1(chainPem: string): string {
  return new X509Certificate(chainPem).fingerprint.replace(/:/g, '').toUpperCase();
}
