import { describe, expect, it } from 'vitest';
import { parsePreparedVersion } from '../../../../src/fleet/replies/prepare-map.js';

describe('prepare map', () => {
  it('gives the version it created', () => {
    expect(parsePreparedVersion('New version created: 3')).toBe(3);
  });
});
