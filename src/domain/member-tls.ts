import { z } from 'zod';
import { hostname, slug } from './fields.js';

/**
 * TLS from the proxy to a pool's members (re-encryption): how the proxy verifies them, the name
 * it sends (SNI) and checks their certificate against, the client certificate it shows them, and
 * the protocols it offers (ALPN).
 */
export const TLS_VERIFY_MODES = ['required', 'none'] as const;
export type TlsVerify = (typeof TLS_VERIFY_MODES)[number];

/**
 * Both proxies can speak HTTP/1.1 to members; HAProxy can also speak HTTP/2 when the member
 * picks `h2`. NGINX 1.22 speaks HTTP/1.1 to members and sends no ALPN, so a list must offer
 * `http/1.1` for the same pool to work on both kinds.
 */
export const ALPN_PROTOCOLS = ['h2', 'http/1.1'] as const;
export type AlpnProtocol = (typeof ALPN_PROTOCOLS)[number];

/** The SNI name: fixed, or the request's Host (without its port), per request. */
export type MemberSni = { readonly from: 'fixed'; readonly name: string } | { readonly from: 'host' };

export interface MemberTls {
  readonly verify: TlsVerify;
  /** The tenant's CA bundle that signs the members' certificates; null: the system store. */
  readonly caBundle: string | null;
  readonly sni: MemberSni | null;
  /** One of the tenant's certificates, shown to members that ask for one (mTLS); or null. */
  readonly clientCertificate: string | null;
  /** Protocols offered, h2 first (preferred when offered); empty: no ALPN (HTTP/1.1). */
  readonly alpn: readonly AlpnProtocol[];
}

const sniSchema = z.discriminatedUnion('from', [
  z.strictObject({ from: z.literal('fixed'), name: hostname }),
  z.strictObject({ from: z.literal('host') }),
]);

export const memberTlsSchema = z
  .strictObject({
    verify: z.enum(TLS_VERIFY_MODES).default('required'),
    caBundle: slug.nullable().default(null),
    sni: sniSchema.nullable().default(null),
    clientCertificate: slug.nullable().default(null),
    alpn: z.array(z.enum(ALPN_PROTOCOLS)).max(ALPN_PROTOCOLS.length).default([]).transform(inPreferenceOrder),
  })
  .superRefine((t, ctx) => {
    if (t.verify === 'none' && t.caBundle !== null) {
      ctx.addIssue({ code: 'custom', path: ['caBundle'], message: 'a CA bundle is only used with verify: required' });
    }
    // NGINX always checks the member's certificate against a name, HAProxy against the SNI: without
    // one, any certificate the CA ever signed would pass (and NGINX would check the upstream's name).
    if (t.verify === 'required' && t.sni === null) {
      ctx.addIssue({
        code: 'custom',
        path: ['sni'],
        message:
          'verify: required checks the member certificate against the SNI name: give sni {"from":"fixed","name":…} or {"from":"host"}, or choose verify: none',
      });
    }
    if (new Set(t.alpn).size !== t.alpn.length)
      ctx.addIssue({ code: 'custom', path: ['alpn'], message: 'protocols must be unique' });
    if (t.alpn.length > 0 && !t.alpn.includes('http/1.1')) {
      ctx.addIssue({
        code: 'custom',
        path: ['alpn'],
        message: 'must offer http/1.1: NGINX speaks HTTP/1.1 to members',
      });
    }
  });

/** ALPN offers are a set: h2 is preferred whenever it is offered, so one order is stored and rendered. */
export function inPreferenceOrder(protocols: readonly AlpnProtocol[]): AlpnProtocol[] {
  return [...protocols].sort((a, b) => ALPN_PROTOCOLS.indexOf(a) - ALPN_PROTOCOLS.indexOf(b));
}

/** The check types a pool may use with and without TLS members, as field issues (paths relative to the pool). */
export function poolTlsIssues(pool: {
  readonly tls: MemberTls | null;
  readonly healthCheck: { readonly type: string } | null;
}): { path: string[]; message: string }[] {
  if (pool.tls === null && pool.healthCheck?.type === 'https') {
    return [
      {
        path: ['healthCheck', 'type'],
        message: 'an https check needs TLS members: set tls on the pool, or use an http or tcp check',
      },
    ];
  }
  return [];
}
