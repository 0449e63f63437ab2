import { ALPN_PROTOCOLS, TLS_VERIFY_MODES, inPreferenceOrder, type AlpnProtocol, type MemberSni, type TlsVerify } from '../domain/member-tls.js';
import type { PoolSnapshot } from '../domain/snapshot.js';
import { safe, safeOneOf } from './guard.js';

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
    clientCertificate: tls.clientCertificate === null ? null : safe('slug', `${at}.clientCertificate`, tls.clientCertificate),
    alpn: inPreferenceOrder(tls.alpn.map((p, i) => safeOneOf(`${at}.alpn[${i}]`, p, ALPN_PROTOCOLS))),
  };
}

function guardSni(at: string, sni: MemberSni): MemberSni {
  const from = safeOneOf(`${at}.from`, sni.from, ['fixed', 'host'] as const);
  return from === 'host' ? { from } : { from, name: safe('host', `${at}.name`, (sni as { name: string }).name) };
}
