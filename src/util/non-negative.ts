/** `x` when it is a finite positive number, else 0: counters and estimates read from outside can be NaN, infinite or negative. */
export function nonNegative(x: number): number {
  return Number.isFinite(x) && x > 0 ? x : 0;
}
