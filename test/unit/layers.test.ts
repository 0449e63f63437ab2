import { describe, expect, it } from 'vitest';
import { cruise, type IReporterOutput } from 'dependency-cruiser';
import { createRequire } from 'node:module';

/**
 * The layer rules in `.dependency-cruiser.cjs` (util ← domain ← adapters ← services ← jobs/api ← cli).
 * The real tree must obey them, and each rule must still fire on the probe tree that breaks it:
 * a rule whose folder was renamed or whose pattern no longer matches would otherwise pass everything.
 */
const ruleSet = createRequire(import.meta.url)('../../.dependency-cruiser.cjs');

async function violations(root: string): Promise<string[]> {
  const result: IReporterOutput = await cruise([root], { ruleSet, validate: true, ...ruleSet.options });
  if (typeof result.output === 'string') throw new Error('dependency-cruiser gave text, expected JSON');
  return result.output.summary.violations.map((v) => `${v.rule.name}: ${v.from} → ${v.to}`).sort();
}

describe('layers', () => {
  it('the source tree imports only inward and has no value cycles', { timeout: 60_000 }, async () => {
    expect(await violations('src')).toEqual([]);
  });

  it('every rule fires on the probe tree that breaks it, and a type-only cycle is allowed', {
    timeout: 60_000,
  }, async () => {
    const found = await violations('test/fixtures/layers/src');
    const p = 'test/fixtures/layers/src';
    expect(found).toEqual(
      [
        `adapters-are-independent: ${p}/db/reaches-up.ts → ${p}/fleet/client.ts`,
        `adapters-do-not-reach-up: ${p}/db/reaches-up.ts → ${p}/services/service.ts`,
        `api-does-not-reach-up: ${p}/api/route.ts → ${p}/jobs/job.ts`,
        `domain-does-no-io: ${p}/domain/impure.ts → http`,
        `domain-does-no-io: ${p}/domain/impure.ts → node_modules/kysely/dist/esm/index.js`,
        `domain-is-pure: ${p}/domain/impure.ts → ${p}/db/repository.ts`,
        `domain-uses-net-only-to-parse-addresses: ${p}/domain/impure.ts → net`,
        `jobs-do-not-reach-up: ${p}/jobs/uses-api.ts → ${p}/api/route.ts`,
        `no-circular: ${p}/render/cycle-a.ts → ${p}/render/cycle-b.ts`,
        `services-do-not-reach-up: ${p}/services/service.ts → ${p}/api/route.ts`,
        `util-does-no-io: ${p}/util/generic.ts → fs`,
        `util-is-generic: ${p}/util/generic.ts → ${p}/domain/pure.ts`,
      ].sort(),
    );
  });
});
