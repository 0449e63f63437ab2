import { describe, expect, it } from 'vitest';
import { setFrontendMaxconn } from '../../../../../src/fleet/runtime-api/commands/frontend-commands.js';
import { UnsafeArgumentError } from '../../../../../src/fleet/runtime-api/commands/runtime-command.js';

describe('frontend command builders', () => {
  it('cap a frontend', () => {
    expect(setFrontendMaxconn('fe_t1', 500).line).toBe('set maxconn frontend fe_t1 500');
  });

  it.each([
    ['a semicolon', 'be;shutdown sessions'],
    ['a newline', 'be\nshow info'],
    ['a carriage return', 'be\r'],
    ['a NUL', 'be\0'],
    ['a space', 'my backend'],
    ['a tab', 'be\tx'],
    ['a slash', 'be/s1'],
    ['nothing', ''],
  ])('refuse a name with %s', (_what, value) => {
    expect(() => setFrontendMaxconn(value, 1)).toThrow(UnsafeArgumentError);
  });
});
