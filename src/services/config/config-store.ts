import { createHash } from 'node:crypto';
import type { Db } from '../../db/connect.js';
import {
  configVersionById,
  insertConfigVersion,
  type HeldTenant,
  type StoredConfigVersion,
} from '../../db/config-repository.js';
import * as segments from '../../db/config-segment-repository.js';
import type { RenderedFiles, SegmentedFiles } from '../../domain/snapshot.js';
import type { Logger } from '../../logger.js';
import {
  chunkDigests,
  chunkEnds,
  chunkParts,
  chunkText,
  cutChunks,
  decodeManifest,
  digestBits,
  encodeChunkedManifest,
  encodeManifest,
  labelBits,
  partsChunkText,
  DIGEST_BYTES,
  type ChunkedFile,
  type DecodedManifest,
  type Digest,
  type ManifestFile,
} from './config-manifest.js';
import { AlignedMemo, mapAligned, type AlignedMap } from '../../util/aligned.js';
import { SecretBox } from '../secret-box.js';
import { SegmentDigests } from './segment-digests.js';

/**
 * Segments that hold a secret are sealed: a private key, or keepalived's VRRP `auth_pass`
 * (sealed in `vrrp_routers` too). Every other segment is stored as plain text: proxy
 * configuration (addresses, hostnames, rules), which the desired-state tables already hold.
 * The format before segments sealed all files, which cost an AES pass over the whole config
 * (10 MB at 10,000 tenants) on every build and every open. Matching any BEGIN line (without its
 * END) seals more rather than less.
 */
const SECRET_RE = /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----|^\s*auth_pass\s/m;

/** Manifests read per query by the sweep. */
const SWEEP_BATCH = 64;

/** Files with fewer segments are digested through the memo alone (a certificate file has one). */
const ALIGNED_MIN_SEGMENTS = 16;

/**
 * Above this many segments that line up with nothing in the previous version, an insert looks
 * them up in a set of everything the previous version references instead of sending them all
 * (a node's first build after a start, a change that moves many tenants).
 */
const MAX_UNCHECKED_SEGMENTS = 256;

/** A node's large file as it was last hashed: its digests by segment, and end to end. */
interface LineageFile {
  readonly memo: AlignedMemo<string, Digest>;
  packed: Buffer;
}

/** One file of the version a node stored last, as the next insert lines its own up against it. */
interface StoredFile {
  readonly digests: readonly Digest[];
  /** Its chunks by the index of their first segment. */
  readonly chunks: ReadonlyMap<number, StoredChunk>;
}

interface StoredChunk {
  /** Index past its last segment. */
  readonly end: number;
  readonly digest: Digest;
}

export interface ConfigStoreOptions {
  /** Versions whose joined files are kept in memory for `open` (each is about a node's config: 10 MB at 10,000 tenants). */
  maxCachedVersions?: number;
  /** Characters of segments per generation of the digest memo (see SegmentDigests); default 64 Mi. */
  maxMemoizedChars?: number;
  logger?: Logger;
}

/**
 * A node's config versions, stored as segments: each distinct segment once (config_segments,
 * keyed by its HMAC digest) and per version a manifest. The manifest names chunks of about 64
 * segment digests, each chunk a segment too (content-defined, see `cutChunks`), and the version's
 * structural parts are chunked the same way. Storing a version after a one-tenant change hashes
 * and stores that tenant's segment, one chunk of digests and one of parts, and a manifest of
 * about 5 KB at 10,000 tenants; unchanged segments are recognised by their string (memoized
 * digests) and by the previous version's references.
 */
