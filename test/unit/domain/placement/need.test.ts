import { describe, expect, it } from 'vitest';
import { formatNeed, formatShort, fromNeed, relativeSize, toNeed } from '../../../../src/domain/placement/need.js';

describe('need', () => {
  it('counts vCPU in whole milli-vCPU, so that sums of reservations are exact', () => {
    expect(toNeed({ vcpu: 0.1, memoryMb: 256 })).toEqual({ milli: 100, mb: 256 });
    const sum = [0.1, 0.2, 0.3].map((vcpu) => toNeed({ vcpu, memoryMb: 0 }).milli).reduce((a, b) => a + b, 0);
    expect(sum).toBe(600);
    expect(fromNeed(1500, 2048)).toEqual({ vcpu: 1.5, memoryMb: 2048 });
  });

  it('measures a need by the larger of its two shares, and a need on no capacity as infinite', () => {
    expect(relativeSize({ milli: 500, mb: 3072 }, { milli: 1000, mb: 4096 })).toBe(0.75);
    expect(relativeSize({ milli: 1, mb: 0 }, { milli: 0, mb: 4096 })).toBe(Number.POSITIVE_INFINITY);
    expect(relativeSize({ milli: 0, mb: 0 }, { milli: 0, mb: 0 })).toBe(0);
  });

  it('prints a need in both units, and a shortfall in the units that fall short only', () => {
    expect(formatNeed({ milli: 1500, mb: 2048 })).toBe('1.5 vCPU / 2048 MB');
    expect(formatShort({ milli: 1000, mb: 0 })).toBe('1 vCPU');
    expect(formatShort({ milli: 0, mb: 2048 })).toBe('2048 MB');
    expect(formatShort({ milli: 1000, mb: 2048 })).toBe('1 vCPU / 2048 MB');
  });
});
