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
  /** The digests end to end (32 bytes each), when the caller keeps them so: encoded by one copy. */
  readonly packed?: Buffer | undefined;
}

/**
 * One file of a chunked version: its segments' digests cut into chunks (see `cutChunks`), each
 * chunk stored as a segment whose text lists its digests (`chunkText`), and named here by digest.
 */
export interface ChunkedFile {
  readonly name: string;
  /** How many segments the chunks list, all told. */
  readonly segments: number;
  readonly chunks: readonly Digest[];
}

/** What a stored manifest names: segments directly (format 1), or chunks of them (format 2). */
export type DecodedManifest =
  | { readonly chunked: false; readonly files: ManifestFile[] }
  | { readonly chunked: true; readonly files: ChunkedFile[] };

const FORMAT = 1;
const CHUNKED_FORMAT = 2;
const MAX_NAME_BYTES = 0xffff;

/**
 * A version's files as bytes: a format byte, the file count (u32), then per file sorted by name
 * its name's length (u16) and UTF-8 bytes, its segment count (u32) and the 32-byte digests.
 * The same files give the same bytes, so their SHA-256 is a content hash.
 */
export function encodeManifest(files: readonly ManifestFile[]): Buffer {
  const sorted = sortedByName(files);
  const names = sorted.map((f) => Buffer.from(f.name, 'utf8'));
  let size = 1 + 4;
  sorted.forEach((f, i) => {
    size += 2 + names[i]!.length + 4 + f.digests.length * DIGEST_BYTES;
  });
  const out = Buffer.allocUnsafe(size);
  let at = out.writeUInt8(FORMAT, 0);
  at = out.writeUInt32BE(sorted.length, at);
  sorted.forEach((f, i) => {
    at = out.writeUInt16BE(names[i]!.length, at);
    at += names[i]!.copy(out, at);
    at = out.writeUInt32BE(f.digests.length, at);
    if (f.packed?.length === f.digests.length * DIGEST_BYTES) at += f.packed.copy(out, at);
    else at += writeDigests(out, at, f.digests);
  });
  return out;
}

/**
 * A chunked version's files as bytes, the same layout as `encodeManifest` with format 2, and per
 * file its segment count (u32), chunk count (u32) and the chunks' 32-byte digests. At 10,000
 * tenants a node's manifest is then about 5 KB instead of 320 KB, and a one-tenant change stores
 * one new chunk of about 2.7 KB: PostgreSQL's cost per build stops growing with the fleet.
 */
export function encodeChunkedManifest(files: readonly ChunkedFile[]): Buffer {
  const sorted = sortedByName(files);
  const names = sorted.map((f) => Buffer.from(f.name, 'utf8'));
  let size = 1 + 4;
  sorted.forEach((f, i) => {
    size += 2 + names[i]!.length + 4 + 4 + f.chunks.length * DIGEST_BYTES;
  });
  const out = Buffer.allocUnsafe(size);
  let at = out.writeUInt8(CHUNKED_FORMAT, 0);
  at = out.writeUInt32BE(sorted.length, at);
  sorted.forEach((f, i) => {
    at = out.writeUInt16BE(names[i]!.length, at);
    at += names[i]!.copy(out, at);
    at = out.writeUInt32BE(f.segments, at);
    at = out.writeUInt32BE(f.chunks.length, at);
    at += writeDigests(out, at, f.chunks);
  });
  return out;
}

/** The files a manifest names (sorted by name), in either format. Throws on bytes that are not a manifest. */
export function decodeManifest(bytes: Uint8Array): DecodedManifest {
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const need = (at: number, n: number) => {
    if (at + n > buf.length) throw new Error(`a config manifest ends early (at byte ${at} of ${buf.length})`);
  };
  need(0, 5);
  const format = buf.readUInt8(0);
  if (format !== FORMAT && format !== CHUNKED_FORMAT)
    throw new Error(`unknown config manifest format ${format} (expected ${FORMAT} or ${CHUNKED_FORMAT})`);
  const count = buf.readUInt32BE(1);
  let at = 5;
  const readDigests = (n: number): Digest[] => {
    need(at, n * DIGEST_BYTES);
    const digests = new Array<Digest>(n);
    for (let s = 0; s < n; s++, at += DIGEST_BYTES) digests[s] = buf.toString('latin1', at, at + DIGEST_BYTES);
    return digests;
  };
  const flat: ManifestFile[] = [];
  const chunked: ChunkedFile[] = [];
  for (let i = 0; i < count; i++) {
    need(at, 2);
    const nameBytes = buf.readUInt16BE(at);
    at += 2;
    need(at, nameBytes + 4);
    const name = buf.toString('utf8', at, at + nameBytes);
    at += nameBytes;
    const segments = buf.readUInt32BE(at);
    at += 4;
    if (format === FORMAT) {
      flat.push({ name, digests: readDigests(segments) });
      continue;
    }
    need(at, 4);
    const chunks = buf.readUInt32BE(at);
    at += 4;
    chunked.push({ name, segments, chunks: readDigests(chunks) });
  }
  if (at !== buf.length) throw new Error(`a config manifest has ${buf.length - at} bytes past its last file`);
  return format === FORMAT ? { chunked: false, files: flat } : { chunked: true, files: chunked };
}

