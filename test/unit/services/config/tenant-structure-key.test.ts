import { describe, expect, it } from 'vitest';
import type { TenantState } from '../../../../src/db/desired-state-repository.js';
import { canonicalJson } from '../../../../src/domain/canonical-json.js';
import { tenantStateHash } from '../../../../src/services/config/tenant-state-hash.js';
import { tenantStructureKey } from '../../../../src/services/config/tenant-structure-key.js';
import { seedTenantStates, withPool } from '../../../fixtures/seed-tenant-states.js';

/** What a jsonb column gives back: the same values, object keys in another order. */
function reordered(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(reordered);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value)
      .reverse()
      .map(([k, v]) => [k, reordered(v)]),
  );
}

describe('a tenant structure key', () => {
  it('is the same for a state read back from jsonb (keys reordered)', () => {
    for (const t of seedTenantStates())
      expect(tenantStructureKey(reordered(t) as TenantState)).toBe(tenantStructureKey(t));
    expect(canonicalJson({ b: 1, a: { d: 2, c: [3, { f: 4, e: 5 }] } })).toBe(
      '{"a":{"c":[3,{"e":5,"f":4}],"d":2},"b":1}',
    );
  });

  it('ignores what the Runtime API changes (weights, addresses, states, added members) and sees what it cannot', () => {
    const b = seedTenantStates().find((t) => t.tenant.id === 'b')!;
    const runtime = withPool(b, (p) => ({
      ...p,
      members: [
        ...p.members.map((m) => ({ ...m, weight: m.weight + 7, address: '10.9.9.9', state: 'drain' as const })),
        { ...p.members[0]!, name: 'extra' },
      ],
    }));
    expect(tenantStructureKey(runtime)).toBe(tenantStructureKey(b));
    expect(tenantStateHash(runtime)).not.toBe(tenantStateHash(b));
    const checked = withPool(b, (p) => ({ ...p, healthCheck: null }));
    expect(tenantStructureKey(checked)).not.toBe(tenantStructureKey(b));
    const backup = withPool(b, (p) => ({
      ...p,
      members: p.members.map((m, i) => (i === 0 ? { ...m, backup: !m.backup } : m)),
    }));
    expect(tenantStructureKey(backup)).not.toBe(tenantStructureKey(b));
  });

  it('keeps the member names of a pool behind cookie persistence (tenant a): they are structural there', () => {
    const a = seedTenantStates().find((t) => t.tenant.id === 'a')!;
    const added = withPool(a, (p) => ({ ...p, members: [...p.members, { ...p.members[0]!, name: 'extra' }] }));
    expect(tenantStructureKey(added)).not.toBe(tenantStructureKey(a));
  });
});
