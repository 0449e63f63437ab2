import { X509Certificate } from 'node:crypto';
import { canonicalIp } from './ip.js';

/**
 * The Runtime API's mutual TLS, as data: who a certificate is for, what it must name, and when it
 * is renewed. Pure: the clock is passed in, and issuing (which runs openssl) lives in src/pki/.
 */

/** What a node presents to the control plane, and the CAs it accepts clients of (PEM). */
export interface RuntimeTlsMaterial {
  /** The node's certificate (leaf) followed by its private key: what `bind ... ssl crt` loads. */
  readonly certificatePem: string;
  readonly keyPem: string;
  /** Every CA the control plane's client certificate may come from: the issuing one first. */
  readonly caBundlePem: string;
}

/** Who a certificate is issued to: a node (server side of the Runtime API) or the control plane (client side). */
export type CertificateUsage = 'server' | 'client';

export interface CertificateSubject {
  readonly commonName: string;
  /** IP addresses the certificate names (subjectAltName IP:...): a node's Runtime API and master CLI hosts. */
  readonly ips: readonly string[];
  /** DNS names it names (subjectAltName DNS:...). */
  readonly dns: readonly string[];
  readonly usage: CertificateUsage;
}

/** The control plane's own client certificate: one per fleet, whichever replica connects. */
export const CONTROL_PLANE_SUBJECT: CertificateSubject = {
  commonName: 'switchyard-control-plane',
  ips: [],
  dns: ['switchyard-control-plane'],
  usage: 'client',
};

/**
 * What a node's certificate names: its name, and the hosts of its Runtime API and master CLI, so
 * the control plane can check it reached the node it meant (the address it dialled is in the
 * certificate) and not merely some node of the fleet.
 */
export function nodeSubject(node: {
  readonly name: string;
  readonly runtimeAddress: { readonly host: string } | null;
  readonly masterAddress: { readonly host: string } | null;
}): CertificateSubject {
  const ips = [
    ...new Set([node.runtimeAddress?.host, node.masterAddress?.host].filter((h): h is string => h !== undefined)),
  ].sort();
  return { commonName: node.name, ips, dns: [node.name], usage: 'server' };
}

/** A stored certificate as far as renewal cares: what it names, its issuer, when it expires. */
export interface IssuedCertificate {
  readonly certificatePem: string;
  /** The id of the CA row that issued it. */
  readonly caId: number;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

/**
 * Why a certificate must be issued again, or null when it is good: missing, issued by a CA that
 * is no longer the issuing one, naming other addresses than the node now has, or within the last
 * third of its lifetime (renewed long before it expires, so a control plane down for a while
 * does not let the fleet's certificates lapse).
 */
export function renewalReason(
  current: IssuedCertificate | null,
  want: CertificateSubject,
  issuingCaId: number,
  now: Date,
): string | null {
  if (current === null) return 'no certificate yet';
  if (current.caId !== issuingCaId) return 'issued by a CA that no longer issues';
  if (!namesExactly(current.certificatePem, want)) return "its names differ from the node's addresses";
  const lifetime = current.notAfter.getTime() - current.notBefore.getTime();
  const renewAt = current.notAfter.getTime() - lifetime / 3;
  if (now.getTime() >= renewAt)
    return `expires ${current.notAfter.toISOString()}: renewed in the last third of its lifetime`;
  return null;
}

/** Whether the certificate's subjectAltNames are exactly the subject's IPs and DNS names. */
function namesExactly(pem: string, want: CertificateSubject): boolean {
  const names = (new X509Certificate(pem).subjectAltName ?? '')
    .split(', ')
    .filter((n) => n !== '')
    .map(canonicalName)
    .sort();
  const expected = [...want.dns.map((d) => `DNS:${d}`), ...want.ips.map((ip) => `IP Address:${ip}`)]
    .map(canonicalName)
    .sort();
  return names.length === expected.length && names.every((n, i) => n === expected[i]);
}

/** OpenSSL prints IPv6 names expanded (`0:0:0:0:0:0:0:1`); both sides compare in one form. */
function canonicalName(name: string): string {
  const ip = /^IP Address:(.+)$/.exec(name)?.[1];
  return ip === undefined ? name.toLowerCase() : `ip:${canonicalIp(ip) ?? ip}`;
}
