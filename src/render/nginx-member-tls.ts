import type { PoolSnapshot } from '../domain/snapshot.js';
import { safe } from './guard.js';
import type { TenantContext } from './haproxy-tenant-context.js';
import { guardMemberTls } from './member-tls.js';
import { absolutePath, memberCaFile, memberClientCertFile, memberClientKeyFile } from './nginx-names.js';

/**
 * `proxy_ssl_*` for one pool's TLS members. NGINX checks the member's certificate against
 * `proxy_ssl_name` (its SNI), so `verify: required` always has one (the API insists).
 */
export interface NginxMemberTlsView {
  readonly verify: boolean;
  /** `proxy_ssl_trusted_certificate`: the tenant's bundle, or the system store. Null without verification. */
  readonly trusted: string | null;
  /** `proxy_ssl_name`: a host name or `$host` (the request's Host, without its port); null: no SNI. */
  readonly serverName: string | null;
  readonly certificate: { readonly crt: string; readonly key: string } | null;
  readonly protocols: string;
  /** Chains up to this depth verify, as HAProxy (OpenSSL's default) verifies them; NGINX's default is 1. */
  readonly verifyDepth: number;
  /**
   * False with the SNI from the Host: NGINX keeps one TLS session per peer whatever the name, so
   * each request negotiates afresh (and its upstream keeps no idle connections: see nginx-upstream-view.ts).
   */
  readonly sessionReuse: boolean;
}

/**
 * Debian's (and Ubuntu's) system CA store, from the ca-certificates package. NGINX needs a file;
 * HAProxy's `@system-ca` reads the same store.
 */
export const SYSTEM_CA_FILE = '/etc/ssl/certs/ca-certificates.crt';
const PROTOCOLS = 'TLSv1.2 TLSv1.3';
const VERIFY_DEPTH = 9;

export function memberTlsView(ctx: TenantContext, pool: PoolSnapshot): NginxMemberTlsView | null {
  const field = `${ctx.field}.pools.${pool.name}`;
  const tls = guardMemberTls(field, pool);
  if (tls === null) return null;
  const file = (relative: string) => safe('file', `${field}.tls`, absolutePath(ctx.configDir, relative));
  const verify = tls.verify === 'required';
  return {
    verify,
    trusted: !verify ? null : tls.caBundle === null ? SYSTEM_CA_FILE : file(memberCaFile(ctx.id, tls.caBundle)),
    serverName: tls.sni === null ? null : tls.sni.from === 'host' ? '$host' : tls.sni.name,
    certificate:
      tls.clientCertificate === null
        ? null
        : {
            crt: file(memberClientCertFile(ctx.id, tls.clientCertificate)),
            key: file(memberClientKeyFile(ctx.id, tls.clientCertificate)),
          },
    protocols: PROTOCOLS,
    verifyDepth: VERIFY_DEPTH,
    sessionReuse: tls.sni?.from !== 'host',
  };
}
