import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { z } from 'zod';
import { slug } from './fields.js';

/** A tenant's certificate as the API shows it. The private key is never part of it. */
export interface Certificate {
  readonly name: string;
  readonly sans: readonly string[];
  readonly subject: string;
  readonly issuer: string;
  readonly notBefore: string;
  readonly notAfter: string;
  readonly fingerprintSha256: string;
  readonly revision: number;
  readonly createdAt: string;
  readonly updatedAt: string;
}

const PEM_MAX = 64 * 1024;
const pemText = z.string().min(1).max(PEM_MAX);

export const createCertificateSchema = z.strictObject({
  name: slug,
  certificate: pemText,
  privateKey: pemText,
});
export type CreateCertificate = z.output<typeof createCertificateSchema>;

export const replaceCertificateSchema = z.strictObject({
  certificate: pemText,
  privateKey: pemText,
});

export interface ParsedCertificate {
  /** The chain re-encoded by us, leaf first: only base64 PEM blocks, nothing else survives. */
  readonly chainPem: string;
  readonly keyPem: string;
  readonly sans: string[];
  readonly subject: string;
  readonly issuer: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly fingerprintSha256: string;
}

const CERT_BLOCK_RE = /-----BEGIN CERTIFICATE-----\r?\n([A-Za-z0-9+/=\r\n]+?)-----END CERTIFICATE-----/g;

/**
 * Parses and checks an uploaded chain and key: every block must be an X.509 certificate, the key
 * must be a private key that matches the leaf. Returns a normalised copy, so stray text around
 * the PEM blocks (comments, shell fragments) can never reach a proxy's certificate file.
 * Throws a list of field issues on failure.
 */
export function parseCertificateBundle(certificate: string, privateKey: string): ParsedCertificate {
  const blocks = [...certificate.matchAll(CERT_BLOCK_RE)];
  if (blocks.length === 0) {
    throw new CertificateError('certificate', 'must hold at least one PEM "BEGIN CERTIFICATE" block');
  }
  if (blocks.length > 10) throw new CertificateError('certificate', 'a chain may hold at most 10 certificates');
  const certs: X509Certificate[] = [];
  for (const [i, block] of blocks.entries()) {
    try {
      certs.push(new X509Certificate(block[0]));
    } catch {
      throw new CertificateError('certificate', `PEM block ${i + 1} is not a valid X.509 certificate`);
    }
  }
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: privateKey, format: 'pem' });
  } catch {
    throw new CertificateError('privateKey', 'must be an unencrypted PEM private key (RSA, EC or Ed25519)');
  }
  const leaf = certs[0]!;
  if (!leaf.checkPrivateKey(key)) {
    throw new CertificateError('privateKey', 'does not match the first (leaf) certificate of the chain');
  }
  const keyPem = key.export({ format: 'pem', type: 'pkcs8' }).toString();
  return {
    chainPem: certs.map((c) => c.toString().trim()).join('\n') + '\n',
    keyPem,
    sans: parseSans(leaf.subjectAltName),
    subject: leaf.subject.replace(/\n/g, ', '),
    issuer: leaf.issuer.replace(/\n/g, ', '),
    notBefore: new Date(leaf.validFrom),
    notAfter: new Date(leaf.validTo),
    fingerprintSha256: leaf.fingerprint256,
  };
}

function parseSans(text: string | undefined): string[] {
  if (!text) return [];
  return text
    .split(/,\s*/)
    .map((entry) => {
      const colon = entry.indexOf(':');
      return colon < 0 ? entry : `${entry.slice(0, colon)}:${entry.slice(colon + 1)}`;
    })
    .filter((entry) => entry.startsWith('DNS:') || entry.startsWith('IP Address:'))
    .map((entry) => (entry.startsWith('DNS:') ? entry.slice(4) : entry.slice('IP Address:'.length)))
    .sort();
}

export class CertificateError extends Error {
  override readonly name = 'CertificateError';
  constructor(
    readonly field: 'certificate' | 'privateKey',
    message: string,
  ) {
    super(message);
  }
}
