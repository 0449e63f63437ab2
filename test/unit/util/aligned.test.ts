import { describe, expect, it } from 'vitest';
import { AlignedMemo, mapAligned } from '../../../src/util/aligned.js';

/** A deterministic generator, so that a failure replays the same edits. */
function random(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x = (Math.imul(x ^ (x >>> 15), 0x2c1b3c6d) + 0x9e3779b9) >>> 0;
    return (x >>> 8) / 0x1000000;
  };
}

interface Item {
  readonly id: number;
}

describe('mapAligned', () => {
  it('when elements are replaced, inserted and removed at random, then it answers next mapped, mapping only what is new, and says where the rest came from', () => {
    const next = random(7);
    let serial = 0;
    const item = (): Item => ({ id: ++serial });
    let calls: Item[] = [];
    const f = (x: Item) => {
      calls.push(x);
      return { of: x };
    };
    let prev: Item[] = Array.from({ length: 300 }, item);
    let prevOut = prev.map((x) => ({ of: x }));
    for (let round = 0; round < 200; round++) {
      const list = prev.slice();
      const edits = Math.floor(next() * 4);
      for (let e = 0; e < edits; e++) {
        const at = Math.floor(next() * (list.length + 1));
        const what = next();
        if (what < 0.4 && at < list.length) list[at] = item();
        else if (what < 0.7) list.splice(at, 0, item());
        else if (list.length > 0) list.splice(Math.min(at, list.length - 1), 1);
      }
      calls = [];
      const mapped = mapAligned(prev, prevOut, list, f);
      expect(mapped.out.map((o) => o.of)).toEqual(list);
      // f ran for exactly the fresh indices, and every element new to the list is among them.
      expect(calls).toEqual(mapped.fresh.map((i) => list[i]));
      const before = new Set(prev);
      list.forEach((x, i) => {
        if (!before.has(x)) expect(mapped.fresh).toContain(i);
      });
      // Everything else is the previous result, from where `shiftFrom` and `shift` say.
      const fresh = new Set(mapped.fresh);
      list.forEach((_, i) => {
        if (fresh.has(i)) return;
        const from = i < mapped.shiftFrom ? i : i + mapped.shift;
        expect(mapped.out[i]).toBe(prevOut[from]);
      });
      // What is gone is what nothing lined up with, with its old result.
      const kept = new Set(list.filter((_, i) => !fresh.has(i)));
      expect(mapped.gone).toEqual(prev.filter((x) => !kept.has(x)));
      expect(mapped.goneOut.map((o) => o.of)).toEqual(mapped.gone);
      prev = list;
      prevOut = mapped.out.slice();
    }
  });

  it('when two elements far apart are replaced in a list of the same length, then only those two are mapped', () => {
    const prev = Array.from({ length: 1000 }, (_, id) => ({ id }));
    const list = prev.slice();
    list[10] = { id: -1 };
    list[990] = { id: -2 };
    const mapped = mapAligned(
      prev,
      prev.map((x) => x.id),
      list,
      (x) => x.id,
    );
    expect(mapped.fresh).toEqual([10, 990]);
    expect(mapped.gone).toEqual([prev[10], prev[990]]);
    expect(mapped.out[500]).toBe(500);
  });
});

describe('AlignedMemo', () => {
  it('maps each list against the one before, and the same list again without mapping anything', () => {
    let calls = 0;
    const memo = new AlignedMemo((x: Item) => {
      calls += 1;
      return x.id * 2;
    });
    const a = Array.from({ length: 50 }, (_, id) => ({ id }));
    expect(memo.map(a).out).toEqual(a.map((x) => x.id * 2));
    expect(calls).toBe(50);
    expect(memo.map(a).fresh).toEqual([]);
    const b = [...a.slice(0, 20), { id: 100 }, ...a.slice(20)];
    const mapped = memo.map(b);
    expect(mapped.fresh).toEqual([20]);
    expect(mapped.out[20]).toBe(200);
    expect(calls).toBe(51);
    memo.reset();
    memo.map(b);
    expect(calls).toBe(102);
  });
});
