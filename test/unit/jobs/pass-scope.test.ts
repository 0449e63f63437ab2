import { describe, expect, it } from 'vitest';
import type { NodeSnapshot, TenantSnapshot } from '../../../src/domain/snapshot.js';
import { changedTenants } from '../../../src/jobs/pass-scope.js';

const settings = {
  name: 'edge-1',
  kind: 'haproxy',
  runtimeAddress: null,
  capacity: { vcpu: 1, memoryMb: 1 },
  configDir: '/x',
};
const tenant = (id: string): TenantSnapshot =>
  ({
    id,
    vips: [],
    pools: [],
    certificates: [],
    allocation: { maxConnections: 1, requestsPerSecond: 1 },
  }) as TenantSnapshot;
const snapshot = (tenants: TenantSnapshot[], node: object = settings): NodeSnapshot =>
  ({ revision: 1, node, tenants }) as unknown as NodeSnapshot;
const ids = (scope: ReturnType<typeof changedTenants>) => (scope === 'whole' ? 'whole' : [...scope.tenants].sort());

describe('changedTenants (what a scoped reconcile pass looks at)', () => {
  const many = Array.from({ length: 1000 }, (_, i) => tenant(`t${i}`));
  const before = snapshot(many);

  it('names the tenants whose snapshot object changed, and only them', () => {
    const after = snapshot(
      many.map((t, i) => (i === 7 ? { ...t } : t)),
      { ...settings },
    );
    const scope = changedTenants(before, after);
    expect(ids(scope)).toEqual(['t7']);
    expect(scope !== 'whole' && scope.previous).toEqual([many[7]]);
    expect(scope !== 'whole' && scope.current[0]).not.toBe(many[7]);
  });

  it('names added and removed tenants, with what they were before and are now', () => {
    const after = snapshot([...many.filter((t) => t.id !== 't3'), tenant('new')]);
    const scope = changedTenants(before, after);
    expect(ids(scope)).toEqual(['new', 't3']);
    expect(scope !== 'whole' && scope.previous.map((t) => t.id)).toEqual(['t3']);
    expect(scope !== 'whole' && scope.current.map((t) => t.id)).toEqual(['new']);
  });

  it("adds a follow-up's tenants though they did not change again", () => {
    expect(ids(changedTenants(before, snapshot(many), new Set(['t9'])))).toEqual(['t9']);
  });

  it('is empty when nothing changed', () => {
    expect(ids(changedTenants(before, snapshot([...many])))).toEqual([]);
  });

  it("reads the whole node when the node's own settings moved (every object may be named anew)", () => {
    expect(changedTenants(before, snapshot(many, { ...settings, configDir: '/y' }))).toBe('whole');
  });

  it('reads the whole node when more than an eighth of its tenants changed (one whole read is cheaper)', () => {
    const changed = (n: number) => snapshot(many.map((t, i) => (i < n ? { ...t } : t)));
    expect(ids(changedTenants(before, changed(125)))).toHaveLength(125);
    expect(changedTenants(before, changed(126))).toBe('whole');
    // Small nodes: up to 64 tenants still go scoped.
    const small = many.slice(0, 100);
    expect(ids(changedTenants(snapshot(small), snapshot(small.map((t, i) => (i < 64 ? { ...t } : t)))))).toHaveLength(
      64,
    );
  });
});
