import { describe, expect, it } from 'vitest';
import { applyHysteresis, type HysteresisColumn } from '../../../../src/domain/allocation/hysteresis.js';

/** One tenant per entry; reservation 0 and limit 1000 unless given. */
function column(current: (number | null)[], over: Partial<HysteresisColumn> = {}): HysteresisColumn {
  return {
    reserved: current.map(() => 0),
    limit: current.map(() => 1000),
    saturated: current.map(() => false),
    current,
    ...over,
  };
}

// The default band: 10% of the current cap, at least 2 units.
const hold = (col: HysteresisColumn, targets: number[], capacity = 10_000) =>
  applyHysteresis(col, targets, capacity, 0.1, 2);

describe('applyHysteresis', () => {
  it('when the target is within the band of the current cap, then the current cap is kept', () => {
    expect(hold(column([95]), [100])).toEqual([95]);
    expect(hold(column([3]), [2])).toEqual([3]); // 1 unit: under the absolute minimum of 2
  });

  it('when the target is outside the band, or the tenant is new on the node, then the target goes out', () => {
    expect(hold(column([80]), [100])).toEqual([100]);
    expect(hold(column([null]), [100])).toEqual([100]);
  });

  it('when a saturated tenant would be raised, then the raise goes out even within the band', () => {
    expect(hold(column([95], { saturated: [true] }), [100])).toEqual([100]);
    // Saturation only lets a cap rise: a lower target within the band is still held.
    expect(hold(column([100], { saturated: [true] }), [95])).toEqual([100]);
  });

  it('never holds a cap below the reservation, above the limit, or below a target at the limit', () => {
    expect(hold(column([95], { reserved: [97] }), [100])).toEqual([100]);
    expect(hold(column([105], { limit: [100] }), [100])).toEqual([100]);
    expect(hold(column([95], { limit: [100] }), [100])).toEqual([100]);
  });

  it('when held caps would take the node past its capacity, then the largest excess is released first', () => {
    expect(hold(column([54, 52]), [50, 50], 103)).toEqual([50, 52]);
    expect(hold(column([54, 52]), [50, 50], 100)).toEqual([50, 50]);
  });
});
