import { createHmac } from 'node:crypto';
import type { Digest } from './config-manifest.js';

const DIGEST_KEY_LABEL = 'switchyard config segment digest';

interface Generation {
  readonly bySegment: Map<string, Digest>;
  readonly byDigest: Map<Digest, string>;
  /** Characters of the segments first remembered in this generation. */
  chars: number;
}

const generation = (): Generation => ({ bySegment: new Map(), byDigest: new Map(), chars: 0 });

/**
 * Keyed digests of config segments (HMAC-SHA256 under a key derived from the secret key, so a
 * stored digest says nothing about sealed content), remembered per segment string, and the
 * segments by digest for opening versions without reading them back.
 *
 * Remembering pays only for the very string objects the renderers hand back again (their
 * fragment caches): V8 keeps a string's hash in the string, so looking one up again costs about
 * 10 ns. An equal string built afresh is hashed and compared in full, which costs about as much
 * as the HMAC itself.
 *
 * Bounded, because the map holds its segments alive: the renderers drop a tenant's old part when
 * it changes, and without a bound every part ever rendered would stay. Two generations: a lookup
 * moves its entry into the young one; when the young one has taken in `maxChars` characters of
 * segments it becomes the old one and the old one is dropped. A segment used at least once per
 * generation (every node's config is rebuilt or opened now and then) stays; memory is at most
 * about 2 × maxChars characters of segments, most of them shared with the renderers' caches; a
 * dropped segment costs one HMAC (about 4 µs per 1.5 KB) when it is used again.
 */
export class SegmentDigests {
  private readonly key: Buffer;
  private young = generation();
  private old = generation();

  constructor(
    secretKey: Buffer,
    private readonly maxChars: number,
  ) {
    this.key = createHmac('sha256', secretKey).update(DIGEST_KEY_LABEL).digest();
  }

  /** The segment's digest: remembered, or computed and remembered. */
  digestOf(segment: string): Digest {
    const hit = this.young.bySegment.get(segment);
    if (hit !== undefined) return hit;
    const digest = this.old.bySegment.get(segment) ?? this.compute(segment);
    this.remember(segment, digest);
    return digest;
  }

  /** The segment with this digest, when it is remembered. */
  contentOf(digest: Digest): string | undefined {
    const hit = this.young.byDigest.get(digest);
    if (hit !== undefined) return hit;
    const segment = this.old.byDigest.get(digest);
    if (segment !== undefined) this.remember(segment, digest);
    return segment;
  }

  /** Whether `digest` is this segment's (computed afresh: what a segment read back is checked with). */
  verify(segment: string, digest: Digest): boolean {
    return this.compute(segment) === digest;
  }

  /** Remembers a segment whose digest is known to be right (computed, or verified). */
  remember(segment: string, digest: Digest): void {
    if (this.young.bySegment.has(segment)) return;
    this.young.bySegment.set(segment, digest);
    this.young.byDigest.set(digest, segment);
    this.young.chars += segment.length;
    if (this.young.chars >= this.maxChars) {
      this.old = this.young;
      this.young = generation();
    }
  }

  private compute(segment: string): Digest {
    return createHmac('sha256', this.key).update(segment, 'utf8').digest('binary'); // 'binary' is latin1: one character per byte
  }
}
