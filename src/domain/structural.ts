import { createHash } from 'node:crypto';
import type { NodeKind } from './node.js';
import type { NodeSnapshot, PoolSnapshot, TenantSnapshot } from './snapshot.js';

/**
 * Which parts of a node's state the HAProxy Runtime API can change without a reload, and so are
 * left out of the structural fingerprint:
 * - member weight, state (ready / drain / maint) and address:port;
 * - the member set of a pool, when members can be added at runtime (`add server` needs a dynamic
 *   balance algorithm, which every rendered pool has, and refuses `cookie` in 2.6, so pools behind
 *   cookie persistence keep their member names structural);
 * - frontend maxconn and the rate-limit map (the allocation);
 * - certificate contents (`set ssl cert` + `commit ssl cert`), but not which certificates exist.
 * TLS to members is structural, material included: a pool's CA bundle and client certificate
 * are loaded by its server lines, which the Runtime API does not update, so new contents reload.
 * Revisions and timestamps are bookkeeping, never structure. Everything else needs a reload.
 *
 * On an NGINX node with the Lua runtime (kind `nginx`) more is runtime and less is: every HTTP
 * pool's members (set, backup flag, weight, state, address), algorithm and health check live in
 * the runtime state the balancer reads, and so do the tenant's caps; but NGINX loads certificate
 * files only when it starts, so their contents are structural, and TCP VIPs (the stream module has
 * no Lua) keep their pools' members and the tenant's connection cap in nginx.conf.
 */
export function structuralFingerprint(snapshot: NodeSnapshot): unknown {
  return {
    node: snapshot.node,
    tenants: [...snapshot.tenants]
      .sort((a, b) => (a.id < b.id ? -1 : 1))
      .map((t) => structuralTenant(t, snapshot.node.kind)),
  };
}

interface StructuralTenant {
  readonly id: string;
  readonly vips: readonly ({ readonly name: string } & Record<string, unknown>)[];
  readonly pools: readonly unknown[];
  readonly certificates: unknown;
  /** NGINX: the connection cap rendered into the tenant's TCP servers. */
  readonly tcpMaxConnections?: number;
}

/**
 * What the structure of one tenant is read from: a snapshot, or a stored tenant state (whose
 * sealed certificates carry the same names and SANs, so no key is opened to compare structures).
 */
export type StructuralInput = Pick<TenantSnapshot, 'id' | 'vips' | 'pools' | 'caBundles'> & {
  readonly certificates: readonly {
    readonly name: string;
    readonly sans: readonly string[];
    readonly chainPem: string;
  }[];
  /** The tenant's connection cap on the node: structural on NGINX for tenants with TCP VIPs. */
  readonly allocation?: { readonly maxConnections: number };
};

/** One tenant's part of `structuralFingerprint`: equal for two states exactly when a runtime push turns one into the other. */
export function tenantStructure(t: StructuralInput, kind: NodeKind = 'haproxy'): unknown {
  return structuralTenant(t, kind);
}

function structuralTenant(t: StructuralInput, kind: NodeKind): StructuralTenant {
  if (kind === 'nginx') return nginxStructuralTenant(t);
  const cookiePools = cookiePersistentPools(t);
  return {
    id: t.id,
    vips: t.vips.map(structuralVip),
    pools: t.pools.map((p) => structuralPool(p, cookiePools.has(p.name), t)),
    certificates: t.certificates.map((c) => ({ name: c.name, sans: c.sans })),
  };
}

function structuralVip(v: StructuralInput['vips'][number]): StructuralTenant['vips'][number] {
  return {
    name: v.name,
    address: v.address,
    port: v.port,
    protocol: v.protocol,
    hostnames: v.hostnames,
    certificate: v.certificate,
    persistence: v.persistence,
    cookieName: v.cookieName,
    timeouts: v.timeouts,
    allowlist: v.allowlist,
    defaultPool: v.defaultPool,
    routes: v.routes.map((r) => ({ name: r.name, priority: r.priority, match: r.match, pool: r.pool })),
  };
}

/** See structuralFingerprint: what an NGINX node with the Lua runtime must reload for. */
function nginxStructuralTenant(t: StructuralInput): StructuralTenant {
  const tcpPools = new Set<string>();
  for (const v of t.vips) {
    if (v.protocol !== 'tcp') continue;
    if (v.defaultPool) tcpPools.add(v.defaultPool);
    for (const r of v.routes) tcpPools.add(r.pool);
  }
  const tls = (p: PoolSnapshot) => p.tls ?? null;
  return {
    id: t.id,
    vips: t.vips.map(structuralVip),
    pools: t.pools.map((p) => ({
      name: p.name,
      ...(tls(p) !== null && { tls: tls(p), tlsMaterial: memberTlsMaterial(tls(p)!, t) }),
      // In nginx.conf: the stream module balances these itself, from its server lines.
      ...(tcpPools.has(p.name) && { algorithm: p.algorithm, healthCheck: p.healthCheck, members: p.members }),
    })),
    certificates: t.certificates.map((c) => ({ name: c.name, sans: c.sans, chain: digest(c.chainPem) })),
    ...(tcpPools.size > 0 && t.allocation !== undefined && { tcpMaxConnections: t.allocation.maxConnections }),
  };
}

