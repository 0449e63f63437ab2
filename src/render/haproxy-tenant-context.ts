import { ValidationError } from '../domain/errors.js';
import type { CaBundleMaterial } from '../domain/ca-bundle.js';
import type { CertificateMaterial, PoolSnapshot, TenantSnapshot, VipSnapshot } from '../domain/snapshot.js';
import { safe, safeInt } from './guard.js';

/** One tenant's objects, sorted and indexed, with the guarded values every view needs. */
export interface TenantContext {
  readonly id: string;
  /** Prefix of field names in guard errors, e.g. `tenant a`. */
  readonly field: string;
  readonly configDir: string;
  readonly vips: readonly VipSnapshot[];
  readonly pools: ReadonlyMap<string, PoolSnapshot>;
  readonly certificates: ReadonlyMap<string, CertificateMaterial>;
  readonly caBundles: ReadonlyMap<string, CaBundleMaterial>;
  /** The tenant's connection cap on this node (all its VIPs together), from the caps map. */
  readonly maxConnections: number;
  readonly requestsPerSecond: number;
  /** Each frontend's `maxconn`: the static ceiling under which the connection cap moves. */
  readonly connectionLimit: number;
}

/**
 * An allocation of zero would lock the tenant out of its own listeners; the floor of one keeps
 * them answering (and the rate limit answering 429) until the rebalancer grants more.
 */
const ALLOCATION_FLOOR = 1;

export function tenantContext(tenant: TenantSnapshot, configDir: string): TenantContext {
  const id = safe('slug', 'tenant.id', tenant.id);
  const field = `tenant ${id}`;
  const vips = uniqueByName([...tenant.vips], `${field}.vips`).sort(byName);
  const pools = new Map(uniqueByName([...tenant.pools], `${field}.pools`).map((p) => [p.name, p]));
  const certificates = new Map(uniqueByName([...tenant.certificates], `${field}.certificates`).map((c) => [c.name, c]));
  const caBundles = new Map(uniqueByName([...(tenant.caBundles ?? [])], `${field}.caBundles`).map((b) => [b.name, b]));
  for (const vip of vips) uniqueByName([...vip.routes], `${field}.vips.${vip.name}.routes`);
  for (const pool of pools.values()) uniqueByName([...pool.members], `${field}.pools.${pool.name}.members`);
  const allocation = tenant.allocation;
  checkReferences(field, vips, pools, certificates);
  checkMemberTlsReferences(field, vips, pools, certificates, caBundles);
  const maxConnections = Math.max(
    ALLOCATION_FLOOR,
    safeInt(`${field}.allocation.maxConnections`, allocation.maxConnections, 0, 10_000_000),
  );
  return {
    id,
    field,
    configDir,
    vips,
    pools,
    certificates,
    caBundles,
    maxConnections,
    requestsPerSecond: Math.max(
      ALLOCATION_FLOOR,
      safeInt(`${field}.allocation.requestsPerSecond`, allocation.requestsPerSecond, 0, 10_000_000),
    ),
    connectionLimit: Math.max(
      maxConnections,
      safeInt(`${field}.allocation.connectionLimit`, allocation.connectionLimit ?? maxConnections, 0, 10_000_000),
    ),
  };
}

/** Guards each name (so it may appear in later error messages) and refuses duplicates. */
export function uniqueByName<T extends { name: string }>(items: T[], field: string): T[] {
  const seen = new Set<string>();
  const nameField = `${field}.name`;
  for (const item of items) {
    const name = safe('slug', nameField, item.name);
    if (seen.has(name))
      throw new ValidationError(`${field}: duplicate name ${name}`, [
        { path: field, message: `duplicate name ${name}` },
      ]);
    seen.add(name);
  }
  return items;
}

/** A VIP or route naming a pool or certificate the tenant does not have cannot be rendered. */
function checkReferences(
  field: string,
  vips: readonly VipSnapshot[],
  pools: ReadonlyMap<string, PoolSnapshot>,
  certificates: ReadonlyMap<string, CertificateMaterial>,
): void {
  const issues: { path: string; message: string }[] = [];
  for (const vip of vips) {
    const at = `${field}.vips.${vip.name}`;
    const poolRefs = [vip.defaultPool, ...vip.routes.map((r) => r.pool)].filter((p): p is string => p !== null);
    for (const pool of poolRefs) {
      if (!pools.has(safe('slug', `${at}.pool`, pool)))
        issues.push({ path: at, message: `pool ${pool} does not exist` });
    }
    if (
      vip.protocol === 'https' &&
      (vip.certificate === null || !certificates.has(safe('slug', `${at}.certificate`, vip.certificate)))
    ) {
      issues.push({
        path: `${at}.certificate`,
        message: `an https VIP needs one of the tenant's certificates (got ${vip.certificate})`,
      });
    }
    if (vip.protocol === 'tcp' && vip.routes.length > 0) {
      issues.push({ path: `${at}.routes`, message: 'routes match HTTP requests: a tcp VIP cannot have them' });
    }
  }
  if (issues.length > 0)
    throw new ValidationError(
      `${field} cannot be rendered: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`,
      issues,
    );
}

/**
 * A TLS pool must name material the tenant has, and serve no tcp VIP (those pass bytes through;
 * see PoolService). The API refuses both; a snapshot that holds them anyway is not rendered.
 */
function checkMemberTlsReferences(
  field: string,
  vips: readonly VipSnapshot[],
  pools: ReadonlyMap<string, PoolSnapshot>,
  certificates: ReadonlyMap<string, CertificateMaterial>,
  caBundles: ReadonlyMap<string, CaBundleMaterial>,
): void {
  const issues: { path: string; message: string }[] = [];
  for (const pool of pools.values()) {
    const tls = pool.tls ?? null;
    if (tls === null) continue;
    const at = `${field}.pools.${pool.name}.tls`;
    if (tls.caBundle !== null && !caBundles.has(safe('slug', `${at}.caBundle`, tls.caBundle))) {
      issues.push({ path: `${at}.caBundle`, message: `CA bundle ${tls.caBundle} does not exist` });
    }
    if (
      tls.clientCertificate !== null &&
      !certificates.has(safe('slug', `${at}.clientCertificate`, tls.clientCertificate))
    ) {
      issues.push({ path: `${at}.clientCertificate`, message: `certificate ${tls.clientCertificate} does not exist` });
    }
  }
  for (const vip of vips) {
    if (vip.protocol === 'tcp' && vip.defaultPool !== null && (pools.get(vip.defaultPool)?.tls ?? null) !== null) {
      issues.push({
        path: `${field}.vips.${vip.name}.defaultPool`,
        message: `pool ${vip.defaultPool} has TLS members; a tcp VIP cannot use it`,
      });
    }
  }
  if (issues.length > 0)
    throw new ValidationError(
      `${field} cannot be rendered: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`,
      issues,
    );
}

export function byName(a: { name: string }, b: { name: string }): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}
