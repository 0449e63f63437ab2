import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { NodeSnapshot } from '../../src/domain/snapshot.js';
import { renderHaproxy } from '../../src/render/haproxy.js';
import { haproxyValidationDir, validateHaproxy } from '../../src/render/validate-haproxy.js';
import { mulberry32, randomSnapshot, shuffleDeep } from '../fixtures/random-snapshot.js';
import { assertAsyncProperty, halving } from '../support/property.js';

/**
 * Thousands of random valid tenants, many per snapshot, each snapshot checked by the real
 * `haproxy -c`. A failing snapshot is halved down to the tenants that fail (one `haproxy -c` a
 * step); the report names the seed and the command that replays it (test/support/property.ts).
 */
const SNAPSHOTS = 20;
const TENANTS_PER_SNAPSHOT = 150;
/** Shuffled-input determinism is checked on every few snapshots: it costs a second render. */
const SHUFFLE_EVERY = 4;

interface Case {
  readonly seed: number;
  readonly configDir: string;
  readonly snapshot: NodeSnapshot;
}

/** Each case renders for a validation directory of its own, so the real binary finds its files where they point. */
const cases = halving<Case>(
  (seed) => {
    const configDir = haproxyValidationDir();
    return { seed, configDir, snapshot: randomSnapshot(mulberry32(seed), 'haproxy', configDir, TENANTS_PER_SNAPSHOT) };
  },
  (c) => {
    const { tenants } = c.snapshot;
    if (tenants.length < 2) return [];
    const half = Math.ceil(tenants.length / 2);
    return [tenants.slice(0, half), tenants.slice(half)].map((part) => ({ ...c, snapshot: { ...c.snapshot, tenants: part } }));
  },
  ({ seed, snapshot }) =>
    snapshot.tenants.length <= 3
      ? `seed ${seed}: ${JSON.stringify(snapshot)}`
      : `seed ${seed}: ${snapshot.tenants.length} tenants (${snapshot.tenants.map((t) => t.id).join(', ')})`,
);

describe('random valid snapshots', () => {
  it(`${SNAPSHOTS} snapshots of ${TENANTS_PER_SNAPSHOT} random tenants render deterministically and pass haproxy -c without a warning`, async () => {
    await assertAsyncProperty(
      fc.asyncProperty(cases, async ({ seed, configDir, snapshot }) => {
        const files = renderHaproxy(snapshot);
        if (seed % SHUFFLE_EVERY === 0) expect(renderHaproxy(shuffleDeep(snapshot, mulberry32(seed))), 'shuffled input renders the same bytes').toEqual(files);
        const result = await validateHaproxy(files, configDir);
        expect(result.ok, result.ok ? '' : `haproxy -c failed:\n${result.message.slice(0, 4000)}`).toBe(true);
        if (result.ok) expect(result.output, 'haproxy -c warned').not.toMatch(/\[(WARNING|ALERT)\]/);
      }),
      SNAPSHOTS,
    );
  }, 300_000);
});
