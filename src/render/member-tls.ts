import {
  ALPN_PROTOCOLS,
  TLS_VERIFY_MODES,
  inPreferenceOrder,
  type AlpnProtocol,
  type MemberSni,
  type TlsVerify,
} from '../domain/member-tls.js';
import type { CaBundleMaterial } from '../domain/ca-bundle.js';
import type { CertificateMaterial, PoolSnapshot } from '../domain/snapshot.js';
import { safe, safeOneOf, safePem } from './guard.js';
import { byName, type TenantContext } from './haproxy-tenant-context.js';

/** A pool's TLS to members with every value guarded: what both renderers print from. */
export interface GuardedMemberTls {
  readonly verify: TlsVerify;
  /** The tenant's CA bundle, or null: the system store (with `verify: required`). */
  readonly caBundle: string | null;
  readonly sni: MemberSni | null;
  readonly clientCertificate: string | null;
  readonly alpn: readonly AlpnProtocol[];
}

/**
 * The pool's TLS settings, guarded, or null for plain members (also for pools stored before TLS
 * to members existed, which have no `tls` at all).
 */
export function guardMemberTls(field: string, pool: PoolSnapshot): GuardedMemberTls | null {
  const tls = pool.tls ?? null;
  if (tls === null) return null;
  const at = `${field}.tls`;
  const sni = tls.sni === null ? null : guardSni(`${at}.sni`, tls.sni);
  return {
    verify: safeOneOf(`${at}.verify`, tls.verify, TLS_VERIFY_MODES),
    caBundle: tls.caBundle === null ? null : safe('slug', `${at}.caBundle`, tls.caBundle),
    sni,
    clientCertificate:
      tls.clientCertificate === null ? null : safe('slug', `${at}.clientCertificate`, tls.clientCertificate),
    alpn: inPreferenceOrder(tls.alpn.map((p, i) => safeOneOf(`${at}.alpn[${i}]`, p, ALPN_PROTOCOLS))),
  };
}

function guardSni(at: string, sni: MemberSni): MemberSni {
  const from = safeOneOf(`${at}.from`, sni.from, ['fixed', 'host'] as const);
  return from === 'host' ? { from } : { from, name: safe('host', `${at}.name`, (sni as { name: string }).name) };
}

/**
 * The CA bundles and client certificates the tenant's TLS pools use, PEM guarded, each once and
 * sorted: only material a pool uses reaches a node (an unused key is a secret with no purpose there).
 */
export function usedMemberTlsMaterial(ctx: TenantContext): {
  bundles: CaBundleMaterial[];
  clients: CertificateMaterial[];
} {
  const bundles = new Map<string, CaBundleMaterial>();
  const clients = new Map<string, CertificateMaterial>();
  for (const pool of ctx.pools.values()) {
    const tls = guardMemberTls(`${ctx.field}.pools.${pool.name}`, pool);
    if (tls?.caBundle != null && !bundles.has(tls.caBundle)) {
      const b = ctx.caBundles.get(tls.caBundle)!;
      bundles.set(b.name, { name: b.name, pem: safePem(`${ctx.field}.caBundles.${b.name}.pem`, withNewline(b.pem)) });
    }
    if (tls?.clientCertificate != null && !clients.has(tls.clientCertificate)) {
      const c = ctx.certificates.get(tls.clientCertificate)!;
      const field = `${ctx.field}.certificates.${c.name}`;
      clients.set(c.name, {
        ...c,
        chainPem: safePem(`${field}.chainPem`, withNewline(c.chainPem)),
        keyPem: safePem(`${field}.keyPem`, withNewline(c.keyPem)),
      });
    }
  }
  return { bundles: [...bundles.values()].sort(byName), clients: [...clients.values()].sort(byName) };
}

function withNewline(pem: string): string {
  return pem.endsWith('\n') ? pem : `${pem}\n`;
}
