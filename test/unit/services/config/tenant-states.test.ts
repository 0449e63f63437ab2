import { describe, expect, it } from 'vitest';
import type { TenantState } from '../../../../src/db/desired-state-repository.js';
import type { Tenant } from '../../../../src/domain/tenant.js';
import { canonicalJson } from '../../../../src/domain/canonical-json.js';
import { stateHash, structureKey, TenantMemo, ValidatedStates } from '../../../../src/services/config/tenant-states.js';
import { seedSnapshot } from '../../../fixtures/seed-snapshot.js';

/** The seed's tenants as stored states (certificate keys sealed: structure never opens them). */
function states(): TenantState[] {
  return seedSnapshot('haproxy', '/etc/haproxy/switchyard').tenants.map((t) => ({
    tenant: { id: t.id, displayName: t.id, state: 'active' } as unknown as Tenant,
    vips: t.vips.map((v) => ({ ...v, routes: [...v.routes] })),
    pools: t.pools.map((p) => ({ ...p, members: [...p.members] })),
    certificates: t.certificates.map((c) => ({ name: c.name, chainPem: c.chainPem, keyCiphertext: 'sealed', sans: c.sans })),
  }));
}

/** What a jsonb column gives back: the same values, object keys in another order. */
function reordered(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(reordered);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(Object.entries(value).reverse().map(([k, v]) => [k, reordered(v)]));
}

const withPool = (t: TenantState, change: (p: TenantState['pools'][number]) => TenantState['pools'][number]): TenantState => ({ ...t, pools: t.pools.map(change) });

describe('a tenant structure key', () => {
  it('is the same for a state read back from jsonb (keys reordered)', () => {
    for (const t of states()) expect(structureKey(reordered(t) as TenantState)).toBe(structureKey(t));
    expect(canonicalJson({ b: 1, a: { d: 2, c: [3, { f: 4, e: 5 }] } })).toBe('{"a":{"c":[3,{"e":5,"f":4}],"d":2},"b":1}');
  });

  it('ignores what the Runtime API changes (weights, addresses, states, added members) and sees what it cannot', () => {
    const b = states().find((t) => t.tenant.id === 'b')!;
    const runtime = withPool(b, (p) => ({ ...p, members: [...p.members.map((m) => ({ ...m, weight: m.weight + 7, address: '10.9.9.9', state: 'drain' as const })), { ...p.members[0]!, name: 'extra' }] }));
    expect(structureKey(runtime)).toBe(structureKey(b));
    expect(stateHash(runtime)).not.toBe(stateHash(b));
    const checked = withPool(b, (p) => ({ ...p, healthCheck: null }));
    expect(structureKey(checked)).not.toBe(structureKey(b));
    const backup = withPool(b, (p) => ({ ...p, members: p.members.map((m, i) => (i === 0 ? { ...m, backup: !m.backup } : m)) }));
    expect(structureKey(backup)).not.toBe(structureKey(b));
  });

  it('keeps the member names of a pool behind cookie persistence (tenant a): they are structural there', () => {
    const a = states().find((t) => t.tenant.id === 'a')!;
    const added = withPool(a, (p) => ({ ...p, members: [...p.members, { ...p.members[0]!, name: 'extra' }] }));
    expect(structureKey(added)).not.toBe(structureKey(a));
  });
});

describe('TenantMemo', () => {
  const byId = (ts: readonly TenantState[]) => new Map(ts.map((t) => [t.tenant.id, t]));

  it('hands back the objects of the tenants a new load did not change, and the new object of the one it did', () => {
    const memo = new TenantMemo();
    const first = memo.intern(states(), new Map());
    const fresh = states();
    const changed = fresh.map((t) => (t.tenant.id === 'b' ? withPool(t, (p) => ({ ...p, members: p.members.map((m) => ({ ...m, weight: 99 })) })) : t));
    const second = memo.intern(changed, byId(first));
    expect(second.map((t, i) => t === first[i])).toEqual([true, false, true]);
    expect(second[1]).toBe(changed[1]);
    expect(memo.hash(second[1]!)).toBe(stateHash(changed[1]!));
  });

  it('memoizes hash and structure per object', () => {
    const memo = new TenantMemo();
    const [t] = states();
    expect(memo.hash(t!)).toBe(stateHash(t!));
    expect(memo.structure(t!)).toBe(structureKey(t!));
    expect(memo.structure(t!)).toBe(memo.structure(t!));
  });

  it('keeps nothing of a tenant the previous load did not have: one coming back is a new object', () => {
    const memo = new TenantMemo();
    const first = memo.intern(states(), new Map());
    const second = memo.intern(states().filter((t) => t.tenant.id !== 'c'), byId(first));
    const third = memo.intern(states(), byId(second));
    expect(third[2]).not.toBe(first[2]);
    expect(third[0]).toBe(first[0]);
  });
});

describe('ValidatedStates', () => {
  it('answers only for the hash it was given, per kind, and drops what the database no longer names', () => {
    const cache = new ValidatedStates();
    const [a, b] = states();
    cache.remember('haproxy', 'a', 'h1', a!);
    cache.remember('haproxy', 'b', 'h2', b!);
    cache.remember('nginx', 'a', 'h1', a!);
    expect(cache.get('haproxy', 'a', 'h1')).toBe(a);
    expect(cache.get('haproxy', 'a', 'other')).toBeUndefined();
    cache.retain('haproxy', new Map([['a', { goodHash: 'h1' }], ['b', { goodHash: 'h3' }]]));
    expect(cache.get('haproxy', 'a', 'h1')).toBe(a);
    expect(cache.get('haproxy', 'b', 'h2')).toBeUndefined();
    expect(cache.get('nginx', 'a', 'h1')).toBe(a);
  });
});