export class ConfigStore {
  private readonly box: SecretBox;
  private readonly digests: SegmentDigests;
  private readonly maxCachedVersions: number;
  private readonly logger: Logger | undefined;
  /** Manifests of the files last hashed, by the files object (a build's hash and insert share one). */
  private readonly manifests = new WeakMap<SegmentedFiles, ManifestFile[]>();
  /**
   * Per node, the files of the version this process stored last: the next insert's `previous`,
   * not decoded again, and lined up with the new version so that only the segments and chunks
   * that are new are looked at.
   */
  private readonly lastStored = new Map<
    string,
    { readonly id: number; readonly files: ReadonlyMap<string, StoredFile> }
  >();
  /**
   * Per node and file, the segments it hashed last and their digests: the next build of the node
   * digests only the segments that are not where they were (see `mapAligned`).
   */
  private readonly lineages = new Map<string, Map<string, LineageFile>>();
  /** Joined files per version id, least recently used first; a pending open is shared. */
  private readonly opened = new Map<number, Promise<RenderedFiles>>();

  constructor(
    private readonly db: Db,
    secretKey: Buffer,
    opts: ConfigStoreOptions = {},
  ) {
    this.box = new SecretBox(secretKey);
    this.digests = new SegmentDigests(secretKey, opts.maxMemoizedChars ?? 64 * 1024 * 1024);
    this.maxCachedVersions = opts.maxCachedVersions ?? 8;
    this.logger = opts.logger;
  }

  /**
   * SHA-256 (64 hex) of the version's manifest: the sorted file names and their segments' digests.
   * Equal exactly when the files have equal segments in the same order, so equal files split the
   * same way hash the same; the same bytes split otherwise hash differently. Keyed by the secret
   * key through the digests. An unchanged segment string is never hashed again; given the node
   * the files are for (`lineage`), its segments that are where they were in its last hashed
   * files are not even looked up.
   */
  contentHash(files: SegmentedFiles, lineage?: string): string {
    return createHash('sha256')
      .update(encodeManifest(this.manifestFiles(files, lineage)))
      .digest('hex');
  }

  /**
   * Stores a version inside the caller's transaction (READ COMMITTED, PostgreSQL's default):
   * the segments that `previous` (the node's latest stored version) does not reference, then the
   * row with its manifest. Answers the new row's id. Holds the segments' shared lock until the
   * transaction ends, so a sweep cannot delete a segment this version relies on.
   */
  async insert(
    trx: Db,
    v: {
      nodeName: string;
      revision: number;
      contentHash: string;
      structuralHash: string;
      structuralParts: Readonly<Record<string, string>>;
      files: SegmentedFiles;
      heldTenants: HeldTenant[];
      previous?: StoredConfigVersion | undefined;
    },
  ): Promise<number> {
    const files = this.manifestFiles(v.files, v.nodeName);
    await segments.lockSegmentsForInsert(trx);
    // Its segments are stored as long as it is: checked under the lock, so no sweep comes between.
    const previousStored = v.previous !== undefined && (await segments.configVersionExists(trx, v.previous.id));
    const remembered = this.lastStored.get(v.nodeName);
    const base =
      previousStored && remembered !== undefined && remembered.id === v.previous?.id ? remembered.files : undefined;
    // The new segments and chunks: only those that do not line up with the previous version's.
    const fresh = new Map<Digest, string>();
    const storedFiles = new Map<string, StoredFile>();
    const chunked: ChunkedFile[] = files.map((f) => {
      const texts = v.files[f.name]!;
      const before = base?.get(f.name);
      const { stored, newDigests, newChunks } = this.lineUp(f.digests, before);
      storedFiles.set(f.name, stored);
      for (const i of newDigests) fresh.set(f.digests[i]!, texts[i]!);
      for (const [d, text] of newChunks) fresh.set(d, text);
      return { name: f.name, segments: f.digests.length, chunks: [...stored.chunks.values()].map((c) => c.digest) };
    });
    const structureTexts = new Map<Digest, string>();
    const structure = this.structureChunks(v.structuralParts, structureTexts);
    for (const [d, text] of structureTexts) fresh.set(d, text);
    if (previousStored && (base === undefined || fresh.size > MAX_UNCHECKED_SEGMENTS)) {
      // Much that lines up with nothing: leave out what the previous version references anyway.
      const stored = await this.storedDigests(trx, v.nodeName, v.previous!, base);
      for (const d of stored) fresh.delete(d);
    }
    await segments.insertSegments(
      trx,
      [...fresh].map(([digest, text]) => this.segmentRow(digest, text)),
    );
    const id = await insertConfigVersion(trx, {
      nodeName: v.nodeName,
      revision: v.revision,
      contentHash: v.contentHash,
      structuralHash: v.structuralHash,
      structureChunks: structure.length === 0 ? null : Buffer.from(structure.join(''), 'latin1'),
      manifest: encodeChunkedManifest(chunked),
      fileNames: files.map((f) => f.name),
      heldTenants: v.heldTenants,
    });
    // Remembered before the commit: an id that never commits is never a later insert's `previous`.
    this.lastStored.set(v.nodeName, { id, files: storedFiles });
    return id;
  }