function structuralPool(p: PoolSnapshot, cookiePersistent: boolean, t: StructuralInput): unknown {
  const tls = p.tls ?? null;
  return {
    name: p.name,
    algorithm: p.algorithm,
    healthCheck: p.healthCheck,
    // Left out when plain, so pools stored before TLS to members keep their structure.
    ...(tls !== null && { tls, tlsMaterial: memberTlsMaterial(tls, t) }),
    // Backup is a server keyword `add server` accepts, but a member switching sides is not a
    // runtime change: it stays structural, as does every member of a cookie-persistent pool.
    members: cookiePersistent
      ? p.members.map((m) => ({ name: m.name, backup: m.backup }))
      : p.members.filter((m) => m.backup).map((m) => ({ name: m.name, backup: true })),
  };
}

/** Digests of the CA bundle and client chain a TLS pool loads (the chain fixes the key: it must match the leaf). */
function memberTlsMaterial(
  tls: NonNullable<PoolSnapshot['tls']>,
  t: StructuralInput,
): { caBundle: string | null; clientCertificate: string | null } {
  const bundle = tls.caBundle === null ? undefined : t.caBundles?.find((b) => b.name === tls.caBundle);
  const client =
    tls.clientCertificate === null ? undefined : t.certificates.find((c) => c.name === tls.clientCertificate);
  return {
    caBundle: bundle === undefined ? null : digest(bundle.pem),
    clientCertificate: client === undefined ? null : digest(client.chainPem),
  };
}

function digest(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** Pools reached through a VIP with cookie persistence (as default pool or through a route). */
export function cookiePersistentPools(t: Pick<TenantSnapshot, 'vips'>): Set<string> {
  const out = new Set<string>();
  for (const v of t.vips) {
    if (v.persistence !== 'cookie') continue;
    if (v.defaultPool) out.add(v.defaultPool);
    for (const r of v.routes) out.add(r.pool);
  }
  return out;
}

/**
 * The structural fingerprint cut into labelled parts (node settings; per tenant each VIP, each
 * pool, the set of certificates), so that two config versions can say what needs the reload.
 */
export function structuralParts(snapshot: NodeSnapshot): Record<string, unknown> {
  const parts: Record<string, unknown> = { node: snapshot.node };
  for (const t of snapshot.tenants) Object.assign(parts, tenantStructuralParts(t, snapshot.node.kind));
  return parts;
}

/** One tenant's labelled parts of `structuralParts`. */
export function tenantStructuralParts(t: StructuralInput, kind: NodeKind = 'haproxy'): Record<string, unknown> {
  const parts: Record<string, unknown> = {};
  const s = structuralTenant(t, kind);
  s.vips.forEach((v) => {
    parts[`vip ${t.id}/${v.name}`] = v;
  });
  s.pools.forEach((p, i) => {
    parts[`pool ${t.id}/${t.pools[i]!.name}`] = p;
  });
  parts[`certificates ${t.id}`] = s.certificates;
  if (s.tcpMaxConnections !== undefined) parts[`caps ${t.id}`] = s.tcpMaxConnections;
  return parts;
}

/** The structural part that carries a node's reload generation (see ProxyNode.reloadRequest). */
export const RELOAD_PART = 'reload';

const LABELS: Record<string, (name: string) => string> = {
  node: () => 'node settings',
  vip: (name) => `VIP ${name}`,
  pool: (name) => `pool ${name}`,
  certificates: (tenant) => `certificates of tenant ${tenant}`,
  caps: (tenant) => `connection cap of tenant ${tenant}`,
};

const WHAT_CHANGES: Record<NodeKind, Record<string, string>> = {
  haproxy: {
    node: 'runtime address, capacity (global maxconn) or config directory',
    vip: 'listener, protocol, hostnames, certificate, persistence, timeouts, allowlist or routes',
    pool: 'algorithm, health check, TLS to members (settings, CA bundle, client certificate), backup members, or the member set behind cookie persistence',
    certificates: 'which certificates exist or their names',
  },
  nginx: {
    node: 'runtime address or its certificate, capacity, config directory, or the Lua module',
    vip: 'listener, protocol, hostnames, certificate, persistence, timeouts, allowlist or routes',
    pool: 'TLS to members, or anything of a pool behind a TCP VIP (the stream module balances those itself)',
    certificates: 'which certificates exist, their names or contents (NGINX reads them at start)',
    caps: 'the connection cap of TCP VIPs, which the stream module reads at start',
  },
};

/**
 * Human reasons for a reload, from the per-part hashes of the version a node runs and of the
 * latest one (`structuralParts`, each part hashed by the caller). Sorted by part.
 */
export function describeStructuralChanges(
  running: Readonly<Record<string, string>>,
  latest: Readonly<Record<string, string>>,
  proxy: NodeKind = 'haproxy',
): string[] {
  const reasons: string[] = [];
  for (const part of [...new Set([...Object.keys(running), ...Object.keys(latest)])].sort()) {
    const [kind = '', name = ''] = part.split(' ');
    if (kind === RELOAD_PART) {
      if (running[part] !== latest[part])
        reasons.push(
          'a reload was requested: a cap raise on a full frontend, which HAProxy 2.6 cannot make at runtime',
        );
      continue;
    }
    const label = LABELS[kind]?.(name) ?? part;
    if (!(part in running)) reasons.push(`${label} added`);
    else if (!(part in latest)) reasons.push(`${label} removed`);
    else if (running[part] !== latest[part])
      reasons.push(`${label} changed (${WHAT_CHANGES[proxy][kind] ?? 'structure'})`);
  }
  return reasons;
}
