import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { decodeManifest, encodeManifest } from '../../../src/services/config-manifest.js';

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
    expect(decodeManifest(bytes)).toEqual([...files].sort((a, b) => (a.name < b.name ? -1 : 1)));
    expect(bytes.length).toBe(1 + 4 + files.reduce((n, f) => n + 2 + Buffer.byteLength(f.name) + 4 + 32 * f.digests.length, 0));
    expect(encodeManifest([...files].reverse())).toEqual(bytes);
  });

  it('refuses a name given twice and digests that are not 32 bytes', () => {
    expect(() => encodeManifest([{ name: 'a', digests: [] }, { name: 'a', digests: [] }])).toThrow(/twice/);
    expect(() => encodeManifest([{ name: 'a', digests: ['short'] }])).toThrow(/32 bytes/);
  });

  it('refuses bytes that are not a whole manifest', () => {
    const bytes = encodeManifest([{ name: 'haproxy.cfg', digests: [digest(), digest()] }]);
    expect(() => decodeManifest(bytes.subarray(0, bytes.length - 1))).toThrow(/ends early/);
    expect(() => decodeManifest(Buffer.concat([bytes, Buffer.from([0])]))).toThrow(/past its last file/);
    expect(() => decodeManifest(Buffer.concat([Buffer.from([9]), bytes.subarray(1)]))).toThrow(/unknown config manifest format/);
    expect(decodeManifest(new Uint8Array(bytes))).toEqual(decodeManifest(bytes));
  });
});
