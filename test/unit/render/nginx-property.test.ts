import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../../src/domain/errors.js';
import type { NodeSnapshot, RenderedFiles } from '../../../src/domain/snapshot.js';
import { renderNginx } from '../../../src/render/nginx.js';
import { validateNginx } from '../../../src/render/validate-nginx.js';
import { mulberry32, randomSnapshot, shuffleDeep } from '../../fixtures/random-snapshot.js';

/**
 * Thousands of random valid snapshots (every object passes the API's create schemas), each
 * rendered twice (as given and with every array shuffled: the bytes must be equal) and proven
 * by the real `nginx -t`. nginx takes a few hundred milliseconds to start, so snapshots are
 * checked in batches: a batch is one node holding the tenants of many snapshots, renamed apart.
 * When a batch fails, it is bisected to name the failing seeds.
 * Replay one: `NGINX_PROPERTY_SEED=<seed> NGINX_PROPERTY_SNAPSHOTS=1 npx vitest run test/unit/render/nginx-property`.
 */
const BASE_SEED = Number(process.env.NGINX_PROPERTY_SEED ?? 20_261_126);
const SNAPSHOTS = Number(process.env.NGINX_PROPERTY_SNAPSHOTS ?? 2000);
const PER_BATCH = 250;
/** nginx -t took 10-30 s per batch on a shared 2-core machine (measured), with or without TLS pools. */
const PROPERTY_TIMEOUT_MS = 300_000;
const CONFIG_DIR = '/var/lib/switchyard/nginx';

interface Case {
  readonly seed: number;
  readonly snapshot: NodeSnapshot;
}

/**
 * Snapshot i of a batch: tenant ids of one snapshot are unique, and a per-snapshot prefix keeps
 * them unique in the batch. Listeners are random over all of IPv4/IPv6 and every port, so a
 * clash between two snapshots is vanishingly rare; the renderer would refuse it by name.
 */
function generate(seed: number, index: number): Case {
  const rng = mulberry32(seed);
  const snapshot = randomSnapshot(rng, 'nginx', CONFIG_DIR, 1 + Math.floor(rng() * 2));
  const tenants = snapshot.tenants.map((t) => ({ ...t, id: `s${index}-${t.id}`.slice(0, 63) }));
  return { seed, snapshot: { ...snapshot, tenants } };
}

/** The batch reuses the tenant objects just rendered, so their fragments come from the cache. */
function merge(cases: readonly Case[]): NodeSnapshot {
  return { ...cases[0]!.snapshot, tenants: cases.flatMap((c) => c.snapshot.tenants) };
}

/** Bisects a failing batch down to failing snapshots (a few nginx runs, not one per snapshot). */
async function failingSeeds(cases: readonly Case[], limit: number): Promise<string[]> {
  if (cases.length === 0 || limit <= 0) return [];
  const result = await validateNginx(renderNginx(merge(cases)), CONFIG_DIR);
  if (result.ok) return [];
  if (cases.length === 1) return [`seed ${cases[0]!.seed}: ${result.message.slice(0, 2000)}`];
  const half = Math.ceil(cases.length / 2);
  const first = await failingSeeds(cases.slice(0, half), limit);
  return [...first, ...(await failingSeeds(cases.slice(half), limit - first.length))];
}

/**
 * The schemas accept any IP literal, but nothing can listen on an IPv6 link-local or multicast
 * address; the renderer refuses such a VIP by name (a ValidationError), which is the right outcome.
 */
function renderOrSkip(c: Case): RenderedFiles | null {
  try {
    return renderNginx(c.snapshot);
  } catch (err) {
    if (err instanceof ValidationError && err.message.includes('no proxy can listen on it')) return null;
    throw err;
  }
}

async function validateBatch(cases: readonly Case[]): Promise<string[]> {
  const result = await validateNginx(renderNginx(merge(cases)), CONFIG_DIR);
  const from = `batch from seed ${cases[0]!.seed}`;
  if (!result.ok) return [...(await failingSeeds(cases, 3)), `${from}: ${result.message.slice(0, 2000)}`];
  return result.warnings.length > 0 ? [`${from} warned: ${result.warnings.slice(0, 5).join('\n')}`] : [];
}

describe(`random valid snapshots (NGINX_PROPERTY_SEED=${BASE_SEED})`, () => {
  it(`${SNAPSHOTS} random snapshots render deterministically and pass nginx -t without a warning`, async () => {
    const failures: string[] = [];
    let tenants = 0;
    let unbindable = 0;
    // nginx checks one batch while the next one is generated and rendered: two cores, both busy.
    let checking: Promise<string[]> = Promise.resolve([]);
    for (let start = 0; start < SNAPSHOTS; start += PER_BATCH) {
      const cases: Case[] = [];
      for (let i = start; i < Math.min(SNAPSHOTS, start + PER_BATCH); i++) {
        const c = generate(BASE_SEED + i, i - start);
        const files = renderOrSkip(c);
        if (files === null) {
          unbindable++;
          continue;
        }
        if (JSON.stringify(renderNginx(shuffleDeep(c.snapshot, mulberry32(c.seed)))) !== JSON.stringify(files)) {
          failures.push(`seed ${c.seed}: shuffled input rendered different bytes`);
        }
        cases.push(c);
        tenants += c.snapshot.tenants.length;
      }
      failures.push(...(await checking));
      checking = validateBatch(cases);
    }
    failures.push(...(await checking));
    expect(failures, `replay with NGINX_PROPERTY_SEED=${BASE_SEED}`).toEqual([]);
    expect(tenants).toBeGreaterThan(SNAPSHOTS);
    expect(unbindable).toBeLessThan(SNAPSHOTS / 20);
  }, PROPERTY_TIMEOUT_MS);
});
