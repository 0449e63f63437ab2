import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseShowMap } from '../../../../src/fleet/replies/show-map.js';

/** Replies captured from HAProxy 2.6.12 on this machine (see test/fixtures/runtime). */
const fixture = (name: string): string =>
  readFileSync(new URL(`../../../fixtures/runtime/${name}`, import.meta.url), 'utf8');

describe('show map', () => {
  it('gives every entry with its reference, and none for an empty map', () => {
    expect(parseShowMap(fixture('show-map.txt'))).toEqual([
      { ref: expect.stringMatching(/^0x/), key: 'example.test', value: 'be_app' },
      { ref: expect.stringMatching(/^0x/), key: 't1', value: '100' },
    ]);
    expect(parseShowMap('')).toEqual([]);
  });
});
