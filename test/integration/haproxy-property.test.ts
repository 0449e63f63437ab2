import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { NodeSnapshot } from '../../src/domain/snapshot.js';
import { renderHaproxy } from '../../src/render/haproxy.js';
import { haproxyValidationDir, validateHaproxy } from '../../src/render/validate-haproxy.js';
import { mulberry32, randomSnapshot, shuffleDeep } from '../fixtures/random-snapshot.js';
import { assertAsyncProperty, halving } from '../support/property.js';

/**
 * Thousands of random valid tenants, many per snapshot, each snapshot checked by the real
 * `haproxy -c`, two at a time (one per core). A failing pair is halved down to the snapshot, then
 * to the tenants, that fail (one `haproxy -c` a step); the report names the seed and the command
 * that replays it (test/support/property.ts).
 */
const SNAPSHOTS = 20;
const TENANTS_PER_SNAPSHOT = 150;
const PARALLEL = 2;
/** Shuffled-input determinism is checked on every few snapshots: it costs a second render. */
const SHUFFLE_EVERY = 4;

interface Case {
  readonly seed: number;
  readonly configDir: string;
  readonly snapshot: NodeSnapshot;
}

/** Each case renders for a validation directory of its own, so the real binary finds its files where they point. */
function generate(seed: number): Case {
  const configDir = haproxyValidationDir();
  return { seed, configDir, snapshot: randomSnapshot(mulberry32(seed), 'haproxy', configDir, TENANTS_PER_SNAPSHOT) };
}

const describeCase = ({ seed, snapshot }: Case) =>
  snapshot.tenants.length <= 3
    ? `seed ${seed}: ${JSON.stringify(snapshot)}`
    : `seed ${seed}: ${snapshot.tenants.length} tenants (${snapshot.tenants.map((t) => t.id).join(', ')})`;

/** Cases checked side by side; halved into single cases, then a single case into halves of its tenants. */
const batches = halving<readonly Case[]>(
  (seed) => Array.from({ length: PARALLEL }, (_, i) => generate(seed + i)),
  (cases) => {
    if (cases.length > 1) return cases.map((c) => [c]);
    const c = cases[0]!;
    const { tenants } = c.snapshot;
    if (tenants.length < 2) return [];
    const half = Math.ceil(tenants.length / 2);
    return [tenants.slice(0, half), tenants.slice(half)].map((part) => [
      { ...c, snapshot: { ...c.snapshot, tenants: part } },
    ]);
  },
  (cases) => cases.map(describeCase).join('\n'),
);

async function check({ seed, configDir, snapshot }: Case): Promise<void> {
  const files = renderHaproxy(snapshot);
  if (seed % SHUFFLE_EVERY === 0)
    expect(
      renderHaproxy(shuffleDeep(snapshot, mulberry32(seed))),
      `seed ${seed}: shuffled input renders the same bytes`,
    ).toEqual(files);
  const result = await validateHaproxy(files, configDir);
  expect(result.ok, result.ok ? '' : `seed ${seed}: haproxy -c failed:\n${result.message.slice(0, 4000)}`).toBe(true);
  if (result.ok) expect(result.output, `seed ${seed}: haproxy -c warned`).not.toMatch(/\[(WARNING|ALERT)\]/);
}

describe('random valid snapshots', () => {
  it(`${SNAPSHOTS} snapshots of ${TENANTS_PER_SNAPSHOT} random tenants render deterministically and pass haproxy -c without a warning`, async () => {
    await assertAsyncProperty(
      fc.asyncProperty(batches, async (cases) => {
        // Every check ends before the verdict: a shrink step may validate the same case (and directory) again.
        for (const result of await Promise.allSettled(cases.map(check)))
          if (result.status === 'rejected') throw result.reason;
      }),
      SNAPSHOTS / PARALLEL,
    );
  }, 300_000);
});