  /**
   * A file's digests lined up with the same file of the previous version (`before`): which of
   * its segments are new there, and its chunks, each reused when it holds the same segments as a
   * chunk of `before` at the same place, else made anew (the new ones answered with their texts).
   * Chunk boundaries depend on the segments alone (`cutChunks`), so a one-segment change cuts
   * every chunk but the one that holds it exactly as before.
   */
  private lineUp(
    digests: readonly Digest[],
    before: StoredFile | undefined,
  ): { stored: StoredFile; newDigests: number[]; newChunks: Map<Digest, string> } {
    const lined = before === undefined ? undefined : mapAligned(before.digests, before.digests, digests, (d) => d);
    const newDigests = lined?.fresh ?? digests.map((_, i) => i);
    const isNew = new Set(newDigests);
    const chunks = new Map<number, StoredChunk>();
    const newChunks = new Map<Digest, string>();
    let start = 0;
    for (const end of chunkEnds(digests, digestBits)) {
      const reused = lined === undefined ? undefined : reusedChunk(before!, start, end, lined, isNew);
      if (reused !== undefined) chunks.set(start, reused);
      else {
        const text = chunkText(digests.slice(start, end));
        const digest = this.digests.digestOf(text);
        newChunks.set(digest, text);
        chunks.set(start, { end, digest });
      }
      start = end;
    }
    return { stored: { digests, chunks }, newDigests, newChunks };
  }

  /**
   * The structural parts a version stored as chunks (`structureOfVersion` answers their digests,
   * 32 bytes each). Throws when a chunk is missing or altered.
   */
  async openStructure(chunkDigestBytes: Buffer): Promise<Record<string, string>> {
    if (chunkDigestBytes.length % DIGEST_BYTES !== 0)
      throw new Error(`structure chunk digests of ${chunkDigestBytes.length} bytes are not whole digests`);
    const digests = structureDigests(chunkDigestBytes);
    const texts = await this.texts(this.db, digests, 'structure');
    const parts: Record<string, string> = {};
    for (const d of digests) for (const [label, hash] of chunkParts(texts.get(d)!)) parts[label] = hash;
    return parts;
  }

  /** True when the version's joined files are in memory: `open` needs no more than its id then. */
  holds(id: number): boolean {
    return this.opened.has(id);
  }

  /**
   * The joined files of a stored version: sealed files (rows stored before segments), or the
   * manifest's segments, from memory where remembered and otherwise in one query. Segments read
   * back are checked against their digests. Throws when a segment is missing or altered.
   */
  open(v: StoredConfigVersion): Promise<RenderedFiles> {
    const cached = this.opened.get(v.id);
    if (cached !== undefined) {
      this.opened.delete(v.id);
      this.opened.set(v.id, cached);
      return cached;
    }
    const opening = this.load(v);
    this.opened.set(v.id, opening);
    opening.catch(() => {
      if (this.opened.get(v.id) === opening) this.opened.delete(v.id);
    });
    for (const id of this.opened.keys()) {
      if (this.opened.size <= this.maxCachedVersions) break;
      this.opened.delete(id);
    }
    return opening;
  }

