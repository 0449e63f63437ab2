/**
 * Weighted max-min fair division of `amount` whole units: item i gets min(wants[i], w_i·λ) with λ
 * as large as the amount allows, rounded to whole units by largest remainder (ties to the lower
 * index). Gives out min(amount, Σ wants) exactly. Weights must be positive.
 */
export function waterFill(wants: readonly number[], weights: readonly number[], amount: number): number[] {
  const n = wants.length;
  const out = new Array<number>(n).fill(0);
  let remaining = Math.max(0, Math.floor(amount));
  if (n === 0 || remaining === 0) return out;
  const order = [...wants.keys()]
    .filter((i) => wants[i]! > 0)
    .sort((a, b) => wants[a]! / weights[a]! - wants[b]! / weights[b]! || a - b);
  let weightLeft = order.reduce((s, i) => s + weights[i]!, 0);
  let k = 0;
  // Satisfy, smallest level first, every item whose whole want fits under the current water level.
  for (; k < order.length; k++) {
    const i = order[k]!;
    if (wants[i]! * weightLeft > remaining * weights[i]!) break;
    out[i] = wants[i]!;
    remaining -= wants[i]!;
    weightLeft -= weights[i]!;
  }
  if (k === order.length || remaining === 0) return out;
  distributeLevel(order.slice(k), wants, weights, remaining, weightLeft, out);
  return out;
}

/** Everyone left is capped by the level λ = remaining / weightLeft; round down, then hand out the rest. */
function distributeLevel(
  items: number[],
  wants: readonly number[],
  weights: readonly number[],
  remaining: number,
  weightLeft: number,
  out: number[],
): void {
  const fraction = new Array<number>(items.length);
  let given = 0;
  for (let k = 0; k < items.length; k++) {
    const i = items[k]!;
    const share = (weights[i]! * remaining) / weightLeft;
    out[i] = Math.min(wants[i]!, Math.floor(share));
    fraction[k] = share - out[i]!;
    given += out[i]!;
  }
  let left = remaining - given;
  if (left === 0) return;
  const byRemainder = [...items.keys()]
    .sort((a, b) => fraction[b]! - fraction[a]! || items[a]! - items[b]!)
    .map((k) => items[k]!);
  // One pass suffices in exact arithmetic; the loop only guards against float rounding.
  while (left > 0) {
    let progressed = false;
    for (const i of byRemainder) {
      if (left === 0) break;
      if (out[i]! >= wants[i]!) continue;
      out[i]! += 1;
      left -= 1;
      progressed = true;
    }
    if (!progressed) break;
  }
}
