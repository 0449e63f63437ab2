import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
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
} from '../../../../src/services/config/config-manifest.js';

const digest = () => randomBytes(32).toString('latin1');

describe('config manifest', () => {
  it('decodes what it encodes, files sorted by name', () => {
    const files = [
      { name: 'maps/hosts.map', digests: [digest()] },
      { name: 'haproxy.cfg', digests: [digest(), digest(), digest()] },
      { name: 'empty.cfg', digests: [] },
      { name: 'certs/tenant-ü.pem', digests: [digest()] },
    ];
    const bytes = encodeManifest(files);
    expect(decodeManifest(bytes)).toEqual({
      chunked: false,
      files: [...files].sort((a, b) => (a.name < b.name ? -1 : 1)),
    });
    expect(bytes.length).toBe(
      1 + 4 + files.reduce((n, f) => n + 2 + Buffer.byteLength(f.name) + 4 + 32 * f.digests.length, 0),
    );
    expect(encodeManifest([...files].reverse())).toEqual(bytes);
  });

  it('refuses a name given twice and digests that are not 32 bytes', () => {
    expect(() =>
      encodeManifest([
        { name: 'a', digests: [] },
        { name: 'a', digests: [] },
      ]),
    ).toThrow(/twice/);
    expect(() => encodeManifest([{ name: 'a', digests: ['short'] }])).toThrow(/32 bytes/);
  });

  it('refuses bytes that are not a whole manifest', () => {
    const bytes = encodeManifest([{ name: 'haproxy.cfg', digests: [digest(), digest()] }]);
    expect(() => decodeManifest(bytes.subarray(0, bytes.length - 1))).toThrow(/ends early/);
    expect(() => decodeManifest(Buffer.concat([bytes, Buffer.from([0])]))).toThrow(/past its last file/);
    expect(() => decodeManifest(Buffer.concat([Buffer.from([9]), bytes.subarray(1)]))).toThrow(
      /unknown config manifest format/,
    );
    expect(decodeManifest(new Uint8Array(bytes))).toEqual(decodeManifest(bytes));
  });

  it('decodes a chunked manifest: each file with its segment count and chunk digests, sorted by name', () => {
    const files = [
      { name: 'nginx.conf', segments: 130, chunks: [digest(), digest()] },
      { name: 'certs/a.pem', segments: 1, chunks: [digest()] },
    ];
    const bytes = encodeChunkedManifest(files);
    expect(decodeManifest(bytes)).toEqual({ chunked: true, files: [...files].reverse() });
    expect(() => decodeManifest(bytes.subarray(0, bytes.length - 3))).toThrow(/ends early/);
  });
});

describe('content-defined chunks', () => {
  const digests = Array.from({ length: 5_000 }, digest);
  const chunksOf = (ds: readonly string[]) => cutChunks(ds, digestBits).map(chunkText);

  it('cuts about 64 entries per chunk, and the chunks list every entry once, in order', () => {
    const chunks = cutChunks(digests, digestBits);
    expect(chunks.flat()).toEqual(digests);
    expect(chunks.length).toBeGreaterThan(5_000 / 128);
    expect(chunks.length).toBeLessThan(5_000 / 32);
    expect(chunks.every((c) => c.length <= 512)).toBe(true);
    expect(chunks.flatMap((c) => chunkDigests(chunkText(c)))).toEqual(digests);
  });

  it('when one entry is inserted, removed or changed anywhere, then at most two chunks differ', () => {
    const before = new Set(chunksOf(digests));
    for (const at of [0, 1, 777, 2_500, 4_999]) {
      const inserted = [...digests.slice(0, at), digest(), ...digests.slice(at)];
      const removed = digests.filter((_, i) => i !== at);
      const changed = digests.map((d, i) => (i === at ? digest() : d));
      for (const after of [inserted, removed, changed]) {
        const fresh = chunksOf(after).filter((c) => !before.has(c));
        expect(fresh.length).toBeLessThanOrEqual(2);
      }
    }
  });

  it('structural parts chunk on their labels, so a changed hash changes one chunk and its text reads back', () => {
    const parts = Array.from({ length: 3_000 }, (_, i) => [`vip t${i}/www`, randomBytes(8).toString('hex')] as const);
    const texts = (ps: readonly (readonly [string, string])[]) =>
      cutChunks(ps, ([label]) => labelBits(label)).map(partsChunkText);
    const before = new Set(texts(parts));
    const changed = parts.map((p, i) => (i === 1_234 ? ([p[0], 'ffffffffffffffff'] as const) : p));
    expect(texts(changed).filter((t) => !before.has(t))).toHaveLength(1);
    expect(texts(parts).flatMap(chunkParts)).toEqual(parts);
    expect(() => chunkParts('{"a":1}')).toThrow(/label, hash/);
  });
});
