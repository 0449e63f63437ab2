import { X509Certificate } from 'node:crypto';
import type { MemberState } from '../domain/member.js';
import type { DesiredBackend, DesiredRuntime, LeftAlone, ServerAdmin } from '../domain/runtime-state.js';
import type { NodeSnapshot, TenantSnapshot } from '../domain/snapshot.js';
import { cookiePersistentPools } from '../domain/structural.js';
import { byName } from './haproxy-tenant-context.js';
import { serverCheck, serverTls, serverWeight } from './haproxy-backend-view.js';
import { guardMemberTls } from './member-tls.js';
import { HAPROXY_FILES, absolutePath } from './haproxy-names.js';
import { haproxyNodeSettings, haproxyTenantRuntimeParts, runtimeTlsFiles } from './haproxy-view.js';

const ADMIN: Record<MemberState, ServerAdmin> = { enabled: 'ready', drain: 'drain', disabled: 'maint' };

/**
 * What a HAProxy process running `renderHaproxy(snapshot)` holds in the parts the Runtime API can
 * change, built by the same view functions as the files, so runtime commands name exactly the
 * frontends, backends, servers, map and certificate files the config has.
 */
/** Where the caps map of a node with this configDir is: known before any snapshot is. */
export function capsMapFile(configDir: string): string {
  return absolutePath(configDir, HAPROXY_FILES.capsMap);
}

export function toHaproxyRuntime(snapshot: NodeSnapshot, scope?: ReadonlySet<string>): DesiredRuntime {
  const { configDir } = haproxyNodeSettings(snapshot.node);
  // Scoped, the few tenants are picked before sorting: sorting 10,000 ids costs a scoped pass more than its reads.
  const chosen = scope === undefined ? snapshot.tenants : snapshot.tenants.filter((t) => scope.has(t.id));
  const tenants = [...chosen].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const parts = tenants.map((t) => tenantRuntime(t, configDir));
  return {
    frontends: parts.flatMap((p) => p.frontends),
    backends: parts.flatMap((p) => p.backends),
    capsMap: {
      file: capsMapFile(configDir),
      entries: parts.flatMap((p) => p.caps),
      // Whether the running process has the map loaded depends on the whole node, scoped or not.
      referenced:
        scope === undefined
          ? parts.some((p) => p.frontends.length > 0)
          : snapshot.tenants.some((t) => tenantRuntime(t, configDir).frontends.length > 0),
    },
    certificates: [...parts.flatMap((p) => p.certificates), ...nodeCertificate(snapshot)],
    ...(snapshot.unsettled !== undefined &&
      snapshot.unsettled.length > 0 && {
        leftAlone: leftAlone(snapshot.unsettled, configDir),
      }),
  };
}

/** The names unsettled tenants' parts may have on the node, under each state listed (current first). */
function leftAlone(unsettled: readonly TenantSnapshot[], configDir: string): LeftAlone {
  const frontends = new Set<string>();
  const backends = new Map<string, DesiredBackend>();
  const mapKeys = new Set<string>();
  for (const t of unsettled) {
    const part = tenantRuntime(t, configDir);
    for (const f of part.frontends) frontends.add(f.name);
    for (const b of part.backends) if (!backends.has(b.name)) backends.set(b.name, b);
    for (const [key] of part.caps) mapKeys.add(key);
  }
  return { frontends, backends: [...backends.values()], mapKeys };
}

/** What a tenant's runtime part names on a node: what a pass scoped to the tenant reads. */
export interface TenantRuntimeNames {
  readonly frontends: readonly string[];
  readonly backends: readonly string[];
  readonly mapKeys: readonly string[];
  readonly certificateFiles: readonly string[];
}

/** The names of `tenant`'s frontends, backends, caps-map keys and certificate files on a node of `configDir`. */
export function tenantRuntimeNames(tenant: TenantSnapshot, configDir: string): TenantRuntimeNames {
  const part = tenantRuntime(tenant, configDir);
  return {
    frontends: part.frontends.map((f) => f.name),
    backends: part.backends.map((b) => b.name),
    mapKeys: part.caps.map(([key]) => key),
    certificateFiles: part.certificates.map((c) => c.file),
  };
}

