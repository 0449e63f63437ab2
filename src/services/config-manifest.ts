/**
 * A segment's digest as a 32-character latin1 string (one character per byte, as `digest('latin1')`
 * and `toString('latin1')` give it): a cheap Map and Set key.
 */
export type Digest = string;

export const DIGEST_BYTES = 32;

/** One file of a version: its name and its segments' digests, in the order they join. */
export interface ManifestFile {
  readonly name: string;
  readonly digests: readonly Digest[];
}

const FORMAT = 1;
const MAX_NAME_BYTES = 0xffff;

/**
 * A version's files as bytes: a format byte, the file count (u32), then per file sorted by name
 * its name's length (u16) and UTF-8 bytes, its segment count (u32) and the 32-byte digests.
 * The same files give the same bytes, so their SHA-256 is a content hash.
 */
export function encodeManifest(files: readonly ManifestFile[]): Buffer {
  const sorted = [...files].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const names = sorted.map((f) => Buffer.from(f.name, 'utf8'));
  let size = 1 + 4;
  sorted.forEach((f, i) => {
    if (i > 0 && f.name === sorted[i - 1]!.name) throw new Error(`the manifest names file ${JSON.stringify(f.name)} twice`);
    if (names[i]!.length > MAX_NAME_BYTES) throw new Error(`file name too long for a manifest: ${f.name.slice(0, 80)}…`);
    size += 2 + names[i]!.length + 4 + f.digests.length * DIGEST_BYTES;
  });
  const out = Buffer.allocUnsafe(size);
  let at = out.writeUInt8(FORMAT, 0);
  at = out.writeUInt32BE(sorted.length, at);
  sorted.forEach((f, i) => {
    at = out.writeUInt16BE(names[i]!.length, at);
    at += names[i]!.copy(out, at);
    at = out.writeUInt32BE(f.digests.length, at);
    // One write of all the digests (10,000 writes of 32 bytes cost a build milliseconds).
    const digests = f.digests.join('');
    if (digests.length !== f.digests.length * DIGEST_BYTES || f.digests.some((d) => d.length !== DIGEST_BYTES)) {
      throw new Error(`a manifest digest must be ${DIGEST_BYTES} bytes as a latin1 string`);
    }
    at += out.write(digests, at, digests.length, 'latin1');
  });
  return out;
}

/** The files a manifest names, in its order (sorted by name). Throws on bytes that are not a manifest. */
export function decodeManifest(bytes: Uint8Array): ManifestFile[] {
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const need = (at: number, n: number) => {
    if (at + n > buf.length) throw new Error(`a config manifest ends early (at byte ${at} of ${buf.length})`);
  };
  need(0, 5);
  if (buf.readUInt8(0) !== FORMAT) throw new Error(`unknown config manifest format ${buf.readUInt8(0)} (expected ${FORMAT})`);
  const count = buf.readUInt32BE(1);
  let at = 5;
  const files: ManifestFile[] = [];
  for (let i = 0; i < count; i++) {
    need(at, 2);
    const nameBytes = buf.readUInt16BE(at);
    at += 2;
    need(at, nameBytes + 4);
    const name = buf.toString('utf8', at, at + nameBytes);
    at += nameBytes;
    const segments = buf.readUInt32BE(at);
    at += 4;
    need(at, segments * DIGEST_BYTES);
    const digests = new Array<Digest>(segments);
    for (let s = 0; s < segments; s++, at += DIGEST_BYTES) digests[s] = buf.toString('latin1', at, at + DIGEST_BYTES);
    files.push({ name, digests });
  }
  if (at !== buf.length) throw new Error(`a config manifest has ${buf.length - at} bytes past its last file`);
  return files;
}
