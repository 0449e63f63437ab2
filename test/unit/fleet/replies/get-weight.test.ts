import { describe, expect, it } from 'vitest';
import { RuntimeParseError } from '../../../../src/fleet/replies/runtime-parse-error.js';
import { parseGetWeight } from '../../../../src/fleet/replies/get-weight.js';

describe('get weight', () => {
  it('gives the current and the initial weight', () => {
    expect(parseGetWeight('20 (initial 20)\n')).toEqual({ current: 20, initial: 20 });
    expect(() => parseGetWeight('No such server.')).toThrow(RuntimeParseError);
  });
});
