import { Document, isMap, isScalar, type Pair } from 'yaml';
import type { HealthCheck } from '../domain/pool.js';
import { API_VERSION, TENANT_KIND } from './manifest.js';
import type { TenantState } from './tenant-state.js';

/**
 * A tenant's current state as the manifest `apply` accepts, as plain data. Every value is the
 * server's normalised one, so applying it back plans nothing. Values equal to an absent field's
 * default (null, empty lists) are left out to keep the file short; certificates are not part of
 * it, since their private keys never leave the control plane (see manifestYaml).
 */
export function manifestFromState(state: TenantState): Record<string, unknown> {
  const t = state.tenant;
  if (!t) throw new Error('manifestFromState needs an existing tenant');
  return {
    apiVersion: API_VERSION,
    kind: TENANT_KIND,
    metadata: { name: t.id, ...(Object.keys(t.labels).length > 0 ? { labels: t.labels } : {}) },
    spec: {
      displayName: t.displayName,
      reservation: t.reservation,
      limit: t.limit,
      weight: t.weight,
      pools: state.pools.map((p) => ({
        name: p.name,
        algorithm: p.algorithm,
        ...(p.healthCheck ? { healthCheck: healthCheck(p.healthCheck) } : {}),
        ...(p.tls ? { tls: p.tls } : {}),
        members: p.members.map((m) => ({
          name: m.name,
          address: m.address,
          port: m.port,
          weight: m.weight,
          state: m.state,
          backup: m.backup,
        })),
      })),
      vips: state.vips.map((v) =>
        compact({
          name: v.name,
          ...(v.addressPool !== null ? { addressPool: v.addressPool } : { address: v.address }),
          port: v.port,
          protocol: v.protocol,
          hostnames: v.hostnames,
          certificate: v.certificate,
          persistence: v.persistence,
          cookieName: v.cookieName,
          timeouts: v.timeouts,
          allowlist: v.allowlist,
          defaultPool: v.defaultPool,
          routes: v.routes.map((r) => ({
            name: r.name,
            priority: r.priority,
            match: compact({ ...r.match }),
            pool: r.pool,
          })),
        }),
      ),
    },
  };
}

/**
 * The manifest as YAML, with the certificates as a commented block: the files holding their
 * chains and keys cannot be known here, so the paths are placeholders to fill in. Left commented,
 * `apply` keeps the certificates as they are (and `--prune` would delete them, so uncomment first).
 */
export function manifestYaml(state: TenantState, origin: string): string {
  const doc = new Document(manifestFromState(state));
  const t = state.tenant!;
  doc.commentBefore = [
    ` Tenant ${t.id} as ${origin} serves it (tenant revision ${t.revision}).`,
    ` Re-apply with: switchyard apply -f <this file>`,
  ].join('\n');
  if (state.certificates.length > 0 || state.caBundles.length > 0) {
    const spec = doc.get('spec', true);
    const pools = isMap(spec)
      ? (spec.items as Pair[]).find((p) => isScalar(p.key) && p.key.value === 'pools')
      : undefined;
    if (pools && isScalar(pools.key)) pools.key.commentBefore = certificateComment(state);
  }
  return doc.toString({ lineWidth: 0 });
}

function certificateComment(state: TenantState): string {
  const lines = [
    ' Certificates and CA bundles: private keys never leave the control plane, so the file paths below are',
    ' placeholders. Point them at your PEM files (relative to this file) and uncomment before',
    ' applying with --prune; left commented, apply keeps these certificates as they are.',
    ' certificates:',
  ];
  for (const c of state.certificates) {
    lines.push(
      `   - name: ${c.name}   # SANs ${c.sans.join(', ') || '(none)'}; expires ${c.notAfter}; SHA-256 ${c.fingerprintSha256}`,
    );
    lines.push(`     certificateFile: ${c.name}.crt`);
    lines.push(`     privateKeyFile: ${c.name}.key`);
  }
  // The API answers a bundle's fingerprints, not its PEM: the file is the operator's to point at.
  if (state.caBundles.length > 0) lines.push(' caBundles:');
  for (const b of state.caBundles) {
    lines.push(`   - name: ${b.name}   # ${b.certificates.length} certificate(s); earliest expiry ${b.notAfter}`);
    lines.push(`     certificatesFile: ${b.name}.crt`);
  }
  return lines.join('\n');
}

/** Every field, even those a TCP check ignores, so the round trip cannot reset one to its default. */
function healthCheck(c: HealthCheck): Record<string, unknown> {
  return compact({ ...c });
}

/** Drops null and empty-list members: absent means exactly that to the schemas. */
function compact(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(o).filter(([, v]) => v !== null && v !== undefined && !(Array.isArray(v) && v.length === 0)),
  );
}