  /**
   * Deletes the segments no stored version references; answers how many. Most manifests are read
   * before taking the lock, so builds are held off only while the versions stored meanwhile are
   * read and the deletes run: an unreferenced segment is one stored before the sweep began that
   * neither those manifests nor the ones stored since (read under the lock) name.
   */
  async sweep(): Promise<number> {
    const started = Date.now();
    const unreferenced = new Map<Digest, Buffer>();
    for (const d of await segments.segmentDigests(this.db)) unreferenced.set(d.toString('latin1'), d);
    const seen: number[] = [];
    // A chunk of digests is expanded once, however many versions name it.
    const expanded = new Set<Digest>();
    const mark = async (db: Db, refs: segments.VersionReferences) => {
      const { digests, chunks } = refs.manifest === null ? { digests: [], chunks: [] } : flatOrChunks(refs.manifest);
      for (const d of digests) unreferenced.delete(d);
      for (const d of structureDigests(refs.structureChunks)) unreferenced.delete(d);
      const toExpand = chunks.filter((c) => !expanded.has(c));
      if (toExpand.length === 0) return;
      const texts = await this.texts(db, toExpand, `version ${refs.id}`);
      for (const c of toExpand) {
        unreferenced.delete(c);
        expanded.add(c);
        for (const d of chunkDigests(texts.get(c)!)) unreferenced.delete(d);
      }
    };
    for (let after = 0; ; ) {
      const batch = await segments.referencesAfter(this.db, after, SWEEP_BATCH);
      for (const refs of batch) {
        await mark(this.db, refs);
        seen.push(refs.id);
      }
      if (batch.length < SWEEP_BATCH) break;
      after = batch[batch.length - 1]!.id;
    }
    if (unreferenced.size === 0) return 0;
    const deleted = await this.db.transaction().execute(async (trx) => {
      await segments.lockSegmentsForSweep(trx);
      // Versions committed since the read above (including ones with lower ids that committed late).
      for (const refs of await segments.referencesExcept(trx, seen)) await mark(trx, refs);
      return segments.deleteSegments(trx, [...unreferenced.values()]);
    });
    this.logger?.info({ deleted, versions: seen.length, ms: Date.now() - started }, 'swept config segments');
    return deleted;
  }

  /**
   * The digests `previous` (a version still stored: the caller checked under the lock) references:
   * from memory when this process stored it last (`remembered`), else from its manifest (read by
   * id when the caller passed a version header without it). Old versions stored as sealed files
   * have none.
   */
  private async storedDigests(
    trx: Db,
    nodeName: string,
    previous: StoredConfigVersion,
    remembered: ReadonlyMap<string, StoredFile> | undefined,
  ): Promise<ReadonlySet<Digest>> {
    const none = new Set<Digest>();
    if (remembered !== undefined) {
      const out = new Set<Digest>();
      for (const f of remembered.values()) {
        for (const d of f.digests) out.add(d);
        for (const c of f.chunks.values()) out.add(c.digest);
      }
      return out;
    }
    const manifest =
      previous.manifest ??
      (previous.filesSealed === null ? (await configVersionById(trx, previous.id))?.manifest : null);
    if (!manifest) return none;
    const decoded = decodeManifest(manifest);
    const out = digestSet(await this.resolve(trx, decoded, `config version ${previous.id} of node ${nodeName}`));
    if (decoded.chunked) for (const f of decoded.files) for (const c of f.chunks) out.add(c);
    return out;
  }

