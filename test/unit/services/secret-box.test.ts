import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { SecretBox, SecretBoxError } from '../../../src/services/secret-box.js';

const PEM =
  '-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----\n';

describe('SecretBox', () => {
  const box = new SecretBox(randomBytes(32));

  it('opens what it sealed', () => {
    expect(box.open(box.seal(PEM, 'certificate:a/web'), 'certificate:a/web')).toBe(PEM);
  });

  it('writes the versioned format with a 12-byte IV and a 16-byte tag, and no plaintext', () => {
    const sealed = box.seal(PEM);
    const [version, iv, tag, ciphertext] = sealed.split(':');
    expect(version).toBe('v1');
    expect(Buffer.from(iv!, 'base64')).toHaveLength(12);
    expect(Buffer.from(tag!, 'base64')).toHaveLength(16);
    expect(Buffer.from(ciphertext!, 'base64')).toHaveLength(Buffer.byteLength(PEM));
    expect(sealed).not.toContain('PRIVATE KEY');
  });

  it('uses a fresh IV each time, so equal secrets do not give equal ciphertexts', () => {
    expect(box.seal(PEM)).not.toBe(box.seal(PEM));
  });

  it('when the key is wrong, then opening fails loudly and names the setting to check', () => {
    const sealed = box.seal(PEM);
    const other = new SecretBox(randomBytes(32));
    expect(() => other.open(sealed)).toThrow(SecretBoxError);
    expect(() => other.open(sealed)).toThrow(/SWITCHYARD_SECRET_KEY/);
  });

  it('when a sealed value is moved to another context (another row), then it does not open', () => {
    const sealed = box.seal(PEM, 'certificate:a/web');
    expect(() => box.open(sealed, 'certificate:b/web')).toThrow(SecretBoxError);
  });

  it('when the ciphertext or tag was altered, then it does not open', () => {
    const [v, iv, tag, ct] = box.seal(PEM).split(':') as [string, string, string, string];
    const flipped = Buffer.from(ct, 'base64');
    flipped[0] = flipped[0]! ^ 1;
    expect(() => box.open([v, iv, tag, flipped.toString('base64')].join(':'))).toThrow(SecretBoxError);
    const badTag = Buffer.from(tag, 'base64');
    badTag[0] = badTag[0]! ^ 1;
    expect(() => box.open([v, iv, badTag.toString('base64'), ct].join(':'))).toThrow(SecretBoxError);
  });

  it('refuses unknown versions and malformed text with a clear error', () => {
    expect(() => box.open('v2:a:b:c')).toThrow(/unknown format "v2"/);
    expect(() => box.open('v1:only-three:parts')).toThrow(/v1:<iv>:<tag>:<ciphertext>/);
    expect(() => box.open('v1:AAAA:AAAA:AAAA')).toThrow(/wrong length/);
    expect(() => box.open('plaintext -----BEGIN PRIVATE KEY-----')).toThrow(SecretBoxError);
  });

  it('refuses a key that is not 32 bytes when it is built', () => {
    expect(() => new SecretBox(randomBytes(16))).toThrow(/must be 32 bytes \(got 16\)/);
  });
});
