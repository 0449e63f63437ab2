import { describe, expect, it } from 'vitest';
import type { TenantState } from '../../../../src/db/desired-state-repository.js';
import { TenantMemo } from '../../../../src/services/config/tenant-memo.js';
import { tenantStateHash } from '../../../../src/services/config/tenant-state-hash.js';
import { tenantStructureKey } from '../../../../src/services/config/tenant-structure-key.js';
import { seedTenantStates, withPool } from '../../../fixtures/seed-tenant-states.js';

describe('TenantMemo', () => {
  const byId = (ts: readonly TenantState[]) => new Map(ts.map((t) => [t.tenant.id, t]));

  it('hands back the objects of the tenants a new load did not change, and the new object of the one it did', () => {
    const memo = new TenantMemo();
    const first = memo.intern(seedTenantStates(), new Map());
    const fresh = seedTenantStates();
    const changed = fresh.map((t) =>
      t.tenant.id === 'b' ? withPool(t, (p) => ({ ...p, members: p.members.map((m) => ({ ...m, weight: 99 })) })) : t,
    );
    const second = memo.intern(changed, byId(first));
    expect(second.map((t, i) => t === first[i])).toEqual([true, false, true]);
    expect(second[1]).toBe(changed[1]);
    expect(memo.hash(second[1]!)).toBe(tenantStateHash(changed[1]!));
  });

  it('memoizes hash and structure per object', () => {
    const memo = new TenantMemo();
    const [t] = seedTenantStates();
    expect(memo.hash(t!)).toBe(tenantStateHash(t!));
    expect(memo.structure(t!, 'haproxy')).toBe(tenantStructureKey(t!, 'haproxy'));
    expect(memo.structure(t!, 'haproxy')).toBe(memo.structure(t!, 'haproxy'));
    expect(memo.structure(t!, 'nginx')).toBe(tenantStructureKey(t!, 'nginx'));
  });

  it('keeps nothing of a tenant the previous load did not have: one coming back is a new object', () => {
    const memo = new TenantMemo();
    const first = memo.intern(seedTenantStates(), new Map());
    const second = memo.intern(
      seedTenantStates().filter((t) => t.tenant.id !== 'c'),
      byId(first),
    );
    const third = memo.intern(seedTenantStates(), byId(second));
    expect(third[2]).not.toBe(first[2]);
    expect(third[0]).toBe(first[0]);
  });
});