  /** A manifest's files with their segment digests, chunks read where a chunked manifest names them. */
  private async resolve(db: Db, decoded: DecodedManifest, what: string): Promise<ManifestFile[]> {
    if (!decoded.chunked) return decoded.files;
    const texts = await this.texts(
      db,
      decoded.files.flatMap((f) => f.chunks),
      what,
    );
    return decoded.files.map((f) => {
      const digests = f.chunks.flatMap((c) => chunkDigests(texts.get(c)!));
      if (digests.length !== f.segments)
        throw new Error(`${what}: file ${f.name} lists ${digests.length} segments in its chunks, not ${f.segments}`);
      return { name: f.name, digests };
    });
  }

  /** Segments' texts by digest: remembered ones, the rest in one query, each checked against its digest. */
  private async texts(db: Db, digests: readonly Digest[], what: string): Promise<Map<Digest, string>> {
    const texts = new Map<Digest, string>();
    const missing = new Map<Digest, Buffer>();
    for (const d of digests) {
      if (texts.has(d) || missing.has(d)) continue;
      const text = this.digests.contentOf(d);
      if (text !== undefined) texts.set(d, text);
      else missing.set(d, Buffer.from(d, 'latin1'));
    }
    const rows = await segments.findSegments(db, [...missing.values()]);
    for (const row of rows) {
      const d = row.digest.toString('latin1');
      const text = row.sealed ? this.box.open(row.content, segmentContext(row.digest)) : row.content;
      if (!this.digests.verify(text, d)) {
        throw new Error(
          `config segment ${row.digest.toString('hex')} does not match its digest: it was altered, or stored under another secret key`,
        );
      }
      this.digests.remember(text, d);
      texts.set(d, text);
    }
    if (rows.length !== missing.size)
      throw new Error(`${what} references ${missing.size - rows.length} segments that are not stored`);
    return texts;
  }

  /** Structural parts, sorted by label, as chunks: their digests, the chunks' texts added to `out`. */
  private structureChunks(parts: Readonly<Record<string, string>>, out: Map<Digest, string>): Digest[] {
    const labels = Object.keys(parts).sort();
    return cutChunks(labels, labelBits).map((c) => {
      const text = partsChunkText(c.map((label) => [label, parts[label]!] as const));
      const d = this.digests.digestOf(text);
      out.set(d, text);
      return d;
    });
  }

  private manifestFiles(files: SegmentedFiles, lineage?: string): ManifestFile[] {
    // A build hashes its files (contentHash), then stores them (insert): digested once.
    let manifest = this.manifests.get(files);
    if (manifest === undefined) {
      const memos = lineage === undefined ? undefined : this.lineageMemos(lineage, files);
      const digestOf = (s: string) => this.digests.digestOf(s);
      manifest = Object.keys(files)
        .sort()
        .map((name) => {
          const segments = files[name]!;
          const file = memos?.get(name);
          if (file === undefined) return { name, digests: segments.map(digestOf) };
          const mapped = file.memo.map(segments);
          file.packed = repacked(file.packed, mapped);
          return { name, digests: mapped.out, packed: file.packed };
        });
      this.manifests.set(files, manifest);
    }
    return manifest;
  }

  /** The node's memos of its large files (one per file it has now: those of files it no longer has are dropped). */
  private lineageMemos(lineage: string, files: SegmentedFiles): Map<string, LineageFile> {
    let memos = this.lineages.get(lineage);
    if (memos === undefined) this.lineages.set(lineage, (memos = new Map()));
    for (const name of memos.keys()) if ((files[name]?.length ?? 0) < ALIGNED_MIN_SEGMENTS) memos.delete(name);
    for (const [name, segments] of Object.entries(files))
      if (segments.length >= ALIGNED_MIN_SEGMENTS && !memos.has(name))
        memos.set(name, { memo: new AlignedMemo((s: string) => this.digests.digestOf(s)), packed: Buffer.alloc(0) });
    return memos;
  }

  private segmentRow(digest: Digest, text: string): segments.SegmentRow {
    const bytes = Buffer.from(digest, 'latin1');
    const sealed = SECRET_RE.test(text);
    return { digest: bytes, content: sealed ? this.box.seal(text, segmentContext(bytes)) : text, sealed };
  }