/**
 * The node's own Runtime API certificate, when it is rendered: a renewal is swapped in with `set
 * ssl cert` like a tenant's, so the listener presents it to the next handshake without a reload.
 */
function nodeCertificate(snapshot: NodeSnapshot): DesiredRuntime['certificates'][number][] {
  const files = runtimeTlsFiles(snapshot.node);
  const pem = files[HAPROXY_FILES.runtimeCertificate];
  if (pem === undefined) return [];
  const { configDir } = haproxyNodeSettings(snapshot.node);
  return [
    {
      file: absolutePath(configDir, HAPROXY_FILES.runtimeCertificate),
      pem,
      fingerprint: nodeLeafSha1(snapshot.node.runtimeTls!.certificatePem),
    },
  ];
}

/** One tenant's share of the runtime view: it depends on the tenant and the configDir only. */
interface TenantRuntime {
  readonly frontends: readonly DesiredRuntime['frontends'][number][];
  readonly backends: readonly DesiredBackend[];
  readonly caps: readonly (readonly [string, string])[];
  readonly certificates: readonly DesiredRuntime['certificates'][number][];
}

/**
 * Tenant snapshots are immutable and reused while the tenant does not change (ConfigService keeps
 * them per stored state), so each tenant's part is built once per state and configDir: a change
 * to one tenant does not rebuild the views, nor re-read the certificates, of all the others.
 */
const memo = new WeakMap<TenantSnapshot, Map<string, TenantRuntime>>();

function tenantRuntime(tenant: TenantSnapshot, configDir: string): TenantRuntime {
  let byDir = memo.get(tenant);
  if (byDir === undefined) {
    byDir = new Map();
    memo.set(tenant, byDir);
  }
  let part = byDir.get(configDir);
  if (part === undefined) {
    part = buildTenantRuntime(tenant, configDir);
    byDir.set(configDir, part);
  }
  return part;
}

function buildTenantRuntime(tenant: TenantSnapshot, configDir: string): TenantRuntime {
  const { ctx, plans, view } = haproxyTenantRuntimeParts(tenant, configDir);
  const cookiePools = cookiePersistentPools(tenant);
  return {
    frontends: view.frontends.map((fe) => ({ name: fe.name, maxconn: fe.maxconn })),
    caps: view.caps.map((c) => [c.key, String(c.value)] as const),
    certificates: view.certificates.map((cert) => ({
      file: absolutePath(configDir, cert.file),
      pem: cert.chain + cert.key,
      fingerprint: leafSha1(cert.chain),
    })),
    backends: plans.map((plan): DesiredBackend => {
      const check = plan.pool.healthCheck;
      return {
        name: plan.name,
        tenant: ctx.id,
        pool: plan.pool.name,
        dynamicMembers: !cookiePools.has(plan.pool.name),
        check:
          check === null ? null : serverCheck(check, guardMemberTls(`${ctx.field}.pools.${plan.pool.name}`, plan.pool)),
        tls: serverTls(ctx, plan.pool, plan.mode),
        servers: [...plan.pool.members].sort(byName).map((m) => ({
          name: m.name,
          address: m.address,
          port: m.port,
          weight: serverWeight(m),
          admin: ADMIN[m.state],
          backup: m.backup,
        })),
      };
    }),
  };
}

/**
 * The node's certificate is the same PEM pass after pass (until renewed): its fingerprint is
 * parsed once per PEM, not on every pass (an X.509 parse per pass per node otherwise).
 */
const nodeFingerprints = new Map<string, string>();
/** More nodes than this, or renewals piling up: the memo starts over. */
const NODE_FINGERPRINTS_KEPT = 256;
function nodeLeafSha1(pem: string): string {
  let sha1 = nodeFingerprints.get(pem);
  if (sha1 === undefined) {
    if (nodeFingerprints.size >= NODE_FINGERPRINTS_KEPT) nodeFingerprints.clear();
    sha1 = leafSha1(pem);
    nodeFingerprints.set(pem, sha1);
  }
  return sha1;
}

/** `show ssl cert` prints the leaf's SHA-1 as upper-case hex without separators. */
function leafSha1(chainPem: string): string {
  return new X509Certificate(chainPem).fingerprint.replace(/:/g, '').toUpperCase();
}
