import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { z } from 'zod';
import { hostPattern, slug } from './fields.js';
import { canonicalIp } from './ip.js';

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
  /** DNS names (lower case) and IP addresses (canonical), sorted and unique. */
  readonly sans: string[];
  readonly subject: string;
  readonly issuer: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly fingerprintSha256: string;
}

/** The body is checked separately, so a block with a stray character is reported, not silently skipped. */
const CERT_BLOCK_RE = /-----BEGIN CERTIFICATE-----([^-]*)-----END CERTIFICATE-----/g;
const BEGIN_MARKER = '-----BEGIN CERTIFICATE-----';
const BASE64_BODY_RE = /^[A-Za-z0-9+/=\s]+$/;
const MAX_CHAIN = 10;
/** Key types HAProxy and NGINX both serve. */
const KEY_TYPES = new Set(['rsa', 'ec', 'ed25519']);
/** OpenSSL at security level 2 (the distributions' default) refuses smaller RSA keys, so a proxy would not start. */
const MIN_RSA_BITS = 2048;

/**
 * Parses and checks an uploaded chain and key: every block must be an X.509 certificate, each
 * certificate must be issued by the next one, none may have expired by `now`, and the key must be
 * a private key that matches the leaf. Returns a normalised copy, so stray text around the PEM
 * blocks (comments, shell fragments) can never reach a proxy's certificate file.
 * Throws a CertificateError naming the offending field.
 */
export function parseCertificateBundle(certificate: string, privateKey: string, now: Date): ParsedCertificate {
  const certs = parseChain(certificate);
  checkChainOrder(certs);
  checkNotExpired(certs, now);
  const leaf = certs[0]!;
  const key = parsePrivateKey(privateKey);
  if (!leaf.checkPrivateKey(key)) {
    throw new CertificateError('privateKey', 'does not match the first (leaf) certificate of the chain');
  }
  return {
    chainPem: `${certs.map((c) => c.toString().trim()).join('\n')}\n`,
    keyPem: key.export({ format: 'pem', type: 'pkcs8' }).toString(),
    sans: parseSans(leaf.subjectAltName),
    subject: leaf.subject.replace(/\n/g, ', '),
    issuer: leaf.issuer.replace(/\n/g, ', '),
    notBefore: new Date(leaf.validFrom),
    notAfter: new Date(leaf.validTo),
    fingerprintSha256: leaf.fingerprint256,
  };
}

function parseChain(text: string): X509Certificate[] {
  return parsePemCertificates(text, 'certificate', MAX_CHAIN);
}

/**
 * Every "BEGIN CERTIFICATE" block of `text`, decoded: at least one, at most `max`, each a valid
 * X.509 certificate. Throws a CertificateError naming `field`.
 */
export function parsePemCertificates(text: string, field: CertificateField, max: number): X509Certificate[] {
  const blocks = [...text.matchAll(CERT_BLOCK_RE)];
  if (blocks.length === 0) {
    throw new CertificateError(field, 'must hold at least one PEM "BEGIN CERTIFICATE" block');
  }
  // A block we could not delimit would otherwise vanish, and the proxy would serve an incomplete chain.
  if (text.split(BEGIN_MARKER).length - 1 !== blocks.length) {
    throw new CertificateError(field, 'holds a "BEGIN CERTIFICATE" line without its matching "END CERTIFICATE" line');
  }
  if (blocks.length > max) {
    throw new CertificateError(field, `may hold at most ${max} certificates`);
  }
  return blocks.map((block, i) => {
    const body = block[1]!;
    if (!BASE64_BODY_RE.test(body)) {
      throw new CertificateError(field, `PEM block ${i + 1} holds characters that are not base64`);
    }
    try {
      // Decoding the DER ourselves tolerates CRLF and indentation, and re-encoding drops PEM headers.
      return new X509Certificate(Buffer.from(body.replace(/\s+/g, ''), 'base64'));
    } catch {
      throw new CertificateError(field, `PEM block ${i + 1} is not a valid X.509 certificate`);
    }
  });
}

/** Proxies send the chain as given: out of order or unrelated certificates break clients' verification. */
function checkChainOrder(certs: readonly X509Certificate[]): void {
  for (let i = 1; i < certs.length; i++) {
    const child = certs[i - 1]!;
    const parent = certs[i]!;
    if (!child.checkIssued(parent) || !child.verify(parent.publicKey)) {
      throw new CertificateError(
        'certificate',
        `certificate ${i + 1} of the chain (${oneLine(parent.subject)}) did not issue certificate ${i} (${oneLine(child.subject)}): ` +
          'give the leaf first, then each issuer in order',
      );
    }
  }
}

function checkNotExpired(certs: readonly X509Certificate[], now: Date): void {
  for (const [i, cert] of certs.entries()) {
    const notAfter = new Date(cert.validTo);
    if (notAfter.getTime() <= now.getTime()) {
      const which = i === 0 ? 'the certificate' : `certificate ${i + 1} of the chain (${oneLine(cert.subject)})`;
      throw new CertificateError('certificate', `${which} expired on ${notAfter.toISOString()}`);
    }
  }
}

function parsePrivateKey(text: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: text, format: 'pem' });
  } catch {
    throw new CertificateError('privateKey', 'must be an unencrypted PEM private key (RSA, EC or Ed25519)');
  }
  if (!KEY_TYPES.has(key.asymmetricKeyType ?? '')) {
    throw new CertificateError('privateKey', `is a ${key.asymmetricKeyType} key; use RSA, EC or Ed25519`);
  }
  const bits = key.asymmetricKeyDetails?.modulusLength;
  if (key.asymmetricKeyType === 'rsa' && bits !== undefined && bits < MIN_RSA_BITS) {
    throw new CertificateError(
      'privateKey',
      `is a ${bits}-bit RSA key; proxies refuse RSA keys under ${MIN_RSA_BITS} bits`,
    );
  }
  return key;
}

/**
 * SANs reach the renderers (SNI lists), so each must be a plain DNS name or IP literal; anything
 * else (node quotes names with spaces or commas) is refused rather than silently dropped.
 * Other SAN types (email, URI) play no part in TLS serving and are ignored.
 */
function parseSans(text: string | undefined): string[] {
  if (!text) return [];
  const out = new Set<string>();
  for (const entry of text.split(', ')) {
    if (entry.startsWith('DNS:')) out.add(checkDnsSan(entry.slice('DNS:'.length)));
    else if (entry.startsWith('IP Address:')) out.add(checkIpSan(entry.slice('IP Address:'.length)));
  }
  return [...out].sort();
}

function checkDnsSan(name: string): string {
  const parsed = hostPattern.safeParse(name);
  if (!parsed.success) {
    throw new CertificateError(
      'certificate',
      `subject alternative name ${JSON.stringify(name.slice(0, 80))} is not a valid DNS name`,
    );
  }
  return parsed.data;
}

function checkIpSan(text: string): string {
  // node prints IPv6 SANs upper case and uncompressed; the canonical form is what the renderers expect.
  const ip = canonicalIp(text);
  if (ip === null) {
    throw new CertificateError(
      'certificate',
      `subject alternative name ${JSON.stringify(text.slice(0, 80))} is not an IP address`,
    );
  }
  return ip;
}

function oneLine(name: string): string {
  return name.replace(/\n/g, ', ');
}

export type CertificateField = 'certificate' | 'privateKey' | 'certificates';

export class CertificateError extends Error {
  override readonly name = 'CertificateError';
  constructor(
    readonly field: CertificateField,
    message: string,
  ) {
    super(message);
  }
}
