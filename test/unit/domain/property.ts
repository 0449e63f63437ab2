import { mulberry32 as baseRng } from '../../fixtures/random-snapshot.js';
/**
 * A small seeded property harness: mulberry32 for reproducible scenarios, and `forAll` which
 * names the failing scenario's seed so it can be replayed alone:
 *   PROPERTY_SEED=<seed> PROPERTY_RUNS=1 npx vitest run test/unit/domain
 */

export interface Rng {
  /** Uniform in [0, 1). */
  next(): number;
  /** Uniform integer in [min, max]. */
  int(min: number, max: number): number;
  /** True with probability p. */
  chance(p: number): boolean;
  pick<T>(items: readonly T[]): T;
  shuffle<T>(items: readonly T[]): T[];
}

export function mulberry32(seed: number): Rng {
  const next = baseRng(seed);
  const int = (min: number, max: number): number => min + Math.floor(next() * (max - min + 1));
  return {
    next,
    int,
    chance: (p) => next() < p,
    pick: (items) => {
      if (items.length === 0) throw new Error('pick from an empty list');
      return items[int(0, items.length - 1)] as (typeof items)[number];
    },
    shuffle: (items) => {
      const out = [...items];
      for (let i = out.length - 1; i > 0; i--) {
        const j = int(0, i);
        [out[i], out[j]] = [out[j] as (typeof out)[number], out[i] as (typeof out)[number]];
      }
      return out;
    },
  };
}

const BASE_SEED = Number(process.env.PROPERTY_SEED ?? 20_261_126);
const RUNS_OVERRIDE = process.env.PROPERTY_RUNS === undefined ? null : Number(process.env.PROPERTY_RUNS);

/**
 * Runs `check` on `runs` scenarios, scenario i seeded with BASE_SEED + i (plus a per-property
 * offset so properties do not share scenarios). A failure is rethrown naming the seed.
 */
export function forAll<S>(offset: number, runs: number, generate: (rng: Rng) => S, check: (scenario: S, rng: Rng) => void): void {
  const count = RUNS_OVERRIDE ?? runs;
  for (let i = 0; i < count; i++) {
    const seed = (BASE_SEED + offset * 1_000_003 + i) >>> 0;
    const rng = mulberry32(seed);
    const scenario = generate(rng);
    try {
      check(scenario, rng);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      throw new Error(
        `property failed for seed ${seed} (replay: PROPERTY_SEED=${seed - offset * 1_000_003} PROPERTY_RUNS=1): ${message}\n` +
          `scenario: ${JSON.stringify(scenario).slice(0, 4000)}`,
        { cause: err },
      );
    }
  }
}

/** A cheap assertion for hot property loops (vitest's `expect` costs more than the code under test). */
export function check(condition: boolean, message: () => string): asserts condition {
  if (!condition) throw new Error(message());
}