  private async load(v: StoredConfigVersion): Promise<RenderedFiles> {
    if (v.manifest === null) {
      if (v.filesSealed === null)
        throw new Error(`config version ${v.id} of node ${v.nodeName} has neither a manifest nor sealed files`);
      return JSON.parse(this.box.open(v.filesSealed, `config:${v.nodeName}`)) as RenderedFiles;
    }
    const what = `config version ${v.id} of node ${v.nodeName}`;
    const files = await this.resolve(this.db, decodeManifest(v.manifest), what);
    const texts = await this.texts(
      this.db,
      files.flatMap((f) => f.digests),
      what,
    );
    return Object.fromEntries(files.map((f) => [f.name, f.digests.map((d) => texts.get(d)!).join('')]));
  }
}

/** The SecretBox context of a sealed segment: a seal copied to another digest's row fails to open. */
function segmentContext(digest: Buffer): string {
  return `segment:${digest.toString('hex')}`;
}

/**
 * The digests of `mapped` end to end: what lines up is copied from `before` (the previous list's,
 * packed the same way), only the fresh ones are written.
 */
function repacked(before: Buffer, mapped: AlignedMap<Digest, string>): Buffer {
  const { out, fresh, shiftFrom, shift } = mapped;
  const n = out.length;
  const packed = Buffer.allocUnsafe(n * DIGEST_BYTES);
  const m = before.length / DIGEST_BYTES;
  before.copy(packed, 0, 0, Math.min(shiftFrom, m) * DIGEST_BYTES);
  if (shiftFrom < n) before.copy(packed, shiftFrom * DIGEST_BYTES, (shiftFrom + shift) * DIGEST_BYTES);
  for (const i of fresh) packed.write(out[i]!, i * DIGEST_BYTES, DIGEST_BYTES, 'latin1');
  return packed;
}

/**
 * The chunk of `before` that holds exactly the segments of the new chunk [start, end), if any: none
 * of them new, all on one side of `shiftFrom` (so at one offset in `before`, see `mapAligned`), and
 * a chunk of `before` starting at that place with the same length.
 */
function reusedChunk(
  before: StoredFile,
  start: number,
  end: number,
  lined: AlignedMap<Digest, string>,
  isNew: ReadonlySet<number>,
): StoredChunk | undefined {
  if (start < lined.shiftFrom && end > lined.shiftFrom) return undefined;
  const { fresh } = lined;
  // Most chunks lie wholly before the first new segment or after the last: nothing to look up.
  if (fresh.length > 0 && end > fresh[0]! && start <= fresh[fresh.length - 1]!)
    for (let i = start; i < end; i++) if (isNew.has(i)) return undefined;
  const offset = start < lined.shiftFrom ? 0 : lined.shift;
  const chunk = before.chunks.get(start + offset);
  return chunk?.end === end + offset ? chunk : undefined;
}

function digestSet(files: readonly ManifestFile[]): Set<Digest> {
  const out = new Set<Digest>();
  for (const f of files) for (const d of f.digests) out.add(d);
  return out;
}

/** A manifest's segment digests (format 1) or chunk digests (format 2). */
function flatOrChunks(manifest: Buffer): { digests: Digest[]; chunks: Digest[] } {
  const decoded = decodeManifest(manifest);
  return decoded.chunked
    ? { digests: [], chunks: decoded.files.flatMap((f) => [...f.chunks]) }
    : { digests: decoded.files.flatMap((f) => [...f.digests]), chunks: [] };
}

/** The chunk digests of a version's structural parts (32 bytes each). */
function structureDigests(bytes: Buffer | null): Digest[] {
  const out: Digest[] = [];
  if (bytes !== null)
    for (let at = 0; at + DIGEST_BYTES <= bytes.length; at += DIGEST_BYTES)
      out.push(bytes.toString('latin1', at, at + DIGEST_BYTES));
  return out;
}
