/**
 * Incremental mapping of lists that change a little between calls: a node's tenants, their
 * snapshots, its config segments. Elements that did not change are the very same objects in the
 * next list (the desired state keeps unchanged tenants' objects, the renderers their fragments),
 * so comparing by identity finds what is new in a pass of pointer comparisons, and everything
 * worked out for the rest is reused instead of being looked up again in a memo (a WeakMap or a
 * string-keyed Map costs 0.1–1 µs an entry at 10,000 entries, most of it cache misses).
 */

/** The result of mapping `next`, and which of its elements were mapped afresh. */
export interface AlignedMap<O, I = unknown> {
  /** Kept by `AlignedMemo` for its next call: not to be changed. */
  readonly out: readonly O[];
  /** Indices in `next` whose element had no counterpart in the previous list (ascending). */
  readonly fresh: number[];
  /**
   * Where each element that was not mapped afresh came from: `next[i]` is `prev[i]` for `i` below
   * `shiftFrom`, and `prev[i + shift]` from there on.
   */
  readonly shiftFrom: number;
  readonly shift: number;
  /** The elements of the previous list that nothing in `next` lined up with (removed or replaced). */
  readonly gone: readonly I[];
  /** What they had been mapped to. */
  readonly goneOut: readonly O[];
}

/**
 * `next` mapped by `f`, reusing `prevOut[j]` for an element of `next` that is identical to the
 * element `prev[j]` it lines up with. Elements line up in the common prefix and the common suffix
 * (which covers one insertion, removal or replacement anywhere) and, when what lies between has
 * the same length in both lists, position by position (which covers any number of replacements).
 * Everything else is mapped by `f`, which should itself be cheap for elements it has seen (a memo):
 * `mapAligned` only saves the lookups. `prevOut` must be `prev` mapped by the same `f`.
 */
export function mapAligned<I, O>(
  prev: readonly I[],
  prevOut: readonly O[],
  next: readonly I[],
  f: (item: I) => O,
): AlignedMap<O, I> {
  if (prevOut.length !== prev.length) throw new Error('mapAligned: prevOut must be prev mapped');
  const n = next.length;
  const m = prev.length;
  const limit = Math.min(n, m);
  let head = 0;
  while (head < limit && prev[head] === next[head]) head++;
  let tail = 0;
  while (tail < limit - head && prev[m - 1 - tail] === next[n - 1 - tail]) tail++;
  const out = new Array<O>(n);
  const fresh: number[] = [];
  for (let i = 0; i < head; i++) out[i] = prevOut[i]!;
  const sameMiddle = n - tail - head === m - tail - head;
  for (let i = head; i < n - tail; i++) {
    const item = next[i]!;
    if (sameMiddle && prev[i] === item) out[i] = prevOut[i]!;
    else {
      out[i] = f(item);
      fresh.push(i);
    }
  }
  for (let i = n - tail; i < n; i++) out[i] = prevOut[i - n + m]!;
  const gone: I[] = [];
  const goneOut: O[] = [];
  for (let j = head; j < m - tail; j++) {
    if (sameMiddle && prev[j] === next[j]) continue;
    gone.push(prev[j]!);
    goneOut.push(prevOut[j]!);
  }
  return { out, fresh, shiftFrom: sameMiddle ? n : n - tail, shift: m - n, gone, goneOut };
}

/**
 * `mapAligned` against the list it mapped last: one per list that changes a little between calls
 * (a node's segments of one file, say). Not for lists of different lineages in turn (two nodes'
 * lists): each would find little of the other's to reuse.
 */
export class AlignedMemo<I, O> {
  private prev: readonly I[] = [];
  private prevOut: readonly O[] = [];

  constructor(private readonly f: (item: I) => O) {}

  /** Forgets the last list: the next call maps every element afresh. */
  reset(): void {
    this.prev = [];
    this.prevOut = [];
  }

  map(next: readonly I[]): AlignedMap<O, I> {
    if (next === this.prev)
      return { out: this.prevOut, fresh: [], shiftFrom: next.length, shift: 0, gone: [], goneOut: [] };
    const mapped = mapAligned(this.prev, this.prevOut, next, this.f);
    this.prev = next;
    this.prevOut = mapped.out;
    return mapped;
  }
}
