import { describe, expect, it } from 'vitest';
import { renderHaproxy } from '../../../src/render/haproxy.js';
import { haproxyValidationDir, validateHaproxy } from '../../../src/render/validate-haproxy.js';
import { mulberry32, randomSnapshot, shuffleDeep } from '../../fixtures/random-snapshot.js';

/**
 * Thousands of random valid tenants, a hundred per snapshot, each snapshot checked by the real
 * `haproxy -c`. The seed changes every run; a failure prints it, and
 * `HAPROXY_PROPERTY_SEED=<seed>` replays exactly that run.
 */
const BASE_SEED = Number(process.env.HAPROXY_PROPERTY_SEED ?? Math.floor(Math.random() * 2 ** 31));
const SNAPSHOTS = 20;
const TENANTS_PER_SNAPSHOT = 150;
const PARALLEL = 2;
/** Shuffled-input determinism is checked on every few snapshots: it costs a second render. */
const SHUFFLE_EVERY = 4;

async function checkSnapshot(seed: number): Promise<string | null> {
  const configDir = haproxyValidationDir();
  const rng = mulberry32(seed);
  const snapshot = randomSnapshot(rng, 'haproxy', configDir, TENANTS_PER_SNAPSHOT);
  const files = renderHaproxy(snapshot);
  if (seed % SHUFFLE_EVERY === 0 && JSON.stringify(renderHaproxy(shuffleDeep(snapshot, rng))) !== JSON.stringify(files)) {
    return `seed ${seed}: shuffled input rendered different bytes`;
  }
  const result = await validateHaproxy(files, configDir);
  if (!result.ok) return `seed ${seed}: haproxy -c failed:\n${result.message.slice(0, 4000)}`;
  if (/\[(WARNING|ALERT)\]/.test(result.output)) return `seed ${seed}: haproxy -c warned:\n${result.output.slice(0, 4000)}`;
  return null;
}

describe(`random valid snapshots (HAPROXY_PROPERTY_SEED=${BASE_SEED})`, () => {
  it(`all ${SNAPSHOTS * TENANTS_PER_SNAPSHOT} random tenants render deterministically and pass haproxy -c`, async () => {
    const failures: string[] = [];
    const seeds = Array.from({ length: SNAPSHOTS }, (_, i) => BASE_SEED + i);
    for (let i = 0; i < seeds.length; i += PARALLEL) {
      const batch = seeds.slice(i, i + PARALLEL);
      for (const failure of await Promise.all(batch.map((seed) => checkSnapshot(seed).catch((e: unknown) => `seed ${seed}: ${String(e)}`)))) {
        if (failure !== null) failures.push(failure);
      }
    }
    expect(failures, `replay with HAPROXY_PROPERTY_SEED=${BASE_SEED}`).toEqual([]);
  }, 120_000);
});
