import { describe, expect, it } from 'vitest';
import { waterFill } from '../../../../src/domain/allocation/water-fill.js';

describe('waterFill', () => {
  it('gives everyone their want when the amount covers it', () => {
    expect(waterFill([3, 5, 0], [1, 1, 1], 100)).toEqual([3, 5, 0]);
  });

  it('splits by weight at the water level and rounds by largest remainder', () => {
    expect(waterFill([100, 100, 100], [1, 1, 1], 10)).toEqual([4, 3, 3]);
    expect(waterFill([100, 100], [2, 1], 10)).toEqual([7, 3]);
    expect(waterFill([2, 100, 100], [1, 1, 1], 10)).toEqual([2, 4, 4]);
  });

  it('hands out whole units only: a fractional or negative amount is rounded down to one', () => {
    expect(waterFill([5, 5], [1, 1], 3.9)).toEqual([2, 1]);
    expect(waterFill([5, 5], [1, 1], -4)).toEqual([0, 0]);
    expect(waterFill([], [], 10)).toEqual([]);
  });

  it('gives exactly min(amount, sum of wants), never more than an item wants', () => {
    const wants = [7, 1, 30, 0, 12];
    const weights = [3, 1, 1, 5, 2];
    for (let amount = 0; amount <= 60; amount++) {
      const out = waterFill(wants, weights, amount);
      expect(out.reduce((a, b) => a + b, 0)).toBe(Math.min(amount, 50));
      out.forEach((x, i) => {
        expect(x).toBeLessThanOrEqual(wants[i]!);
      });
    }
  });
});
