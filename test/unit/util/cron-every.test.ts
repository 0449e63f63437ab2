import { describe, expect, it } from 'vitest';
import { cronEvery, isSchedulable } from '../../../src/util/cron-every.js';

describe('cronEvery', () => {
  it('when the interval divides a minute or an hour, then cron fires at an even pace', () => {
    expect(cronEvery(1)).toBe('*/1 * * * * *');
    expect(cronEvery(10)).toBe('*/10 * * * * *');
    expect(cronEvery(60)).toBe('0 */1 * * * *');
    expect(cronEvery(300)).toBe('0 */5 * * * *');
  });

  it('when it does not, then it is refused at setup', () => {
    for (const s of [0, 7, 45, 90, 7200, 1.5]) expect(isSchedulable(s), String(s)).toBe(false);
    expect(() => cronEvery(7)).toThrow(/divisor of 60/);
  });
});

describe('isSchedulable', () => {
  it('accepts exactly the whole seconds from 1 to an hour that divide a minute or whose minutes divide an hour', () => {
    const accepted = Array.from({ length: 3600 }, (_, i) => i + 1).filter(isSchedulable);
    expect(accepted).toEqual([
      1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60, 120, 180, 240, 300, 360, 600, 720, 900, 1200, 1800, 3600,
    ]);
  });
});
