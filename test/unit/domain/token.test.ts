import { describe, expect, it } from 'vitest';
import { createTokenSchema } from '../../../src/domain/token.js';
import { manualClock } from '../../../src/util/clock.js';

describe('createTokenSchema', () => {
  const clock = manualClock(Date.parse('2030-01-01T00:00:00Z'));
  const schema = createTokenSchema(clock);
  const body = (expiresAt: string) => ({ name: 'ci', role: 'operator', expiresAt });

  it('when expiresAt is after the clock, then the body is accepted', () => {
    expect(schema.safeParse(body('2030-01-01T00:00:01Z')).success).toBe(true);
  });

  it('when expiresAt is not after the clock, then it must be in the future', () => {
    const result = schema.safeParse(body('2030-01-01T00:00:00Z'));
    expect(result.success).toBe(false);
    expect(result.error?.issues).toEqual([
      expect.objectContaining({ path: ['expiresAt'], message: 'must be in the future' }),
    ]);
  });

  it('reads the clock when a body is parsed, not when the schema is built', () => {
    const moving = manualClock(Date.parse('2030-01-01T00:00:00Z'));
    const movingSchema = createTokenSchema(moving);
    const later = body('2030-06-01T00:00:00Z');
    expect(movingSchema.safeParse(later).success).toBe(true);
    moving.set(Date.parse('2031-01-01T00:00:00Z'));
    expect(movingSchema.safeParse(later).success).toBe(false);
  });
});
