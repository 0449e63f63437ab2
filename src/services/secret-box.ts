import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

const VERSION = 'v1';
const ALGORITHM = 'aes-256-gcm';
const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const B64_RE = /^[A-Za-z0-9+/]*={0,2}$/;

/** Decryption failed: the key is not the one that sealed the value, or the value was altered. */
export class SecretBoxError extends Error {
  override readonly name = 'SecretBoxError';
}

/**
 * Encrypts secrets at rest (private keys) with AES-256-GCM under one 32-byte key.
 * Sealed text is `v1:<iv b64>:<tag b64>:<ciphertext b64>`; the version leaves room to rotate the
 * algorithm or key later. `context` is bound as associated data, so a sealed value copied into
 * another row (another tenant's certificate) fails to open instead of serving the wrong key.
 */
export class SecretBox {
  private readonly key: Buffer;

  constructor(key: Buffer) {
    if (key.length !== KEY_BYTES) {
      throw new Error(
        `the secret key must be ${KEY_BYTES} bytes (got ${key.length}); create one with: openssl rand -base64 32`,
      );
    }
    this.key = Buffer.from(key);
  }

  seal(plaintext: string, context = ''): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv(ALGORITHM, this.key, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(Buffer.from(context, 'utf8'));
    const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    const b64 = (b: Buffer): string => b.toString('base64');
    return `${VERSION}:${b64(iv)}:${b64(cipher.getAuthTag())}:${b64(ciphertext)}`;
  }

  /** Throws SecretBoxError when the text is malformed, sealed under another key or another context. */
  open(sealed: string, context = ''): string {
    const { iv, tag, ciphertext } = unpack(sealed);
    const decipher = createDecipheriv(ALGORITHM, this.key, iv, { authTagLength: TAG_BYTES });
    decipher.setAAD(Buffer.from(context, 'utf8'));
    decipher.setAuthTag(tag);
    try {
      return Buffer.concat([decipher.update(ciphertext), decipher.final()]).toString('utf8');
    } catch (cause) {
      throw new SecretBoxError(
        'cannot decrypt a stored secret: SWITCHYARD_SECRET_KEY is not the key it was encrypted with, or the stored value was altered',
        { cause },
      );
    }
  }
}

function unpack(sealed: string): { iv: Buffer; tag: Buffer; ciphertext: Buffer } {
  const parts = sealed.split(':');
  if (parts[0] !== VERSION) {
    throw new SecretBoxError(
      `cannot decrypt a stored secret: unknown format ${JSON.stringify(parts[0]?.slice(0, 8))} (expected ${VERSION})`,
    );
  }
  if (parts.length !== 4 || !parts.slice(1).every((p) => B64_RE.test(p))) {
    throw new SecretBoxError(`cannot decrypt a stored secret: it is not ${VERSION}:<iv>:<tag>:<ciphertext> in base64`);
  }
  const [iv, tag, ciphertext] = parts.slice(1).map((p) => Buffer.from(p, 'base64')) as [Buffer, Buffer, Buffer];
  if (iv.length !== IV_BYTES || tag.length !== TAG_BYTES) {
    throw new SecretBoxError(`cannot decrypt a stored secret: its IV or authentication tag has the wrong length`);
  }
  return { iv, tag, ciphertext };
}