function sortedByName<T extends { readonly name: string }>(files: readonly T[]): T[] {
  const sorted = [...files].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  sorted.forEach((f, i) => {
    if (i > 0 && f.name === sorted[i - 1]!.name)
      throw new Error(`the manifest names file ${JSON.stringify(f.name)} twice`);
    if (Buffer.byteLength(f.name, 'utf8') > MAX_NAME_BYTES)
      throw new Error(`file name too long for a manifest: ${f.name.slice(0, 80)}…`);
  });
  return sorted;
}

/** Writes the digests in one go (10,000 writes of 32 bytes cost a build milliseconds); answers the bytes written. */
function writeDigests(out: Buffer, at: number, digests: readonly Digest[]): number {
  const joined = digests.join('');
  if (joined.length !== digests.length * DIGEST_BYTES || digests.some((d) => d.length !== DIGEST_BYTES)) {
    throw new Error(`a manifest digest must be ${DIGEST_BYTES} bytes as a latin1 string`);
  }
  return out.write(joined, at, joined.length, 'latin1');
}

/** Chunks hold this many entries on average (a boundary follows 1 entry in 64) and at most `MAX_CHUNK`. */
const CHUNK_MASK = 63;
const MAX_CHUNK = 512;

/**
 * Cuts a list into chunks at content-defined boundaries: a chunk ends after an entry whose own
 * bits say so (or at `MAX_CHUNK` entries). Inserting, removing or changing one entry then changes
 * only the chunk that holds it (and, rarely, merges it with the next), wherever it is in the list:
 * a one-tenant change stores one new chunk, not every chunk after the change.
 */
export function cutChunks<T>(entries: readonly T[], bits: (entry: T) => number): T[][] {
  let start = 0;
  return chunkEnds(entries, bits).map((end) => entries.slice(start, (start = end)));
}

/** Where `cutChunks` ends each chunk: the index past its last entry, ascending. */
export function chunkEnds<T>(entries: readonly T[], bits: (entry: T) => number): number[] {
  const ends: number[] = [];
  let start = 0;
  for (let i = 0; i < entries.length; i++) {
    if ((bits(entries[i]!) & CHUNK_MASK) === 0 || i + 1 - start === MAX_CHUNK) ends.push((start = i + 1));
  }
  if (start < entries.length) ends.push(entries.length);
  return ends;
}

/** A digest's boundary bits: its first byte (digests are uniformly random). */
export const digestBits = (d: Digest): number => d.charCodeAt(0);

/** The text of a chunk of segment digests (base64 of the digests in order), stored as a segment itself. */
export function chunkText(digests: readonly Digest[]): string {
  return Buffer.from(digests.join(''), 'latin1').toString('base64');
}

/** The digests a chunk's text lists. Throws on text that is not a chunk. */
export function chunkDigests(text: string): Digest[] {
  const bytes = Buffer.from(text, 'base64');
  if (bytes.length % DIGEST_BYTES !== 0 || bytes.length === 0)
    throw new Error(`a config manifest chunk holds ${bytes.length} bytes, not whole digests`);
  const out: Digest[] = [];
  for (let at = 0; at < bytes.length; at += DIGEST_BYTES) out.push(bytes.toString('latin1', at, at + DIGEST_BYTES));
  return out;
}

/** A structural part's boundary bits: FNV-1a of its label, so a changed hash never moves a boundary. */
export function labelBits(label: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < label.length; i++) h = Math.imul(h ^ label.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** The text of a chunk of structural parts: their [label, hash] pairs in order, as JSON. */
export function partsChunkText(parts: readonly (readonly [string, string])[]): string {
  return JSON.stringify(parts);
}

/** The [label, hash] pairs a chunk of structural parts holds. Throws on text that is not one. */
export function chunkParts(text: string): [string, string][] {
  const parsed: unknown = JSON.parse(text);
  if (
    !Array.isArray(parsed) ||
    !parsed.every((p) => Array.isArray(p) && p.length === 2 && typeof p[0] === 'string' && typeof p[1] === 'string')
  ) {
    throw new Error('a structural parts chunk is not a list of [label, hash] pairs');
  }
  return parsed as [string, string][];
}
