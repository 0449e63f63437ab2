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
  /** Per node, the digests of the version this process stored last: the next insert's `previous`, not decoded again. */
  private readonly lastStored = new Map<string, { readonly id: number; readonly digests: ReadonlySet<Digest> }>();
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
   * key through the digests. An unchanged segment string is never hashed again.
   */
  contentHash(files: SegmentedFiles): string {
    return createHash('sha256')
      .update(encodeManifest(this.manifestFiles(files)))
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
    const files = this.manifestFiles(v.files);
    const chunks = new Map<Digest, string>();
    const chunked: ChunkedFile[] = files.map((f) => ({
      name: f.name,
      segments: f.digests.length,
      chunks: this.chunk(f.digests, chunks),
    }));
    const structure = this.structureChunks(v.structuralParts, chunks);
    await segments.lockSegmentsForInsert(trx);
    // Its segments are stored as long as it is: checked under the lock, so no sweep comes between.
    const stored = v.previous === undefined ? new Set<Digest>() : await this.storedDigests(trx, v.nodeName, v.previous);
    const fresh = new Map<Digest, string>();
    for (const f of files) {
      const texts = v.files[f.name]!;
      f.digests.forEach((d, i) => {
        if (!stored.has(d) && !fresh.has(d)) fresh.set(d, texts[i]!);
      });
    }
    for (const [d, text] of chunks) if (!stored.has(d)) fresh.set(d, text);
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
    const referenced = digestSet(files);
    for (const d of chunks.keys()) referenced.add(d);
    this.lastStored.set(v.nodeName, { id, digests: referenced });
    return id;
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
   * The digests `previous` references, when it is still stored (checked under the lock): those of
   * the version this process stored last from memory, else its manifest (read by id when the
   * caller passed a version header without it). Old versions stored as sealed files have none.
   */
  private async storedDigests(trx: Db, nodeName: string, previous: StoredConfigVersion): Promise<ReadonlySet<Digest>> {
    const none = new Set<Digest>();
    if (!(await segments.configVersionExists(trx, previous.id))) return none;
    const remembered = this.lastStored.get(nodeName);
    if (remembered?.id === previous.id) return remembered.digests;
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

  /** A file's segment digests as chunks: their digests, the chunks' texts added to `out`. */
  private chunk(digests: readonly Digest[], out: Map<Digest, string>): Digest[] {
    return cutChunks(digests, digestBits).map((c) => {
      const text = chunkText(c);
      const d = this.digests.digestOf(text);
      out.set(d, text);
      return d;
    });
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

  private manifestFiles(files: SegmentedFiles): ManifestFile[] {
    // A build hashes its files (contentHash), then stores them (insert): digested once.
    let manifest = this.manifests.get(files);
    if (manifest === undefined) {
      manifest = Object.keys(files)
        .sort()
        .map((name) => ({ name, digests: files[name]!.map((s) => this.digests.digestOf(s)) }));
      this.manifests.set(files, manifest);
    }
    return manifest;
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
