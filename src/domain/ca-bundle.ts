import { z } from 'zod';
import { CertificateError, parsePemCertificates } from './certificate.js';
import { slug } from './fields.js';

/**
 * A tenant's CA bundle: the certificates a proxy trusts when it verifies the tenant's TLS
 * members. Public material only (no key), so it is stored and rendered as given, re-encoded.
 */
export interface CaBundle {
  readonly name: string;
  readonly certificates: readonly CaBundleEntry[];
  /** The earliest expiry among them: when verification starts failing for chains through it. */
  readonly notAfter: string;
  readonly revision: number;
  readonly createdAt: string;
  readonly updatedAt: string;
}

export interface CaBundleEntry {
  readonly subject: string;
  readonly notAfter: string;
  readonly fingerprintSha256: string;
}

/** A bundle as the renderer needs it. */
export interface CaBundleMaterial {
  readonly name: string;
  readonly pem: string;
}

const BUNDLE_PEM_MAX = 256 * 1024;
const MAX_CERTIFICATES = 100;

export const createCaBundleSchema = z.strictObject({
  name: slug,
  certificates: z.string().min(1).max(BUNDLE_PEM_MAX),
});
export type CreateCaBundle = z.output<typeof createCaBundleSchema>;

export const replaceCaBundleSchema = z.strictObject({
  certificates: z.string().min(1).max(BUNDLE_PEM_MAX),
});

export interface ParsedCaBundle {
  /** Only the re-encoded certificate blocks: text around them never reaches a proxy. */
  readonly pem: string;
  readonly entries: CaBundleEntry[];
  readonly notAfter: Date;
}

/**
 * Parses an uploaded bundle: every block an X.509 certificate, none expired by `now` (a proxy
 * would fail every member whose chain runs through it, silently). Self-signed member
 * certificates may be pinned this way too: OpenSSL trusts a certificate found in the bundle.
 * Throws a CertificateError on the `certificates` field.
 */
export function parseCaBundle(text: string, now: Date): ParsedCaBundle {
  const certs = parsePemCertificates(text, 'certificates', MAX_CERTIFICATES);
  const entries = certs.map((cert, i) => {
    const notAfter = new Date(cert.validTo);
    if (notAfter.getTime() <= now.getTime()) {
      throw new CertificateError(
        'certificates',
        `certificate ${i + 1} (${cert.subject.replace(/\n/g, ', ')}) expired on ${notAfter.toISOString()}`,
      );
    }
    return {
      subject: cert.subject.replace(/\n/g, ', '),
      notAfter: notAfter.toISOString(),
      fingerprintSha256: cert.fingerprint256,
    };
  });
  const fingerprints = new Set(entries.map((e) => e.fingerprintSha256));
  if (fingerprints.size !== entries.length)
    throw new CertificateError('certificates', 'holds the same certificate twice');
  return {
    pem: `${certs.map((c) => c.toString().trim()).join('\n')}\n`,
    entries,
    notAfter: new Date(Math.min(...entries.map((e) => Date.parse(e.notAfter)))),
  };
}
