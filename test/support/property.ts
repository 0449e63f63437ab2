import { createHash } from 'node:crypto';
import { relative } from 'node:path';
import fc from 'fast-check';
import { expect } from 'vitest';

/**
 * Property tests run on fast-check, with one seed policy for all of them:
 * - the seed is fixed: derived from the test's name (so two properties never share cases) unless
 *   `PROPERTY_SEED` says otherwise, so every run checks the same cases and CI cannot flake;
 * - a failure is shrunk, then reported with fast-check's seed and path and the command that
 *   replays exactly that case: `PROPERTY_SEED=<seed> PROPERTY_PATH=<path> npx vitest run <file> -t '<test>'`;
 * - `PROPERTY_RUNS` overrides every property's number of runs (more to search, 1 to replay).
 */

/** The random choices a scenario generator makes. */
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

const UNIT = 2 ** 32;

/**
 * An Rng whose every draw is a fast-check integer: a failing scenario shrinks draw by draw (fewer
 * items, smaller numbers, earlier picks), so the generators can stay plain code.
 */
export function rngOf(g: fc.GeneratorValue): Rng {
  const int = (min: number, max: number): number => g(fc.integer, { min, max });
  const next = (): number => g(fc.integer, { min: 0, max: UNIT - 1 }) / UNIT;
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

/** Scenarios made by `generate` from fast-check's draws; the counterexample prints the scenario. */
export function scenario<S>(generate: (rng: Rng) => S): fc.Arbitrary<S> {
  return fc.gen().map((g) => generate(rngOf(g)));
}

/** Random choices for the check itself (a shuffle, a victim): shrunk with the scenario. */
export function choices(): fc.Arbitrary<Rng> {
  return fc.gen().map(rngOf);
}

/**
 * Values built whole from one seed (a snapshot of many tenants, a batch of snapshots), shrunk by
 * halving: `halves` gives the two halves of a value, or none when it cannot be split. For checks
 * that run a real binary, where shrinking draw by draw would run it thousands of times; halving
 * narrows a failure to the part that causes it in a few runs, as bisection does. `describe`
 * prints a counterexample (a whole snapshot's JSON can run to megabytes).
 */
export function halving<W extends object>(
  build: (seed: number) => W,
  halves: (whole: W) => readonly W[],
  describe: (whole: W) => string,
): fc.Arbitrary<W> {
  return new HalvingArbitrary(build, halves, describe);
}

class HalvingArbitrary<W extends object> extends fc.Arbitrary<W> {
  constructor(
    private readonly build: (seed: number) => W,
    private readonly halves: (whole: W) => readonly W[],
    private readonly describe: (whole: W) => string,
  ) {
    super();
  }

  generate(mrng: fc.Random): fc.Value<W> {
    return this.value(this.build(mrng.nextInt(0, 2 ** 31 - 1)));
  }

  canShrinkWithoutContext(_value: unknown): _value is W {
    return false;
  }

  shrink(value: W): fc.Stream<fc.Value<W>> {
    return fc.Stream.of(...this.halves(value).map((half) => this.value(half)));
  }

  private value(whole: W): fc.Value<W> {
    Object.defineProperty(whole, fc.toStringMethod, { value: () => this.describe(whole), enumerable: false });
    return new fc.Value(whole, undefined);
  }
}

function fixedSeed(testName: string): number {
  if (process.env.PROPERTY_SEED !== undefined) return Number(process.env.PROPERTY_SEED);
  return createHash('sha256').update(`switchyard-20261126/${testName}`).digest().readUInt32BE(0) >>> 1;
}

function parameters<T>(runs: number, extra: fc.Parameters<T>): { params: fc.Parameters<T>; testName: string } {
  const testName = expect.getState().currentTestName ?? 'property';
  const path = process.env.PROPERTY_PATH;
  const numRuns = process.env.PROPERTY_RUNS === undefined ? runs : Number(process.env.PROPERTY_RUNS);
  return {
    testName,
    params: { ...extra, seed: fixedSeed(testName), numRuns, ...(path === undefined ? {} : { path }) },
  };
}

function report<T>(details: fc.RunDetails<T>, testName: string): void {
  if (!details.failed) return;
  const file = relative(process.cwd(), expect.getState().testPath ?? '');
  // -t takes a regular expression, and the shell a single-quoted word.
  const pattern = (testName.split(' > ').at(-1) ?? testName)
    .replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
    .replace(/'/g, "'\\''");
  const replay = `replay: PROPERTY_SEED=${details.seed} PROPERTY_PATH=${details.counterexamplePath ?? ''} npx vitest run ${file} -t '${pattern}'`;
  throw new Error(`${fc.defaultReportMessage(details) ?? 'property failed'}\n${replay}`, {
    cause: details.errorInstance,
  });
}

/** Checks a synchronous property under the seed policy above; throws the shrunk failure. */
export function assertProperty<T>(property: fc.IProperty<T>, runs: number, extra: fc.Parameters<T> = {}): void {
  const { params, testName } = parameters(runs, extra);
  report(fc.check(property, params), testName);
}

/** Checks an asynchronous property (one that runs a real binary) under the same policy. */
export async function assertAsyncProperty<T>(
  property: fc.IAsyncProperty<T>,
  runs: number,
  extra: fc.Parameters<T> = {},
): Promise<void> {
  const { params, testName } = parameters(runs, extra);
  report(await fc.check(property, params), testName);
}

/** A cheap assertion for hot property loops (vitest's `expect` costs more than the code under test). */
export function check(condition: boolean, message: () => string): asserts condition {
  if (!condition) throw new Error(message());
}
