import { X509Certificate, generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CertificateError, parseCertificateBundle } from '../../../src/domain/certificate.js';

/** Certificates made once by test/fixtures/certs/make-bundle-certs.ts: the unit suite runs no openssl. */
interface Issued {
  readonly cert: string;
  readonly key: string;
}

const read = (file: string) => readFileSync(new URL(`../../fixtures/certs/bundle/${file}`, import.meta.url), 'utf8');
const issued = (name: string): Issued => ({ cert: read(`${name}.crt`), key: read(`${name}.key`) });

const intermediate = { cert: read('intermediate.crt') };
/** RSA leaf signed by the intermediate, with DNS, wildcard and IP SANs. */
const rsaLeaf = issued('rsa-leaf');
/** EC leaf signed by the root. */
const ecLeaf = issued('ec-leaf');
const expired = issued('expired');
/** The instant expiry is judged at: the fixture certificates are valid now (all but `expired`), until 2036. */
const NOW = new Date();

/** Runs `fn`, expecting a CertificateError, and returns it. */
function failure(fn: () => unknown): CertificateError {
  try {
    fn();
  } catch (err) {
    if (err instanceof CertificateError) return err;
    throw err;
  }
  throw new Error('expected a CertificateError');
}

describe('parseCertificateBundle', () => {
  it('returns SANs, subject, issuer, validity and fingerprint of the leaf of a chain with an intermediate', () => {
    const parsed = parseCertificateBundle(rsaLeaf.cert + intermediate.cert, rsaLeaf.key, NOW);
    const leaf = new X509Certificate(rsaLeaf.cert);
    // DNS names lower-cased, IPv6 canonical, email SANs ignored, sorted.
    expect(parsed.sans).toEqual(['*.example.com', '10.0.0.1', '2001:db8::1', 'web.example.com']);
    expect(parsed.subject).toBe('CN=web.example.com');
    expect(parsed.issuer).toBe('CN=Switchyard Test Intermediate');
    expect(parsed.notAfter.toISOString()).toBe(new Date(leaf.validTo).toISOString());
    expect(parsed.notBefore.getTime()).toBeLessThan(Date.now());
    expect(parsed.fingerprintSha256).toBe(leaf.fingerprint256);
    expect(parsed.chainPem.match(/BEGIN CERTIFICATE/g)).toHaveLength(2);
    expect(parsed.keyPem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
  });

  it('accepts an EC key', () => {
    const parsed = parseCertificateBundle(ecLeaf.cert, ecLeaf.key, NOW);
    expect(parsed.sans).toEqual(['api.example.com']);
    expect(parsed.issuer).toBe('CN=Switchyard Test Root');
  });

  it('when stray shell text surrounds the PEM blocks, then none of it survives into the chain or key', () => {
    const clean = parseCertificateBundle(rsaLeaf.cert + intermediate.cert, rsaLeaf.key, NOW);
    const noisy = parseCertificateBundle(
      `$ cat web.crt inter.crt; rm -rf /\n${rsaLeaf.cert}# intermediate below\n${intermediate.cert}\nhaproxy -c ok\n`,
      `export KEY=$(cat <<EOF\n${rsaLeaf.key}EOF\n)`,
      NOW,
    );
    expect(noisy.chainPem).toBe(clean.chainPem);
    expect(noisy.keyPem).toBe(clean.keyPem);
    // Compared line by line, never as substrings: base64 can contain "cat" or "EOF" by chance (it
    // did, with certificates made afresh each run).
    const lines = (pem: string) => new Set(pem.split('\n'));
    for (const stray of ['$ cat web.crt inter.crt; rm -rf /', '# intermediate below', 'haproxy -c ok'])
      expect(lines(noisy.chainPem).has(stray)).toBe(false);
    for (const stray of ['export KEY=$(cat <<EOF', 'EOF', ')']) expect(lines(noisy.keyPem).has(stray)).toBe(false);
    expect(noisy.chainPem).toMatch(
      /^(-----BEGIN CERTIFICATE-----\n([A-Za-z0-9+/=]{1,64}\n)+-----END CERTIFICATE-----\n)+$/,
    );
  });

  it('accepts CRLF line ends and trailing spaces, keeping every block and normalising them away', () => {
    const clean = parseCertificateBundle(rsaLeaf.cert + intermediate.cert, rsaLeaf.key, NOW).chainPem;
    const crlf = parseCertificateBundle(
      (rsaLeaf.cert + intermediate.cert).replace(/\n/g, '\r\n'),
      rsaLeaf.key.replace(/\n/g, '\r\n'),
      NOW,
    );
    expect(crlf.chainPem).toBe(clean);
    const padded = parseCertificateBundle(rsaLeaf.cert + intermediate.cert.replace(/\n/g, '  \n'), rsaLeaf.key, NOW);
    expect(padded.chainPem).toBe(clean);
  });

  it('refuses text without a certificate block, naming the certificate', () => {
    const err = failure(() => parseCertificateBundle('hello', rsaLeaf.key, NOW));
    expect(err.field).toBe('certificate');
    expect(err.message).toMatch(/BEGIN CERTIFICATE/);
  });

  it('refuses a block that is not an X.509 certificate', () => {
    const err = failure(() =>
      parseCertificateBundle('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n', rsaLeaf.key, NOW),
    );
    expect(err.field).toBe('certificate');
    expect(err.message).toMatch(/block 1 is not a valid X\.509 certificate/);
  });

  it('when a block holds a non-base64 character, then it is refused rather than silently dropped', () => {
    const tampered = intermediate.cert.replace(/\n([A-Za-z0-9+/]{10})/, '\n$1;');
    const err = failure(() => parseCertificateBundle(rsaLeaf.cert + tampered, rsaLeaf.key, NOW));
    expect(err.field).toBe('certificate');
    expect(err.message).toMatch(/block 2 holds characters that are not base64/);
  });

  it('when the intermediate lacks its END line, then it is refused rather than silently dropped', () => {
    const truncated = intermediate.cert.replace('-----END CERTIFICATE-----', '');
    const err = failure(() => parseCertificateBundle(rsaLeaf.cert + truncated, rsaLeaf.key, NOW));
    expect(err.field).toBe('certificate');
    expect(err.message).toMatch(/without its matching "END CERTIFICATE"/);
  });

  it('refuses a chain in the wrong order, saying how to order it', () => {
    const err = failure(() => parseCertificateBundle(intermediate.cert + rsaLeaf.cert, rsaLeaf.key, NOW));
    expect(err.field).toBe('certificate');
    expect(err.message).toMatch(/did not issue certificate 1.*leaf first/);
  });

  it('refuses a chain holding an unrelated certificate', () => {
    const err = failure(() => parseCertificateBundle(rsaLeaf.cert + ecLeaf.cert, rsaLeaf.key, NOW));
    expect(err.message).toMatch(/certificate 2 of the chain \(CN=api\.example\.com\) did not issue/);
  });

  it('refuses a key that does not match the leaf, naming the private key', () => {
    const err = failure(() => parseCertificateBundle(ecLeaf.cert, rsaLeaf.key, NOW));
    expect(err.field).toBe('privateKey');
    expect(err.message).toMatch(/does not match/);
  });

  it('refuses text that is not a private key, and an encrypted key', () => {
    expect(failure(() => parseCertificateBundle(ecLeaf.cert, 'not a key', NOW)).field).toBe('privateKey');
    expect(failure(() => parseCertificateBundle(ecLeaf.cert, ecLeaf.cert, NOW)).field).toBe('privateKey');
    const err = failure(() => parseCertificateBundle(ecLeaf.cert, read('ec-leaf.encrypted.key'), NOW));
    expect(err.field).toBe('privateKey');
    expect(err.message).toMatch(/unencrypted/);
  });

  it('refuses RSA keys under 2048 bits and key types proxies do not serve', () => {
    const small = generateKeyPairSync('rsa', { modulusLength: 1024 })
      .privateKey.export({ type: 'pkcs8', format: 'pem' })
      .toString();
    expect(failure(() => parseCertificateBundle(ecLeaf.cert, small, NOW)).message).toMatch(/1024-bit RSA key/);
    const x25519 = generateKeyPairSync('x25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    expect(failure(() => parseCertificateBundle(ecLeaf.cert, x25519, NOW)).message).toMatch(/is a x25519 key/);
  });

  it('refuses an expired certificate, saying when it expired', () => {
    const err = failure(() => parseCertificateBundle(expired.cert, expired.key, NOW));
    expect(err.field).toBe('certificate');
    expect(err.message).toBe('the certificate expired on 2020-02-01T00:00:00.000Z');
  });

  it('judges expiry against the given clock, for the leaf and for every issuer', () => {
    const notAfter = new Date(new X509Certificate(rsaLeaf.cert).validTo);
    const later = new Date(notAfter.getTime() + 1000);
    expect(failure(() => parseCertificateBundle(rsaLeaf.cert, rsaLeaf.key, later)).message).toMatch(
      /^the certificate expired on/,
    );
    // The intermediate expires at the same moment as the leaf here; check it on its own too.
    const interAfter = new Date(new X509Certificate(intermediate.cert).validTo);
    const justBefore = new Date(Math.min(notAfter.getTime(), interAfter.getTime()) - 1000);
    expect(() => parseCertificateBundle(rsaLeaf.cert + intermediate.cert, rsaLeaf.key, justBefore)).not.toThrow();
  });

  it('refuses a SAN that is not a usable DNS name, since SANs reach the proxy configs', () => {
    const odd = issued('odd-san');
    const err = failure(() => parseCertificateBundle(odd.cert, odd.key, NOW));
    expect(err.field).toBe('certificate');
    expect(err.message).toBe('subject alternative name "bad_name.example.com" is not a valid DNS name');
  });
});
