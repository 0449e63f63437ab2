import { describe, expect, it } from 'vitest';
import { backoffDelay, jitteredDelay } from '../../../src/util/backoff.js';

describe('backoffDelay', () => {
  it('doubles from the initial delay up to the cap', () => {
    const policy = { initialMs: 100, maxMs: 1000, factor: 2 };
    expect([0, 1, 2, 3, 4, 5, 10].map((n) => backoffDelay(policy, n))).toEqual([0, 100, 200, 400, 800, 1000, 1000]);
  });
});

describe('jitteredDelay', () => {
  const policy = { initialMs: 1000, maxMs: 30_000, factor: 2 };
  it('grows exponentially to the cap, with between half and all of the delay as jitter', () => {
    expect(jitteredDelay(policy, 1, () => 0)).toBe(500);
    expect(jitteredDelay(policy, 1, () => 0.999999)).toBe(1000);
    expect(jitteredDelay(policy, 3, () => 0.5)).toBe(3000);
    expect(jitteredDelay(policy, 20, () => 0.999999)).toBe(30_000);
  });
});
